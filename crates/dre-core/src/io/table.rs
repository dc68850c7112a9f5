//! FITS binary tables held in memory with their column types, so that a catalogue can be
//! read, filtered, joined and written back without changing any column's type
//! (the Summary keeps SExtractor's J, E, D, I columns as they are).

use crate::error::{AtPath, Error, Result};
use crate::io::fits::{checked_hdu, count_hdus, open_fits, write_fits, AtWrite};
use fitsio::hdu::{FitsHdu, HduInfo};
use fitsio::tables::{ColumnDataType, ColumnDescription, ConcreteColumnDescription};
use fitsio::FitsFile;
use std::path::Path;

/// The values of one column, `repeat` values per row, rows one after another.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnData {
    /// TFORM `L`: logical, one value per row.
    Bool(Vec<bool>),
    /// TFORM `B`: unsigned byte.
    U8(Vec<u8>),
    /// TFORM `I`: 16-bit integer.
    I16(Vec<i16>),
    /// TFORM `J`: 32-bit integer.
    I32(Vec<i32>),
    /// TFORM `K`: 64-bit integer.
    I64(Vec<i64>),
    /// TFORM `E`: single precision.
    F32(Vec<f32>),
    /// TFORM `D`: double precision.
    F64(Vec<f64>),
    /// TFORM `A`: one string per row, `repeat` characters wide.
    Str(Vec<String>),
}

/// One named column of a FITS binary table, with its FITS type.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// TTYPE, e.g. `NUMBER`.
    pub name: String,
    /// Values per row (1 for scalars); for strings, the width in characters.
    pub repeat: usize,
    /// The TDIMn value, e.g. "(35, 35)", for multi-dimensional cells.
    pub tdim: Option<String>,
    /// The values, all rows.
    pub data: ColumnData,
}

impl Column {
    /// A column without TDIM.
    pub fn new(name: &str, repeat: usize, data: ColumnData) -> Self {
        Column {
            name: name.to_string(),
            repeat,
            tdim: None,
            data,
        }
    }

    /// Values per row in `data` (strings hold one value per row whatever their width).
    fn per_row(&self) -> usize {
        match self.data {
            ColumnData::Str(_) | ColumnData::Bool(_) => 1,
            _ => self.repeat,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        let n = match &self.data {
            ColumnData::Bool(v) => v.len(),
            ColumnData::U8(v) => v.len(),
            ColumnData::I16(v) => v.len(),
            ColumnData::I32(v) => v.len(),
            ColumnData::I64(v) => v.len(),
            ColumnData::F32(v) => v.len(),
            ColumnData::F64(v) => v.len(),
            ColumnData::Str(v) => v.len(),
        };
        n / self.per_row().max(1)
    }

    /// Whether the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A scalar numeric column as f64 (None for strings, booleans and vectors).
    pub fn as_f64(&self) -> Option<Vec<f64>> {
        if self.repeat != 1 {
            return None;
        }
        Some(match &self.data {
            ColumnData::U8(v) => v.iter().map(|&x| x as f64).collect(),
            ColumnData::I16(v) => v.iter().map(|&x| x as f64).collect(),
            ColumnData::I32(v) => v.iter().map(|&x| x as f64).collect(),
            ColumnData::I64(v) => v.iter().map(|&x| x as f64).collect(),
            ColumnData::F32(v) => v.iter().map(|&x| x as f64).collect(),
            ColumnData::F64(v) => v.clone(),
            ColumnData::Bool(_) | ColumnData::Str(_) => return None,
        })
    }

    /// A scalar integer column as i64 (None for anything else).
    pub fn as_i64(&self) -> Option<Vec<i64>> {
        if self.repeat != 1 {
            return None;
        }
        Some(match &self.data {
            ColumnData::U8(v) => v.iter().map(|&x| x as i64).collect(),
            ColumnData::I16(v) => v.iter().map(|&x| x as i64).collect(),
            ColumnData::I32(v) => v.iter().map(|&x| x as i64).collect(),
            ColumnData::I64(v) => v.clone(),
            _ => return None,
        })
    }

    /// The rows `rows` of this column, in that order.
    ///
    /// # Panics
    ///
    /// If a row is out of range (`>= len()`).
    pub fn take(&self, rows: &[usize]) -> Column {
        fn pick<T: Clone>(v: &[T], per: usize, rows: &[usize]) -> Vec<T> {
            rows.iter()
                .flat_map(|&r| v[r * per..(r + 1) * per].iter().cloned())
                .collect()
        }
        let per = self.per_row();
        let data = match &self.data {
            ColumnData::Bool(v) => ColumnData::Bool(pick(v, per, rows)),
            ColumnData::U8(v) => ColumnData::U8(pick(v, per, rows)),
            ColumnData::I16(v) => ColumnData::I16(pick(v, per, rows)),
            ColumnData::I32(v) => ColumnData::I32(pick(v, per, rows)),
            ColumnData::I64(v) => ColumnData::I64(pick(v, per, rows)),
            ColumnData::F32(v) => ColumnData::F32(pick(v, per, rows)),
            ColumnData::F64(v) => ColumnData::F64(pick(v, per, rows)),
            ColumnData::Str(v) => ColumnData::Str(pick(v, per, rows)),
        };
        Column {
            data,
            ..self.clone()
        }
    }

    fn append(&mut self, other: &Column) -> Result<()> {
        let mismatch = || {
            Error::Invalid(format!(
                "column {} has different types in different tables",
                self.name
            ))
        };
        if self.repeat != other.repeat && !matches!(self.data, ColumnData::Str(_)) {
            return Err(mismatch());
        }
        match (&mut self.data, &other.data) {
            (ColumnData::Bool(a), ColumnData::Bool(b)) => a.extend_from_slice(b),
            (ColumnData::U8(a), ColumnData::U8(b)) => a.extend_from_slice(b),
            (ColumnData::I16(a), ColumnData::I16(b)) => a.extend_from_slice(b),
            (ColumnData::I32(a), ColumnData::I32(b)) => a.extend_from_slice(b),
            (ColumnData::I64(a), ColumnData::I64(b)) => a.extend_from_slice(b),
            (ColumnData::F32(a), ColumnData::F32(b)) => a.extend_from_slice(b),
            (ColumnData::F64(a), ColumnData::F64(b)) => a.extend_from_slice(b),
            (ColumnData::Str(a), ColumnData::Str(b)) => {
                a.extend_from_slice(b);
                self.repeat = self.repeat.max(other.repeat);
            }
            _ => return Err(mismatch()),
        }
        Ok(())
    }
}

/// Columns of equal length.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    /// The columns, in the file's order.
    pub columns: Vec<Column>,
}

impl Table {
    /// Number of rows (0 without columns).
    pub fn nrows(&self) -> usize {
        self.columns.first().map_or(0, Column::len)
    }

    /// The column named `name` (exact, case-sensitive), if any.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether a column named `name` exists.
    pub fn has(&self, name: &str) -> bool {
        self.column(name).is_some()
    }

    /// The rows `rows` of every column, in that order.
    ///
    /// # Panics
    ///
    /// If a row is out of range of any column.
    pub fn take(&self, rows: &[usize]) -> Table {
        Table {
            columns: self.columns.iter().map(|c| c.take(rows)).collect(),
        }
    }
}

/// Reads a catalogue: every `LDAC_OBJECTS` HDU stacked (SExtractor's FITS_LDAC, one per
/// extension of a multi-extension image), or else the first binary table.
pub fn read_catalog(path: impl AsRef<Path>) -> Result<Table> {
    let path = path.as_ref();
    let mut f = open_fits(path)?;
    let n = count_hdus(&mut f, path)?;
    let mut tables: Vec<FitsHdu> = Vec::new();
    let mut first_table = None;
    for i in 0..n {
        // Rows x row width are checked against the file before any column is read.
        let hdu = checked_hdu(&mut f, i, path)?;
        if let HduInfo::TableInfo { .. } = hdu.info {
            let name = hdu
                .read_key::<String>(&mut f, "EXTNAME")
                .unwrap_or_default();
            if name.trim() == "LDAC_OBJECTS" {
                tables.push(hdu);
            } else if first_table.is_none() && name.trim() != "LDAC_IMHEAD" {
                first_table = Some(hdu);
            }
        }
    }
    if tables.is_empty() {
        tables.extend(first_table);
    }
    if tables.is_empty() {
        return Err(Error::file(path, "no binary table: not a catalogue"));
    }
    let mut out: Option<Table> = None;
    for hdu in &tables {
        let t = read_hdu(&mut f, hdu).map_err(|e| e.at_file(path))?;
        match &mut out {
            None => out = Some(t),
            Some(acc) => {
                if acc.columns.len() != t.columns.len() {
                    return Err(Error::file(
                        path,
                        "LDAC_OBJECTS tables have different columns",
                    ));
                }
                for (a, b) in acc.columns.iter_mut().zip(&t.columns) {
                    a.append(b).map_err(|e| e.at_file(path))?;
                }
            }
        }
    }
    let mut table = out.unwrap_or_default();
    // SExtractor writes one LDAC_OBJECTS per extension of a multi-extension image; without
    // an EXT_NUMBER column the rows would mix, so number them as SExtractor does (from 1).
    if tables.len() > 1 && !table.has("EXT_NUMBER") {
        let mut ext = Vec::with_capacity(table.nrows());
        for (i, hdu) in tables.iter().enumerate() {
            if let HduInfo::TableInfo { num_rows, .. } = hdu.info {
                ext.extend(std::iter::repeat_n(i as i16 + 1, num_rows));
            }
        }
        table
            .columns
            .insert(0, Column::new("EXT_NUMBER", 1, ColumnData::I16(ext)));
    }
    Ok(table)
}

/// String column `col` (from 0) of `hdu`, one string per row as fitsio reads it, through
/// cfitsio with room for the terminating NUL: fitsio's `read_col::<String>` allocates the
/// display width and cfitsio writes one byte more, corrupting the heap (found by fuzzing:
/// any `16A` column under AddressSanitizer).
fn read_strings(f: &mut FitsFile, hdu: &FitsHdu, col: usize, repeat: usize) -> Result<Vec<String>> {
    use std::os::raw::{c_char, c_int};
    let HduInfo::TableInfo { num_rows, .. } = hdu.info else {
        return Err(Error::Invalid("not a table".into()));
    };
    let fail = |status: c_int| {
        let mut text = [0 as c_char; 31];
        // SAFETY: a buffer of FLEN_STATUS (31).
        unsafe { fitsio::sys::ffgerr(status, text.as_mut_ptr()) };
        // SAFETY: cfitsio wrote a NUL-terminated string into it.
        let text = unsafe { std::ffi::CStr::from_ptr(text.as_ptr()) };
        Error::Invalid(format!(
            "column {}: {} (cfitsio status {status})",
            col + 1,
            text.to_string_lossy()
        ))
    };
    let (mut status, mut kind, mut width): (c_int, c_int, c_int) = (0, 0, 0);
    // SAFETY: `f` is open; HDU and column numbers count from 1.
    unsafe {
        fitsio::sys::ffmahd(f.as_raw(), hdu.number as c_int + 1, &mut kind, &mut status);
        fitsio::sys::ffgcdw(f.as_raw(), col as c_int + 1, &mut width, &mut status);
    }
    if status != 0 {
        return Err(fail(status));
    }
    // Rows x width is within the file (checked_hdu); so are the rows when the width is 0.
    let room = (width.max(0) as usize).max(repeat) + 1;
    let mut buffers: Vec<Vec<c_char>> = (0..num_rows).map(|_| vec![0; room]).collect();
    let mut pointers: Vec<*mut c_char> = buffers.iter_mut().map(|b| b.as_mut_ptr()).collect();
    if num_rows > 0 {
        let mut anynul = 0;
        // SAFETY: one buffer of `room` bytes per row, the most cfitsio writes per string.
        unsafe {
            fitsio::sys::ffgcvs(
                f.as_raw(),
                col as c_int + 1,
                1,
                1,
                num_rows as i64,
                std::ptr::null_mut(),
                pointers.as_mut_ptr(),
                &mut anynul,
                &mut status,
            );
        }
        if status != 0 {
            return Err(fail(status));
        }
    }
    Ok(buffers
        .iter()
        .map(|b| {
            let bytes: Vec<u8> = b
                .iter()
                .take_while(|&&c| c != 0)
                .map(|&c| c as u8)
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .collect())
}

fn read_hdu(f: &mut FitsFile, hdu: &FitsHdu) -> Result<Table> {
    let HduInfo::TableInfo {
        column_descriptions,
        ..
    } = &hdu.info
    else {
        return Err(Error::Invalid("not a table".into()));
    };
    // fitsio reads a column by its name, the first of that name: a string column read as
    // another column's numbers overflows fitsio's buffers (found by fuzzing).
    for (i, d) in column_descriptions.iter().enumerate() {
        if let Some(j) = column_descriptions[..i]
            .iter()
            .position(|e| e.name == d.name)
        {
            return Err(Error::Invalid(format!(
                "columns {} and {} are both named {:?}",
                j + 1,
                i + 1,
                d.name
            )));
        }
    }
    let mut columns = Vec::new();
    for (i, desc) in column_descriptions.iter().enumerate() {
        let name = desc.name.clone();
        let repeat = desc.data_type.repeat;
        let err = |e: fitsio::errors::Error| Error::Invalid(format!("column {name}: {e}"));
        let data = match desc.data_type.typ {
            ColumnDataType::Logical => ColumnData::Bool(hdu.read_col(f, &name).map_err(err)?),
            ColumnDataType::Byte => ColumnData::U8(hdu.read_col(f, &name).map_err(err)?),
            ColumnDataType::Short | ColumnDataType::SignedByte => {
                ColumnData::I16(hdu.read_col(f, &name).map_err(err)?)
            }
            ColumnDataType::Int | ColumnDataType::Long | ColumnDataType::UnsignedShort => {
                ColumnData::I32(hdu.read_col(f, &name).map_err(err)?)
            }
            ColumnDataType::LongLong | ColumnDataType::UnsignedLong => {
                ColumnData::I64(hdu.read_col(f, &name).map_err(err)?)
            }
            ColumnDataType::Float => ColumnData::F32(hdu.read_col(f, &name).map_err(err)?),
            ColumnDataType::Double | ColumnDataType::UnsignedLongLong => {
                ColumnData::F64(hdu.read_col(f, &name).map_err(err)?)
            }
            ColumnDataType::String | ColumnDataType::Text => {
                let v = read_strings(f, hdu, i, repeat)?;
                ColumnData::Str(v.into_iter().map(|s| s.trim_end().to_string()).collect())
            }
            ColumnDataType::Bit => {
                return Err(Error::Invalid(format!(
                    "column {name}: bit columns are not supported"
                )))
            }
        };
        let tdim = hdu
            .read_key::<String>(f, &format!("TDIM{}", i + 1))
            .ok()
            .map(|s| s.trim().to_string());
        columns.push(Column {
            name,
            repeat,
            tdim,
            data,
        });
    }
    Ok(Table { columns })
}

/// Writes `table` as the first extension of a new FITS file (empty primary, as astropy's
/// `Table.write` does). Written whole or not at all.
pub fn write_table(path: impl AsRef<Path>, table: &Table) -> Result<()> {
    write_table_with_cards(path.as_ref(), table, &[])
}

/// [`write_table`] with `cards` added to the table's header (the Summary's `DRE_FLAGS` bits).
pub(crate) fn write_table_with_cards(
    path: &Path,
    table: &Table,
    cards: &[crate::io::fits::Card],
) -> Result<()> {
    let descs: Vec<ConcreteColumnDescription> = table
        .columns
        .iter()
        .map(describe)
        .collect::<fitsio::errors::Result<_>>()
        .at(path)?;
    write_fits(path, None, |f| {
        let hdu = f.create_table("", &descs).at_write(path)?;
        for (i, col) in table.columns.iter().enumerate() {
            write_column(f, &hdu, i, col).at_write(path)?;
            if let Some(tdim) = &col.tdim {
                hdu.write_key(f, &format!("TDIM{}", i + 1), tdim.clone())
                    .at_write(path)?;
            }
        }
        for card in cards {
            card.write(f, &hdu).at_write(path)?;
        }
        Ok(())
    })
}

fn describe(col: &Column) -> fitsio::errors::Result<ConcreteColumnDescription> {
    let typ = match col.data {
        ColumnData::Bool(_) => ColumnDataType::Logical,
        ColumnData::U8(_) => ColumnDataType::Byte,
        ColumnData::I16(_) => ColumnDataType::Short,
        ColumnData::I32(_) => ColumnDataType::Int,
        ColumnData::I64(_) => ColumnDataType::LongLong,
        ColumnData::F32(_) => ColumnDataType::Float,
        ColumnData::F64(_) => ColumnDataType::Double,
        ColumnData::Str(_) => ColumnDataType::String,
    };
    ColumnDescription::new(col.name.clone())
        .with_type(typ)
        .that_repeats(col.repeat.max(1))
        .create()
}

fn write_column(
    f: &mut FitsFile,
    hdu: &FitsHdu,
    index: usize,
    col: &Column,
) -> fitsio::errors::Result<()> {
    let name = col.name.as_str();
    match &col.data {
        ColumnData::U8(v) => hdu.write_col(f, name, v).map(drop),
        ColumnData::I16(v) => hdu.write_col(f, name, v).map(drop),
        ColumnData::I32(v) => hdu.write_col(f, name, v).map(drop),
        ColumnData::I64(v) => hdu.write_col(f, name, v).map(drop),
        ColumnData::F32(v) => hdu.write_col(f, name, v).map(drop),
        ColumnData::F64(v) => hdu.write_col(f, name, v).map(drop),
        ColumnData::Str(v) => hdu.write_col(f, name, v).map(drop),
        ColumnData::Bool(v) => {
            // fitsio has no writer for logical columns: call cfitsio directly.
            let mut bytes: Vec<std::os::raw::c_char> = v.iter().map(|&b| b as _).collect();
            let mut status = 0;
            unsafe {
                fitsio::sys::ffpcll(
                    f.as_raw(),
                    (index + 1) as _,
                    1,
                    1,
                    bytes.len() as _,
                    bytes.as_mut_ptr(),
                    &mut status,
                );
            }
            fitsio::errors::check_status(status)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_round_trip_with_their_types() {
        let mut vec_col = Column::new("IDX", 4, ColumnData::I64(vec![1, 2, 3, 4, 5, 6, 7, 8]));
        vec_col.tdim = Some("(4)".into());
        let t = Table {
            columns: vec![
                Column::new("NUMBER", 1, ColumnData::I32(vec![3, 1])),
                Column::new("X", 1, ColumnData::F32(vec![1.5, f32::NAN])),
                Column::new("Y", 1, ColumnData::F64(vec![2.25, -1.0])),
                Column::new("F", 1, ColumnData::I16(vec![0, 4])),
                Column::new("OK", 1, ColumnData::Bool(vec![true, false])),
                Column::new(
                    "NAME",
                    5,
                    ColumnData::Str(vec!["ab".into(), "cdefg".into()]),
                ),
                vec_col,
            ],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.fits");
        write_table(&path, &t).unwrap();
        let back = read_catalog(&path).unwrap();
        assert_eq!(back.nrows(), 2);
        assert_eq!(back.columns.len(), t.columns.len());
        for (a, b) in back.columns.iter().zip(&t.columns) {
            assert_eq!(a.name, b.name);
            match (&a.data, &b.data) {
                (ColumnData::F32(x), ColumnData::F32(y)) => {
                    assert_eq!(x[0], y[0]);
                    assert!(x[1].is_nan());
                }
                _ => assert_eq!(a, b),
            }
        }
        let picked = back.take(&[1, 0]);
        assert_eq!(
            picked.column("NUMBER").unwrap().as_i64().unwrap(),
            vec![1, 3]
        );
        assert_eq!(
            picked.column("IDX").unwrap().data,
            ColumnData::I64(vec![5, 6, 7, 8, 1, 2, 3, 4])
        );
    }
}
