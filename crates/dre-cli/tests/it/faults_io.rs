//! Faults and bad files through the tools: a full disk, headers larger than their file,
//! names CFITSIO would parse as filters, cut datasets of the wrong type, corrupted HDF5.
//! Each is one stderr line naming the file (and object), exit status 1, no temporary left,
//! and the other tiles finished.

use crate::common::{
    all_files, dre_small as dre, golden_psf_for, hdf5_writing, no_temporaries, output, run_in,
    small_cut as cut, stderr, tool_lines, write_small_cube, write_small_cuts, B,
};
use dre::{read_catalog, read_grid, Cut};
use std::path::{Path, PathBuf};
use std::process::Command;

const DRE: &str = env!("CARGO_BIN_EXE_dre");
const MAKE_CUTS: &str = env!("CARGO_BIN_EXE_make_cuts");

// ---- Inputs -----------------------------------------------------------------------------

fn names(n: usize) -> Vec<String> {
    (1..=n).map(|k| format!("00_{k:04}")).collect()
}

fn write_cuts(path: &Path, n: usize) {
    let cuts: Vec<Cut> = names(n).iter().map(|n| cut(n)).collect();
    write_small_cuts(path, &cuts);
}

/// A working directory for `dre`: `cube.fits`, and per tile (name, objects) its cut file
/// and the golden PSF.
fn dre_workdir(tiles: &[(&str, usize)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_small_cube(&d.join("cube.fits"));
    std::fs::create_dir_all(d.join("PSF")).unwrap();
    for (t, n) in tiles {
        write_cuts(&d.join(format!("Cuts/{t}_cuts.h5")), *n);
        golden_psf_for(d, t);
    }
    dir
}

/// The golden tile as `Tiles/NAME.fits`, its SExtractor files in `Sextracted/NAME/`; with
/// `rows`, the catalogue keeps only its first `rows` rows.
fn add_tile(dir: &Path, name: &str, rows: Option<usize>) {
    let g = dre_testdata::golden();
    let copy = |from: PathBuf, to: PathBuf| {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    };
    copy(
        g.join("Tiles/gold.fits"),
        dir.join(format!("Tiles/{name}.fits")),
    );
    for kind in ["nb", "rms", "seg", "cat"] {
        copy(
            g.join(format!("Sextracted/gold/gold_{kind}.fits")),
            dir.join(format!("Sextracted/{name}/{name}_{kind}.fits")),
        );
    }
    if let Some(rows) = rows {
        let cat = dir.join(format!("Sextracted/{name}/{name}_cat.fits"));
        let t = read_catalog(&cat).unwrap();
        let keep: Vec<usize> = (0..rows).collect();
        std::fs::remove_file(&cat).unwrap();
        dre::write_table(&cat, &t.take(&keep)).unwrap();
    }
}

// ---- Checks -----------------------------------------------------------------------------

/// The error lines (not warnings) of `o`: exactly one per entry of `want`, in order, each
/// starting `PROG: FILE: ` and containing the words given.
fn assert_errors(o: &std::process::Output, prog: &str, want: &[(&str, &str)]) {
    let errors: Vec<String> = tool_lines(prog, o)
        .into_iter()
        .filter(|l| !l.starts_with(&format!("{prog}: warning:")))
        .collect();
    assert_eq!(errors.len(), want.len(), "{errors:#?}");
    for (l, (start, words)) in errors.iter().zip(want) {
        assert!(
            l.starts_with(&format!("{prog}: {start}")),
            "{l:?} should start with {start:?}"
        );
        assert!(l.contains(words), "{l:?} should contain {words:?}");
    }
}

fn summary_rows(path: &Path) -> usize {
    read_catalog(path).unwrap().nrows()
}

// ---- A full disk ----------------------------------------------------------------------

/// A tmpfs of `size` mounted on a fresh folder, unmounted when dropped; None (with the
/// reason printed) where mounting is not permitted (CI runs as root, and mounts).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        if which("mount").is_none() {
            eprintln!("skipped: no mount program");
            return None;
        }
        // Spawned through `output`: never while this process writes an HDF5 file.
        let o = output(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir.path()),
        );
        if !o.status.success() {
            eprintln!(
                "skipped: cannot mount a tmpfs here: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return None;
        }
        Some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn which(program: &str) -> Option<PathBuf> {
    dre::find_on_path(&[program])
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        output(Command::new("umount").arg(self.dir.path()));
    }
}

#[test]
fn dre_on_a_full_disk_names_the_file_and_finishes_the_other_tiles() {
    let Some(disk) = SmallDisk::mount("32k") else {
        return;
    };
    let full = disk.path();
    // Tile a's Summary (300 rows, 40 KB) does not fit in 32 KiB; tile b's (5760 bytes) does.
    let dir = dre_workdir(&[("a", 300), ("b", 3)]);
    let d = dir.path();
    let summary = full.join("Summary");
    let o = dre(d, &["-o", summary.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let a = summary.join("a_dre.fits");
    assert_errors(
        &o,
        "dre",
        &[(
            &format!("{}: ", a.display()),
            "could not write the file completely: No space left on device",
        )],
    );
    assert!(!a.exists());
    assert_eq!(summary_rows(&summary.join("b_dre.fits")), 3);
    no_temporaries(full);
    no_temporaries(d);

    // The chi files (HDF5) on the full disk: a's (300 objects) does not fit.
    for f in all_files(full) {
        std::fs::remove_file(f).unwrap();
    }
    let chi = full.join("Chi");
    let o = dre(d, &["--chi", chi.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let a = chi.join("a_chi.h5");
    assert_errors(
        &o,
        "dre",
        &[(
            &format!("{}: ", a.display()),
            "could not write the file completely: No space left on device",
        )],
    );
    assert!(!a.exists());
    assert!(chi.join("b_chi.h5").is_file());
    assert_eq!(summary_rows(&d.join("Summary/b_dre.fits")), 3);
    no_temporaries(full);
}

#[test]
fn make_cuts_on_a_full_disk_names_the_file_and_finishes_the_other_tiles() {
    let Some(disk) = SmallDisk::mount("1m") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    add_tile(d, "big", None);
    add_tile(d, "small", Some(3));
    let cuts = disk.path().join("Cuts");
    let o = run_in(MAKE_CUTS, d, &["-q", "-o", cuts.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let big = cuts.join("big_cuts.h5");
    assert_errors(
        &o,
        "make_cuts",
        &[
            (
                &format!("{}: ", big.display()),
                "could not write the file completely: No space left on device",
            ),
            ("1 of 2 tiles failed", ""),
        ],
    );
    assert!(!big.exists());
    assert!(!dre::CutReader::open(cuts.join("small_cuts.h5"))
        .unwrap()
        .names()
        .is_empty());
    no_temporaries(disk.path());
}

// ---- Headers larger than their file ------------------------------------------------------

/// A FITS header of `cards`, padded to 2880 bytes.
fn header(cards: &[(&str, &str)]) -> Vec<u8> {
    let mut h = String::new();
    for (k, v) in cards {
        h.push_str(&format!("{:<80}", format!("{k:<8}= {v:>20}")));
    }
    h.push_str(&format!("{:<80}", "END"));
    let mut b = h.into_bytes();
    b.resize(b.len().div_ceil(2880) * 2880, b' ');
    b
}

/// A 5760-byte file whose header claims a 200000 x 200000 float image (149 GiB).
fn huge_image(path: &Path) {
    let mut b = header(&[
        ("SIMPLE", "T"),
        ("BITPIX", "-32"),
        ("NAXIS", "2"),
        ("NAXIS1", "200000"),
        ("NAXIS2", "200000"),
    ]);
    b.extend(vec![0u8; 2880]);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, b).unwrap();
}

/// A PSFEx-like file whose one row claims a 10000 x 10000 PSF (400 MB).
fn huge_psfex(path: &Path) {
    let mut b = header(&[
        ("SIMPLE", "T"),
        ("BITPIX", "8"),
        ("NAXIS", "0"),
        ("EXTEND", "T"),
    ]);
    b.extend(header(&[
        ("XTENSION", "'BINTABLE'"),
        ("BITPIX", "8"),
        ("NAXIS", "2"),
        ("NAXIS1", "400000000"),
        ("NAXIS2", "1"),
        ("PCOUNT", "0"),
        ("GCOUNT", "1"),
        ("TFIELDS", "1"),
        ("TTYPE1", "'PSF_MASK'"),
        ("TFORM1", "'100000000E'"),
        ("ACCEPTED", "10"),
        ("PSFAXIS1", "10000"),
        ("PSFAXIS2", "10000"),
    ]));
    b.extend(vec![0u8; 2880]);
    std::fs::write(path, b).unwrap();
}

#[test]
fn huge_headers_are_one_line_naming_the_file() {
    let dir = dre_workdir(&[("a", 3), ("b", 3)]);
    let d = dir.path();

    // As the cube: nothing can be fitted, and nothing is written.
    huge_image(&d.join("huge.fits"));
    let o = run_in(DRE, d, &["-m", "huge.fits", "-q"]);
    assert_eq!(o.status.code(), Some(1));
    assert_errors(
        &o,
        "dre",
        &[("huge.fits: ", "the header declares 149.0 GiB")],
    );
    assert!(all_files(&d.join("Summary")).is_empty());

    // As one tile's PSF (PSFEx, and an image): that tile only.
    huge_psfex(&d.join("PSF/a.psf"));
    let o = dre(d, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_errors(&o, "dre", &[("PSF/a.psf: ", "")]);
    assert!(!d.join("Summary/a_dre.fits").exists());
    assert_eq!(summary_rows(&d.join("Summary/b_dre.fits")), 3);
    let o = dre(d, &["--psf", "huge.fits"]);
    assert_eq!(o.status.code(), Some(1));
    let errors = tool_lines("dre", &o);
    assert!(!errors.is_empty());
    assert!(
        errors.iter().all(|l| l.starts_with("dre: huge.fits: ")),
        "{errors:?}"
    );
    no_temporaries(d);

    // As a tile of make_cuts: that tile only.
    let cuts = tempfile::tempdir().unwrap();
    let c = cuts.path();
    add_tile(c, "a", None);
    add_tile(c, "b", Some(3));
    huge_image(&c.join("Tiles/a.fits"));
    let o = run_in(MAKE_CUTS, c, &["-q"]);
    assert_eq!(o.status.code(), Some(1));
    assert_errors(
        &o,
        "make_cuts",
        &[
            ("Tiles/a.fits: ", "the header declares 149.0 GiB"),
            ("1 of 2 tiles failed", ""),
        ],
    );
    assert!(!c.join("Cuts/a_cuts.h5").exists());
    assert!(!dre::CutReader::open(c.join("Cuts/b_cuts.h5"))
        .unwrap()
        .names()
        .is_empty());
    no_temporaries(c);
}

#[test]
fn a_huge_cached_default_cube_is_rendered_again() {
    let dir = dre_workdir(&[]);
    let d = dir.path();
    let cuts = dre_testdata::golden().join("Cuts/gold_cuts.h5");
    std::fs::create_dir_all(d.join("Cuts")).unwrap();
    std::fs::copy(cuts, d.join("Cuts/gold_cuts.h5")).unwrap();
    std::fs::copy(
        dre_testdata::golden().join("PSF/gold.psf"),
        d.join("PSF/gold.psf"),
    )
    .unwrap();
    let cache = d.join("cache");
    let cached = cache.join("dre_default_cube_v1.fits");
    huge_image(&cached);
    let o = output(
        Command::new(DRE)
            .current_dir(d)
            .env("DRE_CACHE_DIR", &cache)
            .args(["-q"]),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(read_grid(&cached).unwrap(), dre::default_grid());
    assert_eq!(summary_rows(&d.join("Summary/gold_dre.fits")), 30);
    no_temporaries(d);
}

// ---- Literal names ----------------------------------------------------------------------

#[test]
fn brackets_parentheses_and_spaces_go_through_make_cuts_and_dre() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tiles = ["tile[1]", "tile(2)", "t 3"];
    for t in tiles {
        add_tile(d, t, Some(4));
    }
    let o = run_in(MAKE_CUTS, d, &["-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    std::fs::create_dir_all(d.join("PSF")).unwrap();
    for t in tiles {
        golden_psf_for(d, t);
    }
    let cube = dre_testdata::golden().join("cube_small.fits");
    let o = run_in(DRE, d, &["-m", cube.to_str().unwrap(), "-q"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(tool_lines("dre", &o), Vec::<String>::new());
    let mut made: Vec<String> = all_files(d)
        .iter()
        .map(|p| p.strip_prefix(d).unwrap().display().to_string())
        .filter(|p| !p.starts_with("Tiles/") && !p.starts_with("Sextracted/"))
        .filter(|p| !p.rsplit('/').next().unwrap().starts_with('.'))
        .collect();
    made.sort();
    let mut want: Vec<String> = tiles
        .iter()
        .flat_map(|t| {
            [
                format!("Chi/{t}_chi.h5"),
                format!("Cuts/{t}_cuts.h5"),
                format!("PSF/{t}.psf"),
                format!("Summary/{t}_dre.fits"),
            ]
        })
        .collect();
    want.sort();
    assert_eq!(made, want);
    for t in tiles {
        let rows = summary_rows(&d.join(format!("Summary/{t}_dre.fits")));
        assert!(rows > 0, "{t}: {rows} rows");
    }
    no_temporaries(d);
}

#[test]
fn brackets_parentheses_and_spaces_go_through_sex_dre_and_psfex_dre() {
    crate::preprocess::require_tools();
    // The working directory's own path holds a space too: every path the tools get does.
    let top = tempfile::tempdir().unwrap();
    let d = top.path().join("my survey");
    let tiles = ["tile[1]", "tile(2)", "t 3"];
    for t in tiles {
        add_tile(&d, t, None);
    }
    let o = run_in(
        env!("CARGO_BIN_EXE_sex_dre"),
        &d,
        &[
            "-q",
            "-o",
            "Sex out",
            "--subdir",
            "--arg",
            "PIXEL_SCALE",
            "1",
            "-fwhm",
            "3",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(tool_lines("sex_dre", &o), Vec::<String>::new());
    let o = run_in(
        env!("CARGO_BIN_EXE_psfex_dre"),
        &d,
        &["-q", "-i", "Sex out", "-o", "PSF out"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(tool_lines("psfex_dre", &o), Vec::<String>::new());
    for t in tiles {
        for kind in ["cat", "nb", "rms", "seg"] {
            let f = d.join(format!("Sex out/{t}/{t}_{kind}.fits"));
            assert!(f.is_file(), "{}", f.display());
        }
        let cat = read_catalog(d.join(format!("Sex out/{t}/{t}_cat.fits"))).unwrap();
        assert!(cat.nrows() > 10, "{t}: {} objects", cat.nrows());
        let psf = dre::read_psf(d.join(format!("PSF out/{t}.psf"))).unwrap();
        assert_eq!((psf.width, psf.height), (25, 25));
    }
    // No scratch folder, temporary or alias left behind.
    for f in all_files(&d) {
        let rel = f.strip_prefix(&d).unwrap().display().to_string();
        assert!(
            !rel.contains(".tmp") && !rel.contains("/in0/"),
            "left behind: {rel}"
        );
    }
}

// ---- Cut datasets of the wrong type, corrupted HDF5 -------------------------------------

/// Group `name` of `f` with `obj`, `rms` and `seg` of the good cut, each written as the
/// type the closure gives.
fn put_group(
    f: &hdf5::File,
    name: &str,
    obj: impl FnOnce(&hdf5::Group, &Cut),
    rms: impl FnOnce(&hdf5::Group, &Cut),
    seg: impl FnOnce(&hdf5::Group, &Cut),
) {
    let g = f.create_group(name).unwrap();
    let c = cut(name);
    obj(&g, &c);
    rms(&g, &c);
    seg(&g, &c);
}

fn put<T: hdf5::H5Type>(g: &hdf5::Group, name: &str, v: Vec<T>) {
    let ds = g.new_dataset::<T>().shape([B, B]).create(name).unwrap();
    ds.write_raw(&v[..]).unwrap();
}

fn obj_f32(g: &hdf5::Group, c: &Cut) {
    put(g, "obj", c.obj.clone());
}
fn rms_f32(g: &hdf5::Group, c: &Cut) {
    put(g, "rms", c.rms.clone());
}
fn seg_bool(g: &hdf5::Group, c: &Cut) {
    put(g, "seg", c.seg.clone());
}

#[test]
fn cut_datasets_of_the_wrong_type_are_named_and_the_rest_is_fitted() {
    let dir = dre_workdir(&[("b", 3)]);
    let d = dir.path();
    let a = d.join("Cuts/a_cuts.h5");
    {
        let _writing = hdf5_writing();
        let f = hdf5::File::create(&a).unwrap();
        put_group(&f, "00_0001", obj_f32, rms_f32, seg_bool);
        // Read with a warning: float64 images, a uint8 segment (h5py's defaults).
        put_group(
            &f,
            "00_0002",
            |g, c| put(g, "obj", c.obj.iter().map(|&v| v as f64).collect()),
            |g, c| put(g, "rms", c.rms.iter().map(|&v| v as f64).collect()),
            seg_bool,
        );
        put_group(&f, "00_0003", obj_f32, rms_f32, |g, c| {
            put(g, "seg", c.seg.iter().map(|&s| s as u8).collect())
        });
        // Refused: integer rms, a float segment, no segment.
        put_group(
            &f,
            "00_0004",
            obj_f32,
            |g, c| put(g, "rms", c.rms.iter().map(|&v| v as i32).collect()),
            seg_bool,
        );
        put_group(&f, "00_0005", obj_f32, rms_f32, |g, c| {
            put(g, "seg", c.seg.iter().map(|&s| s as u8 as f32).collect())
        });
        put_group(&f, "00_0006", obj_f32, rms_f32, |_, _| {});
    }
    std::fs::copy(d.join("PSF/b.psf"), d.join("PSF/a.psf")).unwrap();
    let o = dre(d, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let object = |k: &str| format!("Cuts/a_cuts.h5: object {k}: ");
    assert_errors(
        &o,
        "dre",
        &[
            (
                &object("00_0004"),
                "rms is int32, expected float32 (or float64)",
            ),
            (&object("00_0005"), "seg is float32, expected bool"),
            (&object("00_0006"), "no `seg` dataset"),
        ],
    );
    let warnings: Vec<String> = tool_lines("dre", &o)
        .into_iter()
        .filter(|l| l.starts_with("dre: warning: Cuts/a_cuts.h5: "))
        .collect();
    assert_eq!(
        warnings,
        [
            "dre: warning: Cuts/a_cuts.h5: obj is float64, read as float32 (make_cuts writes float32)",
            "dre: warning: Cuts/a_cuts.h5: rms is float64, read as float32 (make_cuts writes float32)",
            "dre: warning: Cuts/a_cuts.h5: seg is uint8, read as non-zero = in the segment (make_cuts writes bool)",
        ]
    );
    assert_eq!(summary_rows(&d.join("Summary/a_dre.fits")), 3);
    assert_eq!(summary_rows(&d.join("Summary/b_dre.fits")), 3);
    no_temporaries(d);
}

#[test]
fn corrupted_hdf5_is_named_as_corrupted_and_the_rest_is_fitted() {
    let dir = dre_workdir(&[("a", 3), ("b", 3), ("c", 3)]);
    let d = dir.path();
    // a: the compressed data of one object overwritten on disk.
    let a = d.join("Cuts/a_cuts.h5");
    let (addr, size) = {
        let _writing = hdf5_writing();
        let f = hdf5::File::open(&a).unwrap();
        let c = f.dataset("00_0002/obj").unwrap().chunk_info(0).unwrap();
        (c.addr as usize, c.size as usize)
    };
    let mut bytes = std::fs::read(&a).unwrap();
    bytes[addr..addr + size].fill(0xA5);
    std::fs::write(&a, bytes).unwrap();
    // c: not HDF5 at all.
    std::fs::write(d.join("Cuts/c_cuts.h5"), vec![7u8; 4096]).unwrap();
    let o = dre(d, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_errors(
        &o,
        "dre",
        &[
            (
                "Cuts/a_cuts.h5: object 00_0002: ",
                "`obj` unreadable (corrupted file?)",
            ),
            ("Cuts/c_cuts.h5: ", "not an HDF5 file"),
        ],
    );
    assert_eq!(summary_rows(&d.join("Summary/a_dre.fits")), 2);
    assert_eq!(summary_rows(&d.join("Summary/b_dre.fits")), 3);
    assert!(!d.join("Summary/c_dre.fits").exists());
    no_temporaries(d);
}
