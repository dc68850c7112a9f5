//! The Summary table (SPEC 5): one row per fitted object, with the original's column names
//! and types, inner-joined with the tile's catalogue on NUMBER (and EXT_NUMBER where the
//! catalogue has it), sorted by the join keys as astropy's `join` does, VIGNET dropped.

use crate::error::{Error, Result};
use crate::fit::params::Params;
use crate::io::table::{Column, ColumnData, Table};
use std::collections::HashMap;

/// One fitted object.
#[derive(Clone, Debug)]
pub struct FitRow {
    /// `EXT_NUMBER`, from the object's name `EE_NNNN`.
    pub ext: u32,
    /// Catalogue `NUMBER`, from the object's name.
    pub number: u64,
    /// The fitted values.
    pub params: Params,
}

/// Builds the Summary. `catalog` None gives the fit columns alone.
pub fn summary_table(rows: &[FitRow], catalog: Option<&Table>) -> Result<Table> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| (rows[i].ext, rows[i].number));
    let rows: Vec<&FitRow> = order.iter().map(|&i| &rows[i]).collect();
    let fit = fit_columns(&rows);
    let Some(cat) = catalog else {
        return Ok(fit);
    };

    let invalid = |m: &str| Error::Invalid(m.to_string());
    let numbers = cat
        .column("NUMBER")
        .and_then(|c| c.as_i64())
        .ok_or_else(|| invalid("catalogue has no integer NUMBER column"))?;
    let exts = match cat.column("EXT_NUMBER") {
        Some(c) => Some(
            c.as_i64()
                .ok_or_else(|| invalid("catalogue EXT_NUMBER is not an integer column"))?,
        ),
        None => None,
    };
    // `Table`'s fields are public: a hand-made catalogue can have ragged columns.
    if cat
        .columns
        .iter()
        .any(|c| c.repeat > 0 && c.len() != cat.nrows())
    {
        return Err(invalid("catalogue columns have different lengths"));
    }
    let key = |ext: i64, number: i64| (if exts.is_some() { ext } else { 0 }, number);
    let mut by_key: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
    for r in 0..cat.nrows() {
        let e = exts.as_ref().map_or(0, |e| e[r]);
        by_key.entry(key(e, numbers[r])).or_default().push(r);
    }
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        if let Some(matches) = by_key.get(&key(row.ext as i64, row.number as i64)) {
            pairs.extend(matches.iter().map(|&r| (i, r)));
        }
    }
    if exts.is_none() {
        // Keyed on NUMBER alone, astropy sorts on NUMBER alone.
        pairs.sort_by_key(|&(i, _)| rows[i].number);
    }
    let left: Vec<usize> = pairs.iter().map(|p| p.0).collect();
    let right: Vec<usize> = pairs.iter().map(|p| p.1).collect();
    let mut out = fit.take(&left);
    let cat_rows = cat.take(&right);
    for col in cat_rows.columns {
        if matches!(col.name.as_str(), "NUMBER" | "EXT_NUMBER" | "VIGNET") {
            continue;
        }
        let mut col = col;
        if out.has(&col.name) {
            col.name = format!("{}_CAT", col.name);
        }
        out.columns.push(col);
    }
    Ok(out)
}

fn fit_columns(rows: &[&FitRow]) -> Table {
    let f32col = |name: &str, f: &dyn Fn(&Params) -> f32| {
        Column::new(
            name,
            1,
            ColumnData::F32(rows.iter().map(|r| f(&r.params)).collect()),
        )
    };
    let f64col = |name: &str, f: &dyn Fn(&Params) -> f64| {
        Column::new(
            name,
            1,
            ColumnData::F64(rows.iter().map(|r| f(&r.params)).collect()),
        )
    };
    let mut idx = Column::new(
        "MODEL_IDX",
        4,
        ColumnData::I64(
            rows.iter()
                .flat_map(|r| r.params.model_idx.map(|i| i as i64))
                .collect(),
        ),
    );
    idx.tdim = Some("(4)".into());
    Table {
        columns: vec![
            Column::new("ROW", 1, ColumnData::I64((0..rows.len() as i64).collect())),
            idx,
            f32col("CHI", &|p| p.chi),
            f32col("CHI_STD", &|p| p.chi_std),
            f32col("LOGR_CHI", &|p| p.logr_chi),
            f32col("LOGR_VAR", &|p| p.logr_var),
            f32col("LOGR_CHI_VAR", &|p| p.logr_chi_var),
            f64col("LOGR_PARAB", &|p| p.logr_parab),
            f64col("LOGR_STD", &|p| p.logr_std),
            f64col("INDEX", &|p| p.index),
            f32col("LOGR", &|p| p.logr),
            f32col("AX_RATIO", &|p| p.ax_ratio),
            f32col("ANGLE", &|p| p.angle),
            Column::new(
                "EXT_NUMBER",
                1,
                ColumnData::I64(rows.iter().map(|r| r.ext as i64).collect()),
            ),
            Column::new(
                "NUMBER",
                1,
                ColumnData::I64(rows.iter().map(|r| r.number as i64).collect()),
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ext: u32, number: u64) -> FitRow {
        FitRow {
            ext,
            number,
            params: Params {
                model_idx: [0, 1, 2, number as usize],
                chi: number as f32,
                chi_std: 0.0,
                logr_chi: 0.0,
                logr_var: 0.0,
                logr_chi_var: 0.0,
                logr_parab: f64::NAN,
                logr_std: f64::NAN,
                index: 4.0,
                logr: 1.0,
                ax_ratio: 0.5,
                angle: 0.0,
            },
        }
    }

    #[test]
    fn inner_join_sorted_by_number_without_vignet() {
        let cat = Table {
            columns: vec![
                Column::new("NUMBER", 1, ColumnData::I32(vec![5, 2, 9])),
                Column::new("X_IMAGE", 1, ColumnData::F32(vec![50.0, 20.0, 90.0])),
                Column::new("VIGNET", 4, ColumnData::F32(vec![0.0; 12])),
            ],
        };
        let t = summary_table(&[row(0, 5), row(0, 2), row(0, 7)], Some(&cat)).unwrap();
        assert_eq!(t.column("NUMBER").unwrap().as_i64().unwrap(), vec![2, 5]);
        assert_eq!(t.column("ROW").unwrap().as_i64().unwrap(), vec![0, 1]);
        assert_eq!(
            t.column("X_IMAGE").unwrap().data,
            ColumnData::F32(vec![20.0, 50.0])
        );
        assert!(!t.has("VIGNET"));
        assert_eq!(
            t.column("MODEL_IDX").unwrap().data,
            ColumnData::I64(vec![0, 1, 2, 2, 0, 1, 2, 5])
        );
    }

    #[test]
    fn ext_number_joins_when_the_catalogue_has_it() {
        let cat = Table {
            columns: vec![
                Column::new("EXT_NUMBER", 1, ColumnData::I16(vec![1, 2])),
                Column::new("NUMBER", 1, ColumnData::I32(vec![3, 3])),
                Column::new("FLAGS", 1, ColumnData::I16(vec![10, 20])),
            ],
        };
        let t = summary_table(&[row(2, 3), row(1, 3)], Some(&cat)).unwrap();
        assert_eq!(
            t.column("EXT_NUMBER").unwrap().as_i64().unwrap(),
            vec![1, 2]
        );
        assert_eq!(
            t.column("FLAGS").unwrap().data,
            ColumnData::I16(vec![10, 20])
        );
    }
}
