//! `dre --gpu`: a usage error in a build without the `cuda` feature; with it, the golden
//! comparison on the GPU backend (on the CPU, with a visible "skipped" line, where there is
//! no CUDA driver or device).

use crate::common::{golden_cube, golden_workdir, run_in, stderr};
#[cfg(feature = "cuda")]
use std::io::Write;

const DRE: &str = env!("CARGO_BIN_EXE_dre");

#[cfg(feature = "cuda")]
fn say(line: &str) {
    // Not captured by libtest, unlike eprintln!: a skipped GPU test must be visible.
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[test]
fn gpu_and_cpu_device_flags_conflict() {
    let dir = golden_workdir(&[]);
    let out = run_in(
        DRE,
        dir.path(),
        &["-m", "x.fits", "--gpu", "--device", "cpu"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = run_in(DRE, dir.path(), &["-m", "x.fits", "--device", "tpu"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[cfg(not(feature = "cuda"))]
#[test]
fn gpu_without_the_feature_is_a_one_line_usage_error() {
    let dir = golden_workdir(&["Cuts", "PSF"]);
    let cube = golden_cube();
    for flag in [&["--gpu"][..], &["--device", "cuda"][..]] {
        let mut args = vec!["-m", cube.to_str().unwrap()];
        args.extend_from_slice(flag);
        let out = run_in(DRE, dir.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert_eq!(
            stderr(&out),
            "dre: this dre was built without the `cuda` feature: \
             cargo build --release --features cuda\n"
        );
        assert!(!dir.path().join("Chi").exists(), "nothing is run");
    }
}

#[cfg(feature = "cuda")]
#[test]
fn gpu_run_matches_the_original() {
    use dre::{nan_argmin, read_catalog, read_chi};

    let dir = golden_workdir(&["Cuts", "PSF", "Sextracted"]);
    let cube = golden_cube();
    let out = run_in(
        DRE,
        dir.path(),
        &[
            "-m",
            cube.to_str().unwrap(),
            "--gpu",
            "--mosaics",
            "--cpu",
            "2",
        ],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    if err.contains("fitting on the CPU") {
        let why = err.lines().next().unwrap_or("");
        say(&format!(
            "gpu_run_matches_the_original: skipped on the GPU ({why}); checked the CPU fallback"
        ));
        assert_eq!(err.lines().count(), 1, "one warning line: {err}");
    } else {
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("dre: GPU "),
            "names the device"
        );
    }
    let g = dre_testdata::golden();
    let (ours, gold) = (
        dir.path().join("Chi/gold_chi.h5"),
        g.join("Chi/gold_chi.h5"),
    );
    let names = hdf5::File::open(&gold).unwrap().member_names().unwrap();
    assert_eq!(names.len(), 30);
    for name in &names {
        let (a, sa) = read_chi(&ours, name).unwrap();
        let (b, sb) = read_chi(&gold, name).unwrap();
        assert_eq!(sa, sb);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-4 * y.abs(), "{name}: chi {x} vs {y}");
        }
        let (ka, kb) = (nan_argmin(&a).unwrap(), nan_argmin(&b).unwrap());
        assert!(
            ka == kb || (b[ka] - b[kb]).abs() <= 1e-6 * b[kb],
            "{name}: {ka} vs {kb}"
        );
    }
    let a = read_catalog(dir.path().join("Summary/gold_dre.fits")).unwrap();
    let b = read_catalog(g.join("Summary/gold_dre.fits")).unwrap();
    assert_eq!(a.nrows(), 30);
    for col in ["MODEL_IDX", "INDEX", "LOGR", "AX_RATIO", "ANGLE"] {
        assert_eq!(
            a.column(col).unwrap().data,
            b.column(col).unwrap().data,
            "{col}"
        );
    }
    assert!(dir
        .path()
        .join("Mosaics/gold/gold_00_0002_mosaic.fits")
        .is_file());
}
