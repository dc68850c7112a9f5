//! Bad input to `dre`: each fault is one line naming the file (and object), the rest of the
//! run completes, the exit status says something failed, and nothing is half-written.

use crate::common::{
    dre_small as dre, golden_psf_for, hdf5_writing, no_temporaries, small_cut as cut, stderr,
    tool_lines, write_small_cube, write_small_cuts as write_cuts,
};
use dre::Cut;
use std::path::Path;

/// HDF5 opens files without close-on-exec: a `dre` spawned by one test thread would inherit
/// (and keep locked) a file another thread is writing. The tests of this file take turns.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// A working directory with tiles `a` and `b`, three good objects each, the golden PSF for
/// both, and a small cube.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_small_cube(&d.join("cube.fits"));
    for t in ["a", "b"] {
        let cuts: Vec<Cut> = ["00_0001", "00_0002", "00_0003"]
            .iter()
            .map(|n| cut(n))
            .collect();
        write_cuts(&d.join(format!("Cuts/{t}_cuts.h5")), &cuts);
        golden_psf_for(d, t);
    }
    dir
}

/// Sets an integer key of HDU `hdu`, replacing its value (fitsio's write_key appends).
fn update_key(path: &Path, hdu: usize, key: &str, value: i64) {
    dre::init_cfitsio();
    let mut f = fitsio::FitsFile::edit(path).unwrap();
    f.hdu(hdu).unwrap();
    let (k, mut status) = (std::ffi::CString::new(key).unwrap(), 0);
    unsafe {
        fitsio::sys::ffukyj(
            f.as_raw(),
            k.as_ptr(),
            value,
            std::ptr::null_mut(),
            &mut status,
        )
    };
    assert_eq!(status, 0);
}

fn summary_rows(dir: &Path, tile: &str) -> usize {
    dre::read_catalog(dir.join(format!("Summary/{tile}_dre.fits")))
        .unwrap()
        .nrows()
}

#[test]
fn a_good_run_fits_everything_and_exits_zero() {
    let _turn = turn();
    let dir = workdir();
    let o = dre(dir.path(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    // No catalogue: a warning, and the Summary holds the fit columns.
    assert!(stderr(&o).contains("no catalogue"));
    assert_eq!(summary_rows(dir.path(), "a"), 3);
    assert_eq!(summary_rows(dir.path(), "b"), 3);
    // Re-running over existing outputs is safe and gives the same files.
    let first = std::fs::read(dir.path().join("Summary/a_dre.fits")).unwrap();
    assert!(dre(dir.path(), &[]).status.success());
    assert_eq!(
        std::fs::read(dir.path().join("Summary/a_dre.fits")).unwrap(),
        first
    );
    no_temporaries(dir.path());
}

#[test]
fn missing_input_folder_is_one_line() {
    let _turn = turn();
    let dir = workdir();
    let o = dre(dir.path(), &["-i", "NoSuchDir"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        tool_lines("dre", &o),
        ["dre: NoSuchDir: no such folder of cut files"]
    );
}

#[test]
fn truncated_cut_file_skips_that_tile_only() {
    let _turn = turn();
    let dir = workdir();
    let d = dir.path();
    let bytes = std::fs::read(d.join("Cuts/a_cuts.h5")).unwrap();
    std::fs::write(d.join("Cuts/a_cuts.h5"), &bytes[..bytes.len() / 2]).unwrap();
    let o = dre(d, &[]);
    assert_eq!(o.status.code(), Some(1));
    let lines = tool_lines("dre", &o);
    let bad: Vec<_> = lines.iter().filter(|l| !l.contains("warning")).collect();
    assert_eq!(bad.len(), 1, "{lines:?}");
    assert!(bad[0].starts_with("dre: Cuts/a_cuts.h5: "), "{}", bad[0]);
    assert!(!d.join("Chi/a_chi.h5").exists() && !d.join("Summary/a_dre.fits").exists());
    assert_eq!(summary_rows(d, "b"), 3);
    no_temporaries(d);
}

#[test]
fn bad_objects_are_reported_and_skipped() {
    let _turn = turn();
    let dir = workdir();
    let d = dir.path();
    let mut empty = cut("00_0002");
    empty.seg.iter_mut().for_each(|s| *s = false);
    let mut nan = cut("00_0003");
    nan.obj.iter_mut().for_each(|v| *v = f32::NAN);
    write_cuts(
        &d.join("Cuts/a_cuts.h5"),
        &[cut("00_0001"), empty, nan, cut("00_0004")],
    );
    // A group without `seg`.
    let writing = hdf5_writing();
    let f = hdf5::File::open_rw(d.join("Cuts/a_cuts.h5")).unwrap();
    f.group("00_0004").unwrap().unlink("seg").unwrap();
    drop(f);
    drop(writing);
    let o = dre(d, &[]);
    assert_eq!(o.status.code(), Some(1));
    let lines = tool_lines("dre", &o);
    for want in [
        "dre: Cuts/a_cuts.h5: object 00_0002: segment is empty",
        "dre: Cuts/a_cuts.h5: object 00_0003: no pixel of its segment has finite data and noise (all NaN)",
        "dre: Cuts/a_cuts.h5: object 00_0004: no `seg` dataset",
    ] {
        assert!(lines.iter().any(|l| l == want), "missing {want:?} in {lines:?}");
    }
    assert_eq!(summary_rows(d, "a"), 1);
    assert_eq!(summary_rows(d, "b"), 3);
}

#[test]
fn psf_faults_skip_their_tile() {
    let _turn = turn();
    let dir = workdir();
    let d = dir.path();
    // Tile a: PSFEx accepted no star. Tile b: no PSF at all.
    update_key(&d.join("PSF/a.psf"), 1, "ACCEPTED", 0);
    std::fs::remove_file(d.join("PSF/b.psf")).unwrap();
    let o = dre(d, &[]);
    assert_eq!(o.status.code(), Some(1));
    let lines = tool_lines("dre", &o);
    assert!(!lines.iter().any(|l| l.contains("warning")), "{lines:?}");
    assert!(
        lines.contains(
            &"dre: PSF/a.psf: no PSF HDU with ACCEPTED > 0 (PSFEx accepted no stars)".to_string()
        ),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"dre: PSF/b.psf: no such PSF file".to_string()),
        "{lines:?}"
    );
    assert!(!d.join("Chi/a_chi.h5").exists() && !d.join("Chi/b_chi.h5").exists());
}

#[test]
fn psf_larger_than_the_stamps_is_refused() {
    let _turn = turn();
    let dir = workdir();
    let d = dir.path();
    let desc = fitsio::images::ImageDescription {
        data_type: fitsio::images::ImageType::Float,
        dimensions: &[33, 33],
    };
    dre::init_cfitsio();
    let mut f = fitsio::FitsFile::create(d.join("big.fits"))
        .with_custom_primary(&desc)
        .open()
        .unwrap();
    let hdu = f.primary_hdu().unwrap();
    hdu.write_image(&mut f, &vec![1f32; 33 * 33]).unwrap();
    drop(f);
    let o = dre(d, &["--psf", "big.fits"]);
    assert_eq!(o.status.code(), Some(1));
    let lines = tool_lines("dre", &o);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        lines[0],
        "dre: big.fits: PSF of 33x33 pixels is larger than the 32x32 model stamps"
    );
}

#[test]
fn malformed_cubes_are_refused_with_the_reason() {
    let _turn = turn();
    let dir = workdir();
    let d = dir.path();
    // NLOGH disagrees with the image.
    update_key(&d.join("cube.fits"), 0, "NLOGH", 4);
    let o = dre(d, &[]);
    assert_eq!(o.status.code(), Some(1));
    let lines = tool_lines("dre", &o);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        lines[0],
        "dre: cube.fits: image shape [2, 64, 96] disagrees with its header: \
         NINDEX*NAXRAT=2, NPOSANG*BOXSIZE=64, NLOGH*BOXSIZE=128"
    );

    // Then no BOXSIZE.
    update_key(&d.join("cube.fits"), 0, "NLOGH", 3);
    dre::init_cfitsio();
    let mut f = fitsio::FitsFile::edit(d.join("cube.fits")).unwrap();
    let mut status = 0;
    let key = std::ffi::CString::new("BOXSIZE").unwrap();
    unsafe { fitsio::sys::ffdkey(f.as_raw(), key.as_ptr(), &mut status) };
    assert_eq!(status, 0);
    drop(f);
    let o = dre(d, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        tool_lines("dre", &o),
        ["dre: cube.fits: missing header key BOXSIZE"]
    );
}

#[test]
fn an_unwritable_output_folder_fails_before_any_output() {
    let _turn = turn();
    let dir = workdir();
    let d = dir.path();
    std::fs::write(d.join("blocker"), "").unwrap();
    let o = dre(d, &["-o", "blocker/Summary"]);
    assert_eq!(o.status.code(), Some(1));
    let lines: Vec<String> = tool_lines("dre", &o)
        .into_iter()
        .filter(|l| !l.contains("warning"))
        .collect();
    assert_eq!(
        lines,
        [
            "dre: blocker/Summary: Not a directory (os error 20)",
            "dre: blocker/Summary: Not a directory (os error 20)"
        ]
    );
    // Neither tile wrote a chi file next to a Summary it could not write.
    assert!(!d.join("Chi/a_chi.h5").exists() && !d.join("Chi/b_chi.h5").exists());
    no_temporaries(d);
}
