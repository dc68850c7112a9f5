//! The fuzz corpus (`crates/dre-core/fuzz`, README "Fuzzing") replayed on stable: every
//! input cargo-fuzz kept, every seed and every input that once crashed a reader goes through
//! the same reader call as its fuzz target ([`dre::fuzzing::read_bytes`]) and must come
//! back as `Ok` or `Err`, never a panic. The valid seeds (`ok-*`) must read `Ok`, so that a
//! harness that no longer reaches its reader fails here.
//!
//! `make_fuzz_seeds` (ignored) writes the seeds: small files of each kind, valid and
//! malformed, made with the library's writers, raw FITS bytes and HDF5.

use dre::fuzzing::{read_bytes, read_file_bytes, TARGETS};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Replays `corpus/TARGET` and `seeds/TARGET`; returns how many inputs were read.
fn replay(target: &str) -> usize {
    let dirs = [
        fuzz_dir().join("corpus").join(target),
        fuzz_dir().join("seeds").join(target),
    ];
    let inputs: Vec<PathBuf> = dirs.iter().flat_map(|d| files(d)).collect();
    let mut failures = Vec::new();
    for input in &inputs {
        let bytes = std::fs::read(input).unwrap();
        let name = input.file_name().unwrap().to_string_lossy().into_owned();
        // Whole HDF5 files (`.h5`) among the seeds of the recipe targets are read as files.
        let whole_file = input.extension().is_some_and(|e| e == "h5");
        let read = catch_unwind(AssertUnwindSafe(|| match whole_file {
            true => read_file_bytes(target, &bytes),
            false => read_bytes(target, &bytes),
        }));
        if std::env::var_os("DRE_FUZZ_VERBOSE").is_some() {
            eprintln!("{target} {name}: {read:?}");
        }
        match read {
            Err(_) => failures.push(format!("{}: panicked", input.display())),
            Ok(Err(e)) if name.starts_with("ok-") => {
                failures.push(format!("{}: a valid seed failed: {e}", input.display()))
            }
            Ok(_) => {}
        }
    }
    assert!(failures.is_empty(), "{target}:\n{}", failures.join("\n"));
    inputs.len()
}

macro_rules! replay_tests {
    ($($target:ident),*) => {$(
        #[test]
        fn $target() {
            let n = replay(stringify!($target));
            // Every target keeps seeds, valid and malformed: an empty replay tests nothing.
            assert!(n >= 3, "{}: only {n} corpus files", stringify!($target));
        }
    )*};
}

mod replay {
    use super::replay;
    replay_tests!(fits_image, fits_table, ldac, psf, cube, cuts, chi);
}

#[test]
fn every_target_is_replayed() {
    let names: Vec<&str> = TARGETS.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        names,
        [
            "fits_image",
            "fits_table",
            "ldac",
            "psf",
            "cube",
            "cuts",
            "chi"
        ]
    );
    assert!(read_bytes("no_such_target", b"").is_err());
}

/// Reproducers refused with their own line before cfitsio reaches what they break: a 4 GB
/// buffer (harmful only under the fuzzer's allocation limit: a plain run allocates it lazily
/// and fails to fill it), a division by a zero RICE block size.
#[test]
fn compressed_image_reproducers_are_refused_by_name() {
    let cases = [
        (
            "fits_image",
            "crash-oom-tile-descriptor-4gb.bin",
            "corrupt compressed image: tile 1 claims",
        ),
        (
            "fits_image",
            "crash-fpe-rice-blocksize-zero.bin",
            "corrupt compressed image: ZVAL1 = 0 is no RICE_1 block size",
        ),
        (
            "fits_image",
            "crash-fpe-rice-zval1-zero-no-zname1.bin",
            "corrupt compressed image: ZVAL1 = 0 is no RICE_1 block size",
        ),
        (
            "fits_image",
            "crash-fpe-zimage-t1-ztile-zero.bin",
            "corrupt compressed image: ZTILE1 = 0 is not a positive integer",
        ),
    ];
    for (target, file, message) in cases {
        let bytes = std::fs::read(fuzz_dir().join("seeds").join(target).join(file)).unwrap();
        let err = read_bytes(target, &bytes).expect_err(file).to_string();
        assert!(err.contains(message), "{file}: {err}");
    }
}

// ---- Seeds ------------------------------------------------------------------------------

/// Writes the seed corpus into `crates/dre-core/fuzz/seeds/TARGET/` (run by hand:
/// `cargo test --release -p dre-core --test it make_fuzz_seeds -- --ignored`).
#[test]
#[ignore]
fn make_fuzz_seeds() {
    seeds::write_all(&fuzz_dir().join("seeds"));
}

mod seeds {
    use dre::{
        write_cube, write_table, Axis, ChiWriter, Column, ColumnData, Compression, Cut, CutWriter,
        Grid, ModelCube, Table,
    };
    use std::path::Path;

    const BLOCK: usize = 2880;

    /// One header card: strings quoted, anything else as given (numbers, T/F).
    fn card(key: &str, value: &str) -> String {
        let c = if value.starts_with('\'') {
            format!("{key:<8}= {value:<20}")
        } else {
            format!("{key:<8}= {value:>20}")
        };
        format!("{c:<80}")
    }

    fn quoted(s: &str) -> String {
        format!("'{s:<8}'")
    }

    fn pad(mut v: Vec<u8>, fill: u8) -> Vec<u8> {
        let n = v.len().div_ceil(BLOCK) * BLOCK;
        v.resize(n, fill);
        v
    }

    fn header(cards: &[(&str, String)]) -> Vec<u8> {
        let mut s: String = cards.iter().map(|(k, v)| card(k, v)).collect();
        s.push_str(&format!("{:<80}", "END"));
        pad(s.into_bytes(), b' ')
    }

    /// An image HDU: the primary (`SIMPLE`) or an extension, big-endian pixels in `data`.
    fn image(
        primary: bool,
        bitpix: i32,
        dims: &[usize],
        data: Vec<u8>,
        extra: &[(&str, String)],
    ) -> Vec<u8> {
        let mut cards = vec![if primary {
            ("SIMPLE", "T".to_string())
        } else {
            ("XTENSION", quoted("IMAGE"))
        }];
        cards.push(("BITPIX", bitpix.to_string()));
        cards.push(("NAXIS", dims.len().to_string()));
        let keys = ["NAXIS1", "NAXIS2", "NAXIS3"];
        for (k, d) in keys.iter().zip(dims) {
            cards.push((k, d.to_string()));
        }
        if primary {
            cards.push(("EXTEND", "T".into()));
        } else {
            cards.push(("PCOUNT", "0".into()));
            cards.push(("GCOUNT", "1".into()));
        }
        cards.extend(extra.iter().cloned());
        let mut out = header(&cards);
        if !data.is_empty() {
            out.extend(pad(data, 0));
        }
        out
    }

    fn empty_primary() -> Vec<u8> {
        image(true, 8, &[], vec![], &[])
    }

    fn f32s(v: impl IntoIterator<Item = f32>) -> Vec<u8> {
        v.into_iter().flat_map(f32::to_be_bytes).collect()
    }

    fn i32s(v: impl IntoIterator<Item = i32>) -> Vec<u8> {
        v.into_iter().flat_map(i32::to_be_bytes).collect()
    }

    /// A binary table HDU: `cols` are (TTYPE, TFORM, TDIM), `rows` the raw rows, `heap`
    /// the bytes after them (variable-length arrays).
    fn bintable(
        extname: &str,
        cols: &[(&str, &str, Option<&str>)],
        row_bytes: usize,
        rows: &[Vec<u8>],
        heap: &[u8],
        extra: &[(&str, String)],
    ) -> Vec<u8> {
        let mut cards: Vec<(&str, String)> = vec![
            ("XTENSION", quoted("BINTABLE")),
            ("BITPIX", "8".into()),
            ("NAXIS", "2".into()),
            ("NAXIS1", row_bytes.to_string()),
            ("NAXIS2", rows.len().to_string()),
            ("PCOUNT", heap.len().to_string()),
            ("GCOUNT", "1".into()),
            ("TFIELDS", cols.len().to_string()),
        ];
        let keys: Vec<[String; 3]> = (1..=cols.len())
            .map(|i| [format!("TTYPE{i}"), format!("TFORM{i}"), format!("TDIM{i}")])
            .collect();
        for ((name, form, dim), [t, f, d]) in cols.iter().zip(&keys) {
            cards.push((t, quoted(name)));
            cards.push((f, quoted(form)));
            if let Some(dim) = dim {
                cards.push((d, quoted(dim)));
            }
        }
        cards.push(("EXTNAME", quoted(extname)));
        cards.extend(extra.iter().cloned());
        let mut out = header(&cards);
        let mut data: Vec<u8> = rows.concat();
        data.extend_from_slice(heap);
        if !data.is_empty() {
            out.extend(pad(data, 0));
        }
        out
    }

    fn save(dir: &Path, name: &str, bytes: &[u8]) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    fn copy_of(path: &Path) -> Vec<u8> {
        let bytes = std::fs::read(path).unwrap();
        std::fs::remove_file(path).unwrap();
        bytes
    }

    pub fn write_all(root: &Path) {
        // Inputs the fuzzer found (`crash-*.bin`) are kept; the rest is written anew.
        for f in walk(root) {
            if f.extension().is_none_or(|e| e != "bin") {
                std::fs::remove_file(f).unwrap();
            }
        }
        images(&root.join("fits_image"));
        tables(&root.join("fits_table"));
        ldac(&root.join("ldac"));
        psfs(&root.join("psf"));
        cubes(&root.join("cube"));
        cuts(&root.join("cuts"));
        chis(&root.join("chi"));
        recipes(&root.join("cuts"), true);
        recipes(&root.join("chi"), false);
        let total: u64 = walk(root).iter().map(|p| p.metadata().unwrap().len()).sum();
        assert!(total < 800_000, "seeds take {total} bytes");
    }

    fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            match e.path().is_dir() {
                true => out.extend(walk(&e.path())),
                false => out.push(e.path()),
            }
        }
        out
    }

    fn images(dir: &Path) {
        let ramp = |n: usize| f32s((0..n).map(|i| i as f32 * 0.5 - 3.0));
        save(
            dir,
            "ok-f32.fits",
            &image(true, -32, &[16, 12], ramp(192), &[]),
        );
        let labels = i32s((0..100).map(|i: i32| i / 10 % 3));
        save(
            dir,
            "ok-i32-seg.fits",
            &image(true, 32, &[10, 10], labels, &[]),
        );
        let shorts: Vec<u8> = (0..100i16).flat_map(|v| (v - 50).to_be_bytes()).collect();
        let scaled = [
            ("BSCALE", "0.25".to_string()),
            ("BZERO", "1000".to_string()),
        ];
        let bytes: Vec<u8> = (0..64u8).collect();
        let doubles: Vec<u8> = (0..64)
            .flat_map(|i| (i as f64).sqrt().to_be_bytes())
            .collect();
        let mef = [
            empty_primary(),
            image(false, 16, &[10, 10], shorts.clone(), &scaled),
            image(false, -64, &[8, 8], doubles.clone(), &[]),
        ]
        .concat();
        save(dir, "ok-mef.fits", &mef);
        save(dir, "ok-u8.fits", &image(true, 8, &[8, 8], bytes, &[]));
        save(
            dir,
            "ok-f64-blank.fits",
            &image(true, 64, &[8, 8], i32s(0..128), &[("BLANK", "7".into())]),
        );
        // Tile-compressed images (a BINTABLE holding tiles): sizes from ZNAXISn.
        for (name, float) in [
            ("ok-compressed.fits", true),
            ("ok-compressed-int.fits", false),
        ] {
            use fitsio::images::{ImageDescription, ImageType};
            let path = dir.join(name);
            let desc = ImageDescription {
                data_type: if float {
                    ImageType::Float
                } else {
                    ImageType::Long
                },
                dimensions: &[12, 16],
            };
            let spec = format!("{}[compress R 16,4]", path.display());
            dre::init_cfitsio();
            let mut f = fitsio::FitsFile::create(&spec).open().unwrap();
            let hdu = f.create_image("SCI", &desc).unwrap();
            let v: Vec<i32> = (0..192).map(|i| i % 17).collect();
            match float {
                true => {
                    let v: Vec<f32> = v.iter().map(|&i| i as f32 * 0.5).collect();
                    hdu.write_image(&mut f, &v).unwrap()
                }
                false => hdu.write_image(&mut f, &v).unwrap(),
            }
            drop(f);
            assert!(path.metadata().unwrap().len() < 20_000);
        }
        // Malformed: truncated data, a header claiming 200000 x 200000, a 3-D image only,
        // a header without END, negative and absurd axes.
        let ok = image(true, -32, &[16, 12], ramp(192), &[]);
        save(dir, "bad-truncated.fits", &ok[..BLOCK + 100]);
        save(
            dir,
            "bad-huge-header.fits",
            &image(true, -32, &[200_000, 200_000], ramp(16), &[]),
        );
        save(
            dir,
            "bad-3d.fits",
            &image(true, -32, &[4, 4, 2], ramp(32), &[]),
        );
        let mut no_end = ok.clone();
        let end = (0..BLOCK)
            .step_by(80)
            .find(|&i| no_end[i..].starts_with(b"END"))
            .unwrap();
        no_end[end..end + 3].copy_from_slice(b"   ");
        save(dir, "bad-no-end.fits", &no_end);
        let mut negative = ok.clone();
        negative[3 * 80..4 * 80].copy_from_slice(card("NAXIS1", "-16").as_bytes());
        save(dir, "bad-negative-axis.fits", &negative);
        save(
            dir,
            "bad-bitpix.fits",
            &image(true, 24, &[4, 4], vec![1; 48], &[]),
        );
        save(
            dir,
            "bad-mef-second-huge.fits",
            &[
                empty_primary(),
                image(false, -32, &[8, 8], ramp(64), &[]),
                image(false, 16, &[1 << 20, 1 << 20], shorts, &[]),
            ]
            .concat(),
        );
        // An unsigned 64-bit image (BITPIX 64, BZERO 2^63), a type fitsio does not know.
        let u64_image = image(
            true,
            64,
            &[4, 4],
            vec![0; 128],
            &[("BZERO", "9223372036854775808".into())],
        );
        save(dir, "bad-uint64-image.fits", &u64_image);
        // fitsio panicked describing a table with a variable-length column before the image.
        save(
            dir,
            "crash-varlen-table-first.fits",
            &[
                empty_primary(),
                varlen_table(),
                image(false, -32, &[8, 8], ramp(64), &[]),
            ]
            .concat(),
        );
        save(dir, "bad-empty.fits", b"");
        save(
            dir,
            "bad-not-fits.fits",
            b"SIMPLE  =                    F / not a FITS file really",
        );
    }

    fn table_rows() -> Table {
        Table {
            columns: vec![
                Column::new("NUMBER", 1, ColumnData::I32(vec![1, 2, 3])),
                Column::new("FLAG", 1, ColumnData::Bool(vec![true, false, true])),
                Column::new("B", 1, ColumnData::U8(vec![0, 7, 255])),
                Column::new("S", 1, ColumnData::I16(vec![-3, 0, 3])),
                Column::new("K", 1, ColumnData::I64(vec![1 << 40, -1, 0])),
                Column::new("X", 1, ColumnData::F32(vec![1.5, f32::NAN, -2.0])),
                Column::new("Y", 1, ColumnData::F64(vec![0.25, 1e300, -0.0])),
                Column::new("V", 3, ColumnData::F32((0..9).map(|i| i as f32).collect())),
                Column::new(
                    "NAME",
                    6,
                    ColumnData::Str(vec!["a".into(), "bb".into(), "cccccc".into()]),
                ),
            ],
        }
    }

    /// A binary table with a variable-length column (`1PJ`), its arrays in the heap.
    fn varlen_table() -> Vec<u8> {
        let heap: Vec<u8> = i32s([5, 6, 7]);
        let prow = |n: i32, off: i32| [n.to_be_bytes(), off.to_be_bytes()].concat();
        bintable(
            "VAR",
            &[("P", "1PJ(2)", None)],
            8,
            &[prow(2, 0), prow(1, 8)],
            &heap,
            &[],
        )
    }

    /// A binary table with a complex column (`1C`).
    fn complex_table(extname: &str) -> Vec<u8> {
        bintable(
            extname,
            &[("NUMBER", "1J", None), ("Z", "1C", None)],
            12,
            &[[i32s([1]), f32s([1.0, 2.0])].concat()],
            &[],
            &[],
        )
    }

    fn tables(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("written.fits");
        write_table(&path, &table_rows()).unwrap();
        save(dir, "ok-written.fits", &copy_of(&path));
        let rows: Vec<Vec<u8>> = (0..4)
            .map(|i: i32| {
                [
                    i.to_be_bytes().to_vec(),
                    (i as f32 * 0.5).to_be_bytes().to_vec(),
                ]
                .concat()
            })
            .collect();
        let plain = [
            empty_primary(),
            bintable(
                "CAT",
                &[("NUMBER", "1J", None), ("MAG", "1E", None)],
                8,
                &rows,
                &[],
                &[],
            ),
        ]
        .concat();
        save(dir, "ok-plain.fits", &plain);
        // A vector column with TDIM, an ASCII table before it (skipped: not binary).
        let vrows: Vec<Vec<u8>> = (0..2)
            .map(|r| f32s((0..6).map(|i| (r * 6 + i) as f32)))
            .collect();
        let vec_table = bintable("VEC", &[("IMG", "6E", Some("(3,2)"))], 24, &vrows, &[], &[]);
        let ascii = {
            let cards: Vec<(&str, String)> = vec![
                ("XTENSION", quoted("TABLE")),
                ("BITPIX", "8".into()),
                ("NAXIS", "2".into()),
                ("NAXIS1", "6".into()),
                ("NAXIS2", "2".into()),
                ("PCOUNT", "0".into()),
                ("GCOUNT", "1".into()),
                ("TFIELDS", "1".into()),
                ("TTYPE1", quoted("A")),
                ("TFORM1", quoted("I6")),
                ("TBCOL1", "1".into()),
            ];
            [header(&cards), pad(b"     1     2".to_vec(), b' ')].concat()
        };
        save(
            dir,
            "ok-ascii-then-vector.fits",
            &[empty_primary(), ascii, vec_table].concat(),
        );
        // fitsio panicked describing variable-length and complex columns.
        save(
            dir,
            "crash-varlen-column.fits",
            &[empty_primary(), varlen_table()].concat(),
        );
        save(
            dir,
            "crash-complex-column.fits",
            &[empty_primary(), complex_table("CPLX")].concat(),
        );
        let ascii_f = {
            let cards: Vec<(&str, String)> = vec![
                ("XTENSION", quoted("TABLE")),
                ("BITPIX", "8".into()),
                ("NAXIS", "2".into()),
                ("NAXIS1", "8".into()),
                ("NAXIS2", "1".into()),
                ("PCOUNT", "0".into()),
                ("GCOUNT", "1".into()),
                ("TFIELDS", "1".into()),
                ("TTYPE1", quoted("F")),
                ("TFORM1", quoted("F8.3")),
                ("TBCOL1", "1".into()),
            ];
            [header(&cards), pad(b"   1.250".to_vec(), b' ')].concat()
        };
        save(
            dir,
            "bad-ascii-f-column.fits",
            &[empty_primary(), ascii_f].concat(),
        );
        let bits = bintable(
            "BITS",
            &[("F", "8X", None), ("N", "1J", None)],
            5,
            &[vec![0xA5, 0, 0, 0, 1]],
            &[],
            &[],
        );
        save(dir, "bad-bits.fits", &[empty_primary(), bits].concat());
        // cfitsio went on past a TFIELDS above 999 and filled a column structure for each:
        // 3 GB for this 8 KB file.
        let many = bintable("CAT", &[("NUMBER", "1J", None)], 4, &[i32s([1])], &[], &[]);
        let at = (0..BLOCK)
            .step_by(80)
            .find(|&i| many[i..].starts_with(b"TFIELDS"))
            .unwrap();
        let mut many = many.clone();
        many[at..at + 80].copy_from_slice(card("TFIELDS", "20000000").as_bytes());
        save(
            dir,
            "crash-tfields-huge.fits",
            &[empty_primary(), many].concat(),
        );
        // fitsio's string reads wrote one byte past a buffer of 16 (heap corruption).
        let rows: Vec<Vec<u8>> = (0..40).map(|_| vec![b'x'; 16]).collect();
        let strings = bintable("STR", &[("NAME", "16A", None)], 16, &rows, &[], &[]);
        save(
            dir,
            "crash-string-16a.fits",
            &[empty_primary(), strings].concat(),
        );
        // 10^12 rows of no bytes: one allocation per row aborted the process.
        let empty = bintable("ROWS", &[("NAME", "0A", None)], 0, &[], &[], &[]);
        let at = (0..BLOCK)
            .step_by(80)
            .find(|&i| empty[i..].starts_with(b"NAXIS2"))
            .unwrap();
        let mut empty = empty.clone();
        empty[at..at + 80].copy_from_slice(card("NAXIS2", "1000000000000").as_bytes());
        save(
            dir,
            "crash-zero-width-rows.fits",
            &[empty_primary(), empty].concat(),
        );
        let long = bintable(
            "CAT",
            &[("NUMBER", "1J", None)],
            4,
            &[vec![0, 0, 0, 1]],
            &[],
            &[],
        );
        let mut huge_rows = long.clone();
        let at = (0..BLOCK)
            .step_by(80)
            .find(|&i| long[i..].starts_with(b"NAXIS2"))
            .unwrap();
        huge_rows[at..at + 80].copy_from_slice(card("NAXIS2", "2000000000").as_bytes());
        save(
            dir,
            "bad-huge-rows.fits",
            &[empty_primary(), huge_rows].concat(),
        );
        let wide = bintable(
            "CAT",
            &[("S", "2147483647A", None)],
            4,
            &[vec![b'a'; 4]],
            &[],
            &[],
        );
        save(
            dir,
            "bad-wide-string.fits",
            &[empty_primary(), wide].concat(),
        );
        save(
            dir,
            "bad-no-table.fits",
            &image(true, -32, &[4, 4], f32s((0..16).map(|i| i as f32)), &[]),
        );
        save(dir, "bad-truncated.fits", &plain[..plain.len() - 2000]);
    }

    /// An LDAC catalogue: LDAC_IMHEAD (the image header as one text cell) then
    /// LDAC_OBJECTS, per extension.
    fn ldac_pair(ext: Option<i16>, rows: usize, first: i32) -> Vec<u8> {
        let head: String = [
            "SIMPLE  =                    T",
            "NAXIS   =                    2",
            "GAIN    =                  2.5",
            "END",
        ]
        .iter()
        .map(|c| format!("{c:<80}"))
        .collect();
        let imhead = bintable(
            "LDAC_IMHEAD",
            &[("Field Header Card", "320A", Some("(80, 4)"))],
            320,
            &[head.into_bytes()],
            &[],
            &[],
        );
        let mut cols = vec![
            ("NUMBER", "1J", None),
            ("X_IMAGE", "1D", None),
            ("Y_IMAGE", "1D", None),
            ("CLASS_STAR", "1E", None),
            ("FLUX_RADIUS", "1E", None),
            ("VIGNET", "9E", Some("(3, 3)")),
        ];
        let mut width = 4 + 8 + 8 + 4 + 4 + 36;
        if ext.is_some() {
            cols.push(("EXT_NUMBER", "1I", None));
            width += 2;
        }
        let rows: Vec<Vec<u8>> = (0..rows)
            .map(|r| {
                let mut row = (first + r as i32).to_be_bytes().to_vec();
                row.extend((10.0 + r as f64 * 7.5).to_be_bytes());
                row.extend((20.0 + r as f64 * 3.0).to_be_bytes());
                row.extend((0.1f32 * r as f32).to_be_bytes());
                row.extend(2.5f32.to_be_bytes());
                row.extend(f32s((0..9).map(|i| i as f32)));
                if let Some(e) = ext {
                    row.extend(e.to_be_bytes());
                }
                row
            })
            .collect();
        let objects = bintable("LDAC_OBJECTS", &cols, width, &rows, &[], &[]);
        [imhead, objects].concat()
    }

    fn ldac(dir: &Path) {
        // fitsio panicked describing a complex column.
        let imhead = ldac_pair(None, 1, 1)[..2 * BLOCK].to_vec();
        save(
            dir,
            "crash-complex-column.cat",
            &[empty_primary(), imhead, complex_table("LDAC_OBJECTS")].concat(),
        );
        save(
            dir,
            "ok-ldac.cat",
            &[empty_primary(), ldac_pair(None, 5, 1)].concat(),
        );
        save(
            dir,
            "ok-ldac-two-ext.cat",
            &[
                empty_primary(),
                ldac_pair(None, 3, 1),
                ldac_pair(None, 2, 1),
            ]
            .concat(),
        );
        save(
            dir,
            "ok-ldac-ext-number.cat",
            &[
                empty_primary(),
                ldac_pair(Some(1), 2, 1),
                ldac_pair(Some(2), 2, 1),
            ]
            .concat(),
        );
        save(
            dir,
            "ok-ldac-empty.cat",
            &[empty_primary(), ldac_pair(None, 0, 1)].concat(),
        );
        save(
            dir,
            "bad-ldac-columns-differ.cat",
            &[
                empty_primary(),
                ldac_pair(None, 2, 1),
                ldac_pair(Some(2), 2, 1),
            ]
            .concat(),
        );
        let whole = [empty_primary(), ldac_pair(None, 5, 1)].concat();
        save(dir, "bad-ldac-truncated.cat", &whole[..whole.len() - BLOCK]);
        save(dir, "bad-ldac-imhead-only.cat", &whole[..3 * BLOCK]);
    }

    fn psf_table(w: usize, h: usize, accepted: i32, values: usize) -> Vec<u8> {
        let cells = f32s((0..values).map(|i| {
            let (x, y) = (
                (i % w) as f32 - (w / 2) as f32,
                ((i / w) % h) as f32 - (h / 2) as f32,
            );
            (-(x * x + y * y) / 2.0).exp()
        }));
        let form = format!("{values}E");
        let dim = format!("({w}, {h}, {})", values / (w * h).max(1));
        let extra = [
            ("LOADED", "12".to_string()),
            ("ACCEPTED", accepted.to_string()),
            ("CHI2", "1.1".to_string()),
            ("POLNAXIS", "0".to_string()),
            ("PSF_FWHM", "2.5".to_string()),
            ("PSF_SAMP", "1.0".to_string()),
            ("PSFNAXIS", "3".to_string()),
            ("PSFAXIS1", w.to_string()),
            ("PSFAXIS2", h.to_string()),
            ("PSFAXIS3", (values / (w * h).max(1)).to_string()),
        ];
        let n = cells.len();
        bintable(
            "PSF_DATA",
            &[("PSF_MASK", &form, Some(&dim))],
            n,
            &[cells],
            &[],
            &extra,
        )
    }

    fn psfs(dir: &Path) {
        let gold = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/PSF/gold.psf");
        save(dir, "ok-gold.psf", &std::fs::read(gold).unwrap());
        save(
            dir,
            "ok-small.psf",
            &[empty_primary(), psf_table(5, 5, 10, 75)].concat(),
        );
        save(
            dir,
            "ok-even.psf",
            &[empty_primary(), psf_table(4, 6, 3, 24)].concat(),
        );
        let gauss = f32s((0..49).map(|i| {
            (-(((i % 7) as f32 - 3.0).powi(2) + ((i / 7) as f32 - 3.0).powi(2)) / 3.0).exp()
        }));
        save(
            dir,
            "ok-image.psf",
            &image(true, -32, &[7, 7], gauss.clone(), &[]),
        );
        save(
            dir,
            "ok-plane.psf",
            &image(true, -32, &[7, 7, 1], gauss, &[]),
        );
        save(
            dir,
            "bad-none-accepted.psf",
            &[empty_primary(), psf_table(5, 5, 0, 75)].concat(),
        );
        save(
            dir,
            "bad-short-mask.psf",
            &[empty_primary(), psf_table(9, 9, 4, 25)].concat(),
        );
        let neg = image(true, -32, &[3, 3], f32s([-1.0; 9]), &[]);
        save(dir, "bad-negative.psf", &neg);
        let nan = image(true, -32, &[3, 3], f32s([f32::NAN; 9]), &[]);
        save(dir, "bad-nan.psf", &nan);
        let ok = [empty_primary(), psf_table(5, 5, 10, 75)].concat();
        save(dir, "bad-truncated.psf", &ok[..ok.len() - 200]);
        save(
            dir,
            "bad-huge.psf",
            &image(true, -32, &[200_000, 200_000], f32s([1.0; 9]), &[]),
        );
        save(dir, "bad-empty.psf", b"");
        // fitsio panicked describing a PSF table with a variable-length column.
        save(
            dir,
            "crash-varlen-column.psf",
            &[empty_primary(), varlen_table()].concat(),
        );
    }

    fn grid(index: usize, boxsize: usize) -> Grid {
        Grid {
            index: Axis::new(1.0, 1.5, index),
            axrat: Axis::new(0.5, 0.5, 2),
            posang: Axis::new(0.0, 90.0, 2),
            logh: Axis::new(0.2, 0.2, 3),
            boxsize,
        }
    }

    fn cube_file(dir: &Path, name: &str, cube: &ModelCube) -> Vec<u8> {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(name);
        write_cube(&path, cube, &[]).unwrap();
        copy_of(&path)
    }

    /// A cube file written by hand: the image (NINDEX*NAXRAT, NPOSANG*BOXSIZE,
    /// NLOGH*BOXSIZE) with the grid keys, in the primary or in the first extension.
    fn raw_cube(primary: bool, keys: &[(&str, &str)]) -> Vec<u8> {
        let (b, nt, nr, planes) = (3, 2, 3, 2);
        let dims = [nr * b, nt * b, planes];
        let n: usize = dims.iter().product();
        let data = f32s((0..n).map(|i| (i % 11) as f32 + 1.0));
        let mut cards: Vec<(&str, String)> = [
            ("INDEX0", "1.0"),
            ("DINDEX", "0.5"),
            ("NINDEX", "1"),
            ("AXRAT0", "0.5"),
            ("DAXRAT", "0.4"),
            ("NAXRAT", "2"),
            ("POSANG0", "0.0"),
            ("DPOSANG", "90.0"),
            ("NPOSANG", "2"),
            ("LOGH0", "0.2"),
            ("DLOGH", "0.2"),
            ("NLOGH", "3"),
            ("BOXSIZE", "3"),
        ]
        .iter()
        .map(|&(k, v)| (k, v.to_string()))
        .collect();
        for &(k, v) in keys {
            match cards.iter_mut().find(|(c, _)| *c == k) {
                Some(c) => c.1 = v.to_string(),
                None => cards.push((k, v.to_string())),
            }
        }
        match primary {
            true => image(true, -32, &dims, data, &cards),
            false => [empty_primary(), image(false, -32, &dims, data, &cards)].concat(),
        }
    }

    fn cubes(dir: &Path) {
        let cube = |g: Grid| {
            let n = g.n_models() * g.stamp_len();
            ModelCube {
                grid: g,
                data: (0..n).map(|i| (i % 13) as f32 + 0.5).collect(),
            }
        };
        let ok = cube_file(dir, "a", &cube(grid(1, 4)));
        save(dir, "ok-cube.fits", &ok);
        save(
            dir,
            "ok-cube-two-index.fits",
            &cube_file(dir, "b", &cube(grid(2, 3))),
        );
        save(dir, "ok-raw.fits", &raw_cube(true, &[]));
        // The original's save_models: the image in the first extension.
        save(dir, "ok-in-extension.fits", &raw_cube(false, &[]));
        save(
            dir,
            "ok-descending-logh.fits",
            &raw_cube(true, &[("LOGH0", "0.6"), ("DLOGH", "-0.2")]),
        );
        let mut zero = cube(grid(1, 4));
        zero.data[16..32].iter_mut().for_each(|v| *v = 0.0);
        save(dir, "bad-zero-model.fits", &cube_file(dir, "c", &zero));
        save(
            dir,
            "bad-step-zero.fits",
            &raw_cube(true, &[("DLOGH", "0.0")]),
        );
        save(
            dir,
            "bad-boxsize-zero.fits",
            &raw_cube(true, &[("BOXSIZE", "0")]),
        );
        save(
            dir,
            "bad-huge-counts.fits",
            &raw_cube(true, &[("NLOGH", "1000000000"), ("NPOSANG", "1000000000")]),
        );
        save(dir, "bad-shape.fits", &raw_cube(false, &[("NAXRAT", "3")]));
        save(
            dir,
            "bad-nan-step.fits",
            &raw_cube(true, &[("DAXRAT", "'NaN'")]),
        );
        save(dir, "bad-truncated.fits", &ok[..ok.len() - 500]);
        // fitsio panicked describing a table with a variable-length column before the cube.
        let cube_ext = raw_cube(false, &[]);
        save(
            dir,
            "crash-varlen-table-first.fits",
            &[empty_primary(), varlen_table(), cube_ext[BLOCK..].to_vec()].concat(),
        );
    }

    fn small_cut(name: &str, size: usize) -> Cut {
        let n = size * size;
        Cut {
            name: name.into(),
            size,
            obj: (0..n).map(|i| (i % 5) as f32 - 1.0).collect(),
            seg: (0..n).map(|i| i % 3 == 0).collect(),
            rms: vec![0.5; n],
        }
    }

    fn h5(dir: &Path, name: &str, fill: impl FnOnce(&hdf5::File)) {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(name);
        {
            let f = hdf5::File::create(&path).unwrap();
            fill(&f);
        }
        let bytes = copy_of(&path);
        save(dir, name, &bytes);
    }

    fn put<T: hdf5::H5Type>(g: &hdf5::Group, name: &str, v: Vec<T>, shape: &[usize]) {
        let a = ndarray::ArrayD::from_shape_vec(shape.to_vec(), v).unwrap();
        g.new_dataset_builder().with_data(&a).create(name).unwrap();
    }

    /// A dataset of a recipe (see `dre::fuzzing::hdf5_from_recipe`): `dims` below 9,
    /// `layout` 0 contiguous, 1 chunked, 2 gzip, 3 lzf; `dtype` 0 f32, 1 f64, 5 i32, 8 bool,
    /// 9 string; then the values' bytes.
    fn recipe_dataset(dims: &[u8], layout: u8, dtype: u8, values: &[u8]) -> Vec<u8> {
        // A byte from 0xf0 takes the next one along: a side of 256 + 64 * next.
        let rank = dims.len() - dims.iter().filter(|&&d| d >= 0xf0).count();
        [&[rank as u8], dims, &[layout, dtype], values].concat()
    }

    /// A recipe member: a usual name (index `name`), then a dataset (kind 1) or group (0).
    fn recipe_member(name: u8, dataset: Option<Vec<u8>>) -> Vec<u8> {
        match dataset {
            Some(d) => [vec![2, name, 1], d].concat(),
            None => vec![2, name, 0],
        }
    }

    /// Recipes of cut files (`cuts`) or chi files; the other kind's as malformed seeds.
    fn recipes(dir: &Path, cuts: bool) {
        let (cut_ok, chi_ok) = match cuts {
            true => ("ok", "bad"),
            false => ("bad", "ok"),
        };
        let ones = |n: usize| f32s((0..n).map(|i| 1.0 + i as f32));
        let half = |n: usize| f32s(std::iter::repeat_n(0.5, n));
        let seg: Vec<u8> = (0..16).map(|i| (i % 3 == 0) as u8).collect();
        // A cut: a group (kind 0) of obj, rms and seg, 4 x 4.
        let cut = |obj: Vec<u8>, rms: Vec<u8>, seg: Vec<u8>| -> Vec<u8> {
            [
                vec![1, 2, 0, 0, 3],
                recipe_member(0, Some(obj)),
                recipe_member(1, Some(rms)),
                recipe_member(2, Some(seg)),
            ]
            .concat()
        };
        let obj = recipe_dataset(&[4, 4], 0, 0, &ones(16));
        let rms = recipe_dataset(&[4, 4], 2, 0, &half(16));
        let segment = recipe_dataset(&[4, 4], 3, 8, &seg);
        save(
            dir,
            &format!("{cut_ok}-cut.recipe"),
            &cut(obj.clone(), rms.clone(), segment.clone()),
        );
        let f64s: Vec<u8> = (0..16).flat_map(|i| (i as f64).to_le_bytes()).collect();
        save(
            dir,
            &format!("{cut_ok}-cut-float64.recipe"),
            &cut(
                recipe_dataset(&[4, 4], 1, 1, &f64s),
                rms.clone(),
                segment.clone(),
            ),
        );
        save(
            dir,
            "bad-cut-int-obj.recipe",
            &cut(
                recipe_dataset(&[4, 4], 0, 5, &[7; 64]),
                rms.clone(),
                segment.clone(),
            ),
        );
        save(
            dir,
            "bad-cut-string-seg.recipe",
            &cut(
                obj.clone(),
                rms.clone(),
                recipe_dataset(&[4, 4], 0, 9, &[b'a'; 64]),
            ),
        );
        // Sides of 256 + 64 * 60 = 4096 and 4160 pixels, never written: fill values.
        save(
            dir,
            "bad-cut-large.recipe",
            &cut(
                recipe_dataset(&[0xf0, 60, 0xf0, 61], 0, 0, &[]),
                rms.clone(),
                segment.clone(),
            ),
        );
        save(
            dir,
            "bad-cut-scalar.recipe",
            &cut(recipe_dataset(&[], 0, 0, &ones(1)), rms, segment),
        );
        // Chi cubes: root datasets (kind 1) of 4 axes.
        let chi = |name: u8, d: Vec<u8>| -> Vec<u8> { [vec![2, name, 1], d].concat() };
        let cube = recipe_dataset(&[1, 2, 2, 3], 0, 0, &ones(12));
        let gz: Vec<u8> = (0..12)
            .flat_map(|i| (i as f64 * 0.5).to_le_bytes())
            .collect();
        save(
            dir,
            &format!("{chi_ok}-chi.recipe"),
            &[
                vec![2],
                chi(0, cube.clone()),
                chi(1, recipe_dataset(&[1, 2, 2, 3], 2, 1, &gz)),
            ]
            .concat(),
        );
        save(
            dir,
            "bad-chi-three-axes.recipe",
            &[vec![1], chi(0, recipe_dataset(&[2, 2, 3], 0, 0, &ones(12)))].concat(),
        );
        save(
            dir,
            "bad-chi-ints.recipe",
            &[
                vec![1],
                chi(0, recipe_dataset(&[1, 2, 2, 3], 1, 5, &[1; 48])),
            ]
            .concat(),
        );
        save(
            dir,
            "bad-chi-large.recipe",
            &[
                vec![1],
                chi(
                    0,
                    recipe_dataset(&[0xf0, 0, 0xf0, 0, 0xf0, 0, 0xf0, 0], 0, 0, &[]),
                ),
            ]
            .concat(),
        );
        save(
            dir,
            "bad-duplicate-names.recipe",
            &[
                vec![3],
                chi(0, cube.clone()),
                vec![0, 0, 1],
                cube,
                vec![2, 0, 2],
            ]
            .concat(),
        );
    }

    fn cuts(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        for (name, c) in [
            ("ok-plain.h5", Compression::None),
            ("ok-lzf.h5", Compression::Low),
            ("ok-gzip.h5", Compression::Medium),
        ] {
            let path = dir.join(format!("w-{name}"));
            let mut w = CutWriter::create(&path, c).unwrap();
            w.add(small_cut("01_0001", 6)).unwrap();
            w.add(small_cut("01_0002", 6)).unwrap();
            w.finish().unwrap();
            save(dir, name, &copy_of(&path));
        }
        h5(dir, "ok-float64-int-seg.h5", |f| {
            let g = f.create_group("01_0003").unwrap();
            put(&g, "obj", vec![1.0f64; 16], &[4, 4]);
            put(&g, "rms", vec![0.5f64; 16], &[4, 4]);
            put(
                &g,
                "seg",
                (0..16).map(|i| i % 2).collect::<Vec<u8>>(),
                &[4, 4],
            );
        });
        h5(dir, "bad-shapes.h5", |f| {
            let g = f.create_group("01_0004").unwrap();
            put(&g, "obj", vec![1.0f32; 12], &[3, 4]);
            put(&g, "rms", vec![0.5f32; 16], &[4, 4]);
            put(&g, "seg", vec![true; 16], &[4, 4]);
            let g = f.create_group("01_0005").unwrap();
            put(&g, "obj", vec![1i32; 16], &[4, 4]);
            put(&g, "rms", vec![0.5f32; 16], &[4, 4]);
            put(&g, "seg", vec![1.5f32; 16], &[4, 4]);
            put(f, "01_0006", vec![1.0f32; 4], &[2, 2]);
            let g = f.create_group("01_0007").unwrap();
            g.create_group("obj").unwrap();
        });
        let ok = std::fs::read(dir.join("ok-gzip.h5")).unwrap();
        save(dir, "bad-truncated.h5", &ok[..ok.len() / 2]);
        let mut flipped = ok.clone();
        for i in (200..flipped.len()).step_by(97) {
            flipped[i] ^= 0x5a;
        }
        save(dir, "bad-corrupted.h5", &flipped);
        save(dir, "bad-not-hdf5.h5", b"\x89HDF\r\n\x1a\nnot really");
    }

    fn chis(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        let shape = [1, 2, 2, 3];
        for (name, c) in [
            ("ok-plain.h5", Compression::None),
            ("ok-gzip.h5", Compression::Medium),
        ] {
            let path = dir.join(format!("w-{name}"));
            let mut w = ChiWriter::create(&path, shape, c).unwrap();
            w.add(
                "01_0001",
                &(0..12).map(|i| i as f32 * 0.25).collect::<Vec<_>>(),
            )
            .unwrap();
            w.add("01_0002", &[f32::NAN; 12]).unwrap();
            w.finish().unwrap();
            save(dir, name, &copy_of(&path));
        }
        h5(dir, "ok-float64.h5", |f| {
            put(f, "01_0003", vec![2.0f64; 12], &shape)
        });
        h5(dir, "bad-types-shapes.h5", |f| {
            put(f, "01_0004", vec![2i32; 12], &shape);
            put(f, "01_0005", vec![2.0f32; 12], &[3, 4]);
            f.create_group("01_0006").unwrap();
        });
        let ok = std::fs::read(dir.join("ok-gzip.h5")).unwrap();
        save(dir, "bad-truncated.h5", &ok[..ok.len() * 2 / 3]);
    }
}
