//! The pictures: `dre --png` beside each mosaic, `dre_score --plot`, and the off-grid rows
//! of `dre_score`, on the golden tile.

use crate::common::{all_files, golden_cube, golden_workdir, run_in, stderr};
use std::path::{Path, PathBuf};
use std::process::Output;

const DRE: &str = env!("CARGO_BIN_EXE_dre");
const DRE_SCORE: &str = env!("CARGO_BIN_EXE_dre_score");

/// Decodes a PNG file: (width, height, RGB bytes); panics on anything but 8-bit RGB.
fn decode(path: &Path) -> (u32, u32, Vec<u8>) {
    let file = std::fs::File::open(path).unwrap();
    let mut r = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut buf = vec![0; r.output_buffer_size()];
    let info = r.next_frame(&mut buf).unwrap();
    assert_eq!(
        (info.color_type, info.bit_depth),
        (png::ColorType::Rgb, png::BitDepth::Eight)
    );
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

fn distinct_colours(rgb: &[u8]) -> usize {
    let mut c: Vec<&[u8]> = rgb.chunks(3).collect();
    c.sort();
    c.dedup();
    c.len()
}

fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = all_files(dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// `dre` on the golden cuts with the golden cube and `args`.
fn fit(d: &Path, args: &[&str]) -> Output {
    let cube = golden_cube();
    let mut all = vec!["-m", cube.to_str().unwrap(), "--quiet", "--cpu", "2"];
    all.extend_from_slice(args);
    run_in(DRE, d, &all)
}

#[test]
fn png_writes_one_picture_beside_each_mosaic() {
    let dir = golden_workdir(&["Cuts", "PSF", "Sextracted"]);
    let d = dir.path();
    // --png implies --mosaics.
    let out = fit(d, &["--png"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mosaics = d.join("Mosaics/gold");
    let fits = files_ending(&mosaics, "_mosaic.fits");
    let pngs = files_ending(&mosaics, "_mosaic.png");
    let rows = dre::read_catalog(d.join("Summary/gold_dre.fits"))
        .unwrap()
        .nrows();
    assert_eq!(fits.len(), rows);
    assert_eq!(pngs.len(), rows);
    for (f, p) in fits.iter().zip(&pngs) {
        assert_eq!(
            f.to_string_lossy().replace(".fits", ".png"),
            p.to_string_lossy()
        );
        let (w, h, rgb) = decode(p);
        // The golden cube's stamps are 128 pixels: four 256-pixel panels.
        assert_eq!((w, h), dre::mosaic_png_size(128));
        assert_eq!((w, h), (1160, 338));
        assert!(distinct_colours(&rgb) > 50, "{}", p.display());
    }
    // Nothing half-written is left: every file below Mosaics is a mosaic or its picture.
    assert_eq!(all_files(&mosaics).len(), 2 * rows);

    // The pictures are outputs of the tile: one removed, --resume fits the tile again.
    std::fs::remove_file(&pngs[0]).unwrap();
    let out = fit(d, &["--png", "--resume"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(pngs[0].is_file());
    // Asking for pictures where the last run made none redoes the tile too.
    let dir2 = golden_workdir(&["Cuts", "PSF", "Sextracted"]);
    let d2 = dir2.path();
    assert!(fit(d2, &["--mosaics"]).status.success());
    assert!(files_ending(&d2.join("Mosaics"), ".png").is_empty());
    assert!(fit(d2, &["--mosaics", "--png", "--resume"])
        .status
        .success());
    assert_eq!(files_ending(&d2.join("Mosaics"), ".png").len(), rows);
}

#[test]
fn dre_score_reports_the_off_grid_rows_and_draws_the_plot() {
    let dir = golden_workdir(&["Cuts", "PSF", "Sextracted", "Truth", "Summary"]);
    let d = dir.path();
    let cube = golden_cube();
    let cube = cube.to_str().unwrap();
    // The original's Summary (no off-grid columns) first: the old rows only.
    let old = run_in(
        DRE_SCORE,
        d,
        &[
            "Summary/gold_dre.fits",
            "Truth/gold_truth.csv",
            "--radius-column",
            "A_HLR",
            "--cube",
            cube,
        ],
    );
    assert!(old.status.success(), "{}", stderr(&old));
    let old_text = String::from_utf8(old.stdout).unwrap();
    assert!(old_text.contains("\nlog_re_parab "), "{old_text}");
    assert!(!old_text.contains("log_re_fit") && !old_text.contains("pull"));

    let out = fit(d, &["-o", "Ours"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let args = [
        "Ours/gold_dre.fits",
        "Truth/gold_truth.csv",
        "--radius-column",
        "A_HLR",
        "--cube",
        cube,
    ];
    let mut with_plot = args.to_vec();
    with_plot.extend(["--plot", "Plots/score.png"]);
    let new = run_in(DRE_SCORE, d, &with_plot);
    assert!(new.status.success(), "{}", stderr(&new));
    let text = String::from_utf8(new.stdout).unwrap();
    for row in [
        "\nlog_re_fit ",
        "\nq_fit ",
        "\ntheta_fit ",
        "\nn_fit ",
        "\npull ",
    ] {
        assert!(text.contains(row), "no {row:?} in\n{text}");
    }
    // The grid's rows say what they said for the original's Summary (same fits).
    let row = |t: &str, q: &str| {
        t.lines()
            .find(|l| l.starts_with(&format!("{q} ")))
            .unwrap()
            .to_string()
    };
    assert_eq!(row(&text, "log_re"), row(&old_text, "log_re"));
    let (w, h, rgb) = decode(&d.join("Plots/score.png"));
    assert_eq!((w, h), dre::SCORE_PLOT_SIZE);
    assert_eq!((w, h), (1200, 800));
    assert!(distinct_colours(&rgb) > 50);

    // --json carries the new rows and the pulls, overall and per S/N bin.
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let json = run_in(DRE_SCORE, d, &json_args);
    let json = String::from_utf8(json.stdout).unwrap();
    assert!(json.contains("\"log_re_fit\": {\"n\": "), "{json}");
    assert!(
        json.contains("\"pulls\": {\"log_re_fit\": {\"n\": "),
        "{json}"
    );
    assert!(json.matches("\"pulls\": ").count() > 1, "{json}");
}

#[test]
fn dre_score_plot_to_a_bad_path_is_one_line_and_no_file() {
    let dir = golden_workdir(&["Summary", "Truth"]);
    let d = dir.path();
    let score = |plot: &str| {
        run_in(
            DRE_SCORE,
            d,
            &[
                "Summary/gold_dre.fits",
                "Truth/gold_truth.csv",
                "--plot",
                plot,
            ],
        )
    };
    let one_line = |o: &Output| {
        assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
        let err = stderr(o);
        assert!(!err.contains("panicked"), "{err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{err}");
        lines[0].to_string()
    };
    // A folder that cannot be made: a file stands in its way.
    let o = score("Truth/gold_truth.csv/score.png");
    let l = one_line(&o);
    assert!(l.starts_with("dre_score: Truth/gold_truth.csv"), "{l}");
    // Not a PNG name.
    let o = score("score.jpg");
    assert_eq!(
        one_line(&o),
        "dre_score: score.jpg: the score plot is a PNG image: name the file *.png"
    );
    assert!(!d.join("score.jpg").exists());
    // An existing folder where the file should be.
    std::fs::create_dir(d.join("dir.png")).unwrap();
    let o = score("dir.png");
    assert!(one_line(&o).starts_with("dre_score: dir.png"));
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
