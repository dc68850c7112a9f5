//! The make_cube binary: a tiny cube, and one-line errors with exit status 1 (2 for bad
//! arguments).

use crate::common::output;
use dre::read_cube;
use std::process::Command;

fn make_cube(args: &[&str]) -> std::process::Output {
    output(Command::new(env!("CARGO_BIN_EXE_make_cube")).args(args))
}

#[test]
fn renders_a_tiny_cube() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sub/cube.fits");
    let o = make_cube(&[
        "--index",
        "1",
        "2",
        "--axrat0",
        "0.5",
        "--daxrat",
        "0.5",
        "--naxrat",
        "2",
        "--posang0",
        "-90",
        "--dposang",
        "90",
        "--nposang",
        "3",
        "--logh0",
        "-0.4",
        "--dlogh",
        "0.5",
        "--nlogh",
        "2",
        "--boxsize",
        "16",
        "--radius",
        "circular",
        "--cpu",
        "2",
        "--quiet",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stderr.is_empty());
    let cube = read_cube(&out).unwrap();
    assert_eq!(cube.grid.shape(), [2, 2, 3, 2]);
    assert_eq!(cube.grid.index.values(), vec![1.0, 2.0]);
    assert_eq!(cube.grid.posang.values(), vec![-90.0, 0.0, 90.0]);
    assert_eq!(cube.grid.boxsize, 16);
    for m in cube.models() {
        let sum: f64 = m.iter().map(|&v| v as f64).sum();
        assert!((sum - 1.0).abs() < 1e-5, "stamp sum {sum}");
    }
    // The header (ASCII cards of 80 characters) records the convention.
    let bytes = std::fs::read(&out).unwrap();
    let header = String::from_utf8_lossy(&bytes[..2880 * 2]);
    assert!(header.contains("RADTYPE = 'HLR_CIRC'"));
    assert!(header.contains("PIXRESP = 'integrated'"));
}

#[test]
fn bad_input_is_one_line_and_status_1_or_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cube.fits");
    let out = out.to_str().unwrap();
    let blocked = dir.path().join("file");
    std::fs::write(&blocked, "").unwrap();
    let under_a_file = blocked.join("cube.fits");
    // Exit status 1 for a grid that cannot be rendered or an unwritable output, 2 for a
    // usage error (clap's "invalid value").
    let cases: [(&[&str], &str, i32); 8] = [
        (&["--naxrat", "11"], "axis ratio 1.1", 1),
        (&["--axrat0", "0"], "axis ratio 0", 1),
        (&["--boxsize", "7"], "box size 7", 1),
        (&["--dlogh", "inf"], "not finite", 1),
        (&["--nposang", "0"], "no values", 1),
        (&["--index", "2", "3", "5"], "not evenly spaced", 1),
        (&["--naxrat", "x"], "invalid value 'x'", 2),
        (
            &[
                "--nlogh",
                "1",
                "--naxrat",
                "1",
                "-o",
                under_a_file.to_str().unwrap(),
            ],
            "os error",
            1,
        ),
    ];
    for (args, want, status) in cases {
        let mut all = args.to_vec();
        if !args.contains(&"-o") {
            all.extend(["-o", out]);
        }
        let o = make_cube(&all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(status), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("make_cube: ") && err.contains(want),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"));
    }
    // Nothing was written, not even a temporary.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1);
}
