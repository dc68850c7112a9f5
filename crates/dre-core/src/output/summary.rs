//! The Summary table (SPEC 5): one row per fitted object, with the original's column names
//! and types, inner-joined with the tile's catalogue on NUMBER (and EXT_NUMBER where the
//! catalogue has it), sorted by the join keys as astropy's `join` does, VIGNET dropped.

use crate::error::{Error, Result};
use crate::fit::params::Params;
use crate::io::table::{Column, ColumnData, Table};
use std::collections::{BTreeMap, HashMap};

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

/// Builds the Summary. `catalog` None gives the fit columns alone. A catalogue that cannot
/// be joined is [`Error::Invalid`]: no integer NUMBER, or a (EXT_NUMBER, NUMBER) on
/// several rows (named, the first few).
pub fn summary_table(rows: &[FitRow], catalog: Option<&Table>) -> Result<Table> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| (rows[i].ext, rows[i].number));
    let rows: Vec<&FitRow> = order.iter().map(|&i| &rows[i]).collect();
    let fit = fit_columns(&rows);
    let refined = refined_columns(&rows);
    let Some(cat) = catalog else {
        let mut fit = fit;
        fit.columns.extend(refined.columns);
        return Ok(fit);
    };

    let (keys, has_ext) = join_keys(cat)?;
    let key = |ext: i64, number: i64| (if has_ext { ext } else { 0 }, number);
    let by_key: HashMap<(i64, i64), usize> =
        keys.into_iter().enumerate().map(|(r, k)| (k, r)).collect();
    let mut pairs: Vec<(usize, usize)> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, row)| {
            by_key
                .get(&key(row.ext as i64, row.number as i64))
                .map(|&r| (i, r))
        })
        .collect();
    if !has_ext {
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
    // After the original's columns and the catalogue's, so that both keep their places.
    out.columns.extend(refined.take(&left).columns);
    Ok(out)
}

/// The columns of [`crate::refine`] (none when no row has them, as for parameters
/// recomputed from a chi file): `LOGR_FIT`, `AX_RATIO_FIT`, `ANGLE_FIT` (and `INDEX_FIT`
/// for cubes of more than one n) each with its `_ERR`, `NPIX` and `DRE_FLAGS`. A row
/// without them has NaN, NPIX -1 and DRE_FLAGS 0.
fn refined_columns(rows: &[&FitRow]) -> Table {
    if rows.iter().all(|r| r.params.refined.is_none()) {
        return Table { columns: vec![] };
    }
    let multi = rows
        .iter()
        .any(|r| r.params.refined.is_some_and(|f| f.multi_index));
    let col = |name: &str, f: &dyn Fn(&crate::fit::refine::Refined) -> f64| {
        Column::new(
            name,
            1,
            ColumnData::F64(
                rows.iter()
                    .map(|r| r.params.refined.as_ref().map_or(f64::NAN, f))
                    .collect(),
            ),
        )
    };
    let mut columns = Vec::new();
    let axes: &[(&str, usize)] = if multi {
        &[
            ("LOGR_FIT", 3),
            ("AX_RATIO_FIT", 1),
            ("ANGLE_FIT", 2),
            ("INDEX_FIT", 0),
        ]
    } else {
        &[("LOGR_FIT", 3), ("AX_RATIO_FIT", 1), ("ANGLE_FIT", 2)]
    };
    for &(name, a) in axes {
        columns.push(col(name, &|f| f.values[a]));
        columns.push(col(&format!("{name}_ERR"), &|f| f.errors[a]));
    }
    columns.push(Column::new(
        "NPIX",
        1,
        ColumnData::I32(
            rows.iter()
                .map(|r| {
                    r.params
                        .refined
                        .map_or(-1, |f| i32::try_from(f.npix).unwrap_or(i32::MAX))
                })
                .collect(),
        ),
    ));
    columns.push(Column::new(
        "DRE_FLAGS",
        1,
        ColumnData::I32(
            rows.iter()
                .map(|r| r.params.refined.map_or(0, |f| f.flags))
                .collect(),
        ),
    ));
    Table { columns }
}

/// The catalogue's join keys (EXT_NUMBER or 0, NUMBER) row by row, and whether it has
/// EXT_NUMBER; fails unless NUMBER (and EXT_NUMBER) are integer columns of the table's
/// length and no key repeats: a repeated key would join one object to several rows, and
/// leave out the objects whose NUMBERs those rows should have carried.
pub(crate) fn join_keys(cat: &Table) -> Result<(Vec<(i64, i64)>, bool)> {
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
    let keys: Vec<(i64, i64)> = (0..cat.nrows())
        .map(|r| (exts.as_ref().map_or(0, |e| e[r]), numbers[r]))
        .collect();
    if let Some(d) = duplicate_keys(&keys, exts.is_some()) {
        return Err(Error::Invalid(d));
    }
    Ok((keys, exts.is_some()))
}

/// One line naming the first few (EXT_NUMBER, NUMBER) keys that occur more than once, with
/// how often, or None when every key is unique. `with_ext`: the catalogue has EXT_NUMBER
/// (else the first of each key is meaningless and not shown).
pub(crate) fn duplicate_keys(keys: &[(i64, i64)], with_ext: bool) -> Option<String> {
    const SHOWN: usize = 5;
    let mut count: BTreeMap<(i64, i64), usize> = BTreeMap::new();
    for k in keys {
        *count.entry(*k).or_default() += 1;
    }
    let dups: Vec<((i64, i64), usize)> = count.into_iter().filter(|(_, n)| *n > 1).collect();
    if dups.is_empty() {
        return None;
    }
    let shown: Vec<String> = dups
        .iter()
        .take(SHOWN)
        .map(|((e, n), c)| match with_ext {
            true => format!("EXT_NUMBER {e} NUMBER {n} ({c} rows)"),
            false => format!("NUMBER {n} ({c} rows)"),
        })
        .collect();
    let more = match dups.len() {
        n if n > SHOWN => format!(" and {} more", n - SHOWN),
        _ => String::new(),
    };
    Some(format!(
        "catalogue NUMBERs are not unique: {}{more}",
        shown.join(", ")
    ))
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
                refined: None,
            },
        }
    }

    #[test]
    fn refined_columns_come_last_and_only_when_known() {
        let cat = Table {
            columns: vec![
                Column::new("NUMBER", 1, ColumnData::I32(vec![5, 2])),
                Column::new("X_IMAGE", 1, ColumnData::F32(vec![50.0, 20.0])),
            ],
        };
        let plain = summary_table(&[row(0, 5), row(0, 2)], Some(&cat)).unwrap();
        assert_eq!(plain.columns.last().unwrap().name, "X_IMAGE");
        let mut a = row(0, 5);
        a.params.refined = Some(crate::fit::refine::Refined {
            values: [4.0, 0.45, 12.5, 0.83],
            errors: [f64::NAN, 0.01, 1.5, 0.02],
            flags: 3,
            npix: 812,
            multi_index: false,
        });
        let t = summary_table(&[a, row(0, 2)], Some(&cat)).unwrap();
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        let n = plain.columns.len();
        assert_eq!(
            names[..n],
            plain
                .columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()[..]
        );
        assert_eq!(
            names[n..],
            [
                "LOGR_FIT",
                "LOGR_FIT_ERR",
                "AX_RATIO_FIT",
                "AX_RATIO_FIT_ERR",
                "ANGLE_FIT",
                "ANGLE_FIT_ERR",
                "NPIX",
                "DRE_FLAGS"
            ]
        );
        // Sorted by NUMBER: row 2 (unknown) first, then 5.
        assert_eq!(
            t.column("NPIX").unwrap().data,
            ColumnData::I32(vec![-1, 812])
        );
        assert_eq!(
            t.column("DRE_FLAGS").unwrap().data,
            ColumnData::I32(vec![0, 3])
        );
        let l = t.column("LOGR_FIT").unwrap().as_f64().unwrap();
        assert!(l[0].is_nan() && l[1] == 0.83);
        assert_eq!(t.column("ANGLE_FIT_ERR").unwrap().as_f64().unwrap()[1], 1.5);
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
    fn duplicate_numbers_are_refused_and_named() {
        let cat = |numbers: Vec<i32>| Table {
            columns: vec![Column::new("NUMBER", 1, ColumnData::I32(numbers))],
        };
        let e =
            summary_table(&[row(0, 1), row(0, 2)], Some(&cat(vec![1, 1, 1, 2, 3, 3]))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "catalogue NUMBERs are not unique: NUMBER 1 (3 rows), NUMBER 3 (2 rows)"
        );
        let many: Vec<i32> = (1..=7).flat_map(|n| [n, n]).collect();
        assert!(summary_table(&[], Some(&cat(many)))
            .unwrap_err()
            .to_string()
            .ends_with("NUMBER 5 (2 rows) and 2 more"));
        // The same NUMBER in two extensions is two objects.
        let two = Table {
            columns: vec![
                Column::new("EXT_NUMBER", 1, ColumnData::I16(vec![1, 2, 2])),
                Column::new("NUMBER", 1, ColumnData::I32(vec![3, 3, 3])),
            ],
        };
        assert_eq!(
            summary_table(&[row(1, 3)], Some(&two))
                .unwrap_err()
                .to_string(),
            "catalogue NUMBERs are not unique: EXT_NUMBER 2 NUMBER 3 (2 rows)"
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
