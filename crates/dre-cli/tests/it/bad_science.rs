//! Wrong science input is refused, or accepted with a warning where the result still means
//! something, never used without a word: PSFs, model cubes, catalogues, check images and cut
//! files, truth tables. Each case through the binary: the exit status, the one stderr line
//! naming the file (and object), no temporary left, and the good tiles finished.

use crate::common::{
    blob, dre_small as dre, f64_column, golden_psf_for, golden_workdir, no_temporaries, output,
    run_in, small_cut as cut, small_grid as grid, stderr, tool_lines,
    write_small_cuts as write_cuts, B,
};
use dre::{read_catalog, write_cube, write_table, Axis, ColumnData, Cut, CutReader, ModelCube};
use fitsio::images::{ImageDescription, ImageType};
use fitsio::FitsFile;
use std::path::Path;
use std::process::{Command, Output};

const DRE: &str = env!("CARGO_BIN_EXE_dre");
const MAKE_CUTS: &str = env!("CARGO_BIN_EXE_make_cuts");
const DRE_SCORE: &str = env!("CARGO_BIN_EXE_dre_score");

// ---- a small working directory for dre ------------------------------------------------

/// A cube whose radius index r holds blob `width(r)`.
fn cube(logh: Axis, width: impl Fn(usize) -> usize) -> ModelCube {
    let g = grid(logh);
    let nr = g.logh.count;
    let data = (0..g.n_models())
        .flat_map(|k| {
            let w = width(k % nr);
            (0..B * B).map(move |p| blob(w, p))
        })
        .collect();
    ModelCube { grid: g, data }
}

fn ascending() -> ModelCube {
    cube(Axis::new(0.2, 0.2, 3), |r| r)
}

/// Five radii, Gaussians of variance `s2(r)`: convolved with the golden PSF, a middle one
/// matches the cuts best, so the parabola's vertex lies inside the grid.
fn radius_cube(logh: Axis, s2: impl Fn(usize) -> f32) -> ModelCube {
    let g = grid(logh);
    let nr = g.logh.count;
    let c = (B as f32 - 1.0) / 2.0;
    let data = (0..g.n_models())
        .flat_map(|k| {
            let v = s2(k % nr);
            (0..B * B).map(move |p| {
                let (x, y) = ((p % B) as f32 - c, (p / B) as f32 - c);
                (-(x * x + y * y) / (2.0 * v)).exp()
            })
        })
        .collect();
    ModelCube { grid: g, data }
}

/// HDF5 files are inherited by spawned children: the tests of this file take turns.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Tiles `tiles`, three good objects each, the golden PSF for each, and the small cube.
fn workdir(tiles: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_cube(d.join("cube.fits"), &ascending(), &[]).unwrap();
    std::fs::create_dir_all(d.join("PSF")).unwrap();
    for t in tiles {
        let cuts: Vec<Cut> = ["00_0001", "00_0002", "00_0003"].map(cut).to_vec();
        write_cuts(&d.join(format!("Cuts/{t}_cuts.h5")), &cuts);
        golden_psf_for(d, t);
    }
    dir
}

/// Lines of a dre run other than the warnings that no catalogue is joined.
fn dre_lines(o: &Output) -> Vec<String> {
    tool_lines("dre", o)
        .into_iter()
        .filter(|l| !l.contains("no catalogue"))
        .collect()
}

fn summary_rows(dir: &Path, tile: &str) -> usize {
    read_catalog(dir.join(format!("Summary/{tile}_dre.fits")))
        .unwrap()
        .nrows()
}

/// Rewrites the PSF_MASK of a PSFEx file with `f` applied to each value.
fn edit_psf_mask(path: &Path, f: impl Fn(usize, f32) -> f32) {
    dre::init_cfitsio();
    let mut file = FitsFile::edit(path).unwrap();
    let hdu = file.hdu(1).unwrap();
    let mask: Vec<f32> = hdu.read_col(&mut file, "PSF_MASK").unwrap();
    let new: Vec<f32> = mask.iter().enumerate().map(|(i, &v)| f(i, v)).collect();
    hdu.write_col(&mut file, "PSF_MASK", &new).unwrap();
}

fn write_image(path: &Path, width: usize, height: usize, data: &[f32]) {
    let _ = std::fs::remove_file(path);
    let dims = [height, width];
    let desc = ImageDescription {
        data_type: ImageType::Float,
        dimensions: &dims,
    };
    dre::init_cfitsio();
    let mut f = FitsFile::create(path)
        .with_custom_primary(&desc)
        .open()
        .unwrap();
    let hdu = f.primary_hdu().unwrap();
    hdu.write_image(&mut f, data).unwrap();
}

// ---- PSF ------------------------------------------------------------------------------

#[test]
fn psfs_with_no_positive_sum_non_finite_pixels_or_truncated_are_refused_by_name() {
    let _turn = turn();
    let dir = workdir(&["a_negative", "b_nan", "c_truncated", "d_good"]);
    let d = dir.path();
    edit_psf_mask(&d.join("PSF/a_negative.psf"), |_, v| -v);
    edit_psf_mask(
        &d.join("PSF/b_nan.psf"),
        |i, v| if i == 3 { f32::NAN } else { v },
    );
    let bytes = std::fs::read(d.join("PSF/c_truncated.psf")).unwrap();
    std::fs::write(d.join("PSF/c_truncated.psf"), &bytes[..5000]).unwrap();
    let o = dre(d, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let l = dre_lines(&o);
    assert_eq!(l.len(), 3, "{l:?}");
    assert!(
        l[0].starts_with("dre: PSF/a_negative.psf: PSF pixels sum to -")
            && l[0].ends_with(", not a positive flux (an inverted or empty PSF?)"),
        "{}",
        l[0]
    );
    assert_eq!(
        l[1],
        "dre: PSF/b_nan.psf: PSF has 1 non-finite pixels (NaN or Inf), the first at \
         (x, y) = (3, 0) (0-based)"
    );
    assert_eq!(
        l[2],
        "dre: PSF/c_truncated.psf: truncated or not a FITS file: 5000 bytes is not a whole \
         number of 2880-byte FITS blocks"
    );
    for t in ["a_negative", "b_nan", "c_truncated"] {
        assert!(!d.join(format!("Summary/{t}_dre.fits")).exists());
        assert!(!d.join(format!("Chi/{t}_chi.h5")).exists());
    }
    assert_eq!(summary_rows(d, "d_good"), 3);
    no_temporaries(d);
}

#[test]
fn an_even_sized_psf_is_used_with_one_warning_saying_how_it_is_centred() {
    let _turn = turn();
    let dir = workdir(&["a", "b"]);
    let d = dir.path();
    // A Gaussian centred on the middle of a 24 x 24 image, one file for both tiles.
    let data: Vec<f32> = (0..24 * 24)
        .map(|p| {
            let (x, y) = ((p % 24) as f32 - 11.5, (p / 24) as f32 - 11.5);
            (-(x * x + y * y) / 8.0).exp()
        })
        .collect();
    write_image(&d.join("even.fits"), 24, 24, &data);
    let o = dre(d, &["--psf", "even.fits"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        dre_lines(&o),
        [
            "dre: warning: even.fits: even-sized PSF (24x24 pixels): convolved as scipy's \
          fftconvolve(mode='same') does, centred on pixel (x, y) = (11, 11) (0-based), not on \
          its middle (11.5, 11.5); a PSF centred on its middle moves the models by (+0.5, \
          +0.5) pixel"
        ]
    );
    assert_eq!(summary_rows(d, "a"), 3);
    assert_eq!(summary_rows(d, "b"), 3);
    no_temporaries(d);
}

// ---- model cube -----------------------------------------------------------------------

#[test]
fn a_cube_with_a_model_of_zeros_is_refused_naming_the_model() {
    let _turn = turn();
    let dir = workdir(&["a", "b"]);
    let d = dir.path();
    let mut c = ascending();
    // Model (n, q, theta, logr) indices (0, 1, 0, 2): q 1, theta 0, logr 0.6.
    let k = 3 * 2 + 2;
    let len = c.grid.stamp_len();
    c.data[k * len..(k + 1) * len].fill(0.0);
    write_cube(d.join("cube.fits"), &c, &[]).unwrap();
    let o = dre(d, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        tool_lines("dre", &o),
        [
            "dre: cube.fits: model (n, q, theta, logr) = (4, 1, 0, 0.6), indices (0, 1, 0, 2): \
          every pixel is zero"
        ]
    );
    // Nothing was fitted against it.
    assert!(!d.join("Summary").exists() && !d.join("Chi").exists());
    no_temporaries(d);
}

#[test]
fn a_descending_radius_axis_gives_the_estimates_of_the_ascending_one() {
    let _turn = turn();
    let dir = workdir(&["a"]);
    let d = dir.path();
    let s2 = |r: usize| 0.2 + 0.5 * r as f32;
    let up = radius_cube(Axis::new(0.2, 0.2, 5), s2);
    // The same models with the radius axis read backwards (DLOGH < 0).
    let down = radius_cube(Axis::new(1.0, -0.2, 5), |r| s2(4 - r));
    write_cube(d.join("up.fits"), &up, &[]).unwrap();
    write_cube(d.join("down.fits"), &down, &[]).unwrap();
    let up = run_in(
        DRE,
        d,
        &["-m", "up.fits", "-q", "-o", "Up", "--chi", "ChiUp"],
    );
    let down = run_in(
        DRE,
        d,
        &["-m", "down.fits", "-q", "-o", "Down", "--chi", "ChiDown"],
    );
    for o in [&up, &down] {
        assert_eq!(o.status.code(), Some(0), "{}", stderr(o));
    }
    let (su, sd) = (d.join("Up/a_dre.fits"), d.join("Down/a_dre.fits"));
    assert_eq!(f64_column(&su, "LOGR"), f64_column(&sd, "LOGR"));
    assert_eq!(f64_column(&su, "CHI"), f64_column(&sd, "CHI"));
    let (pu, pd) = (f64_column(&su, "LOGR_PARAB"), f64_column(&sd, "LOGR_PARAB"));
    assert_eq!(pu.len(), 3);
    for (u, w) in pu.iter().zip(&pd) {
        // The original's position-based test made every one NaN.
        assert!(u.is_finite() && (u - w).abs() < 1e-9, "{u} vs {w}");
    }
    no_temporaries(d);
}

#[test]
fn a_zero_radius_step_is_refused() {
    let _turn = turn();
    let dir = workdir(&["a"]);
    let d = dir.path();
    let mut c = ascending();
    c.grid.logh.step = 0.0;
    // write_cube writes what it is given; the reader refuses it.
    write_cube(d.join("cube.fits"), &c, &[]).unwrap();
    let o = dre(d, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        tool_lines("dre", &o),
        ["dre: cube.fits: DLOGH is 0 with NLOGH = 3: the LOGH axis repeats one value"]
    );
    assert!(!d.join("Summary").exists());
}

// ---- catalogue ------------------------------------------------------------------------

/// The golden catalogue with NUMBER of row `to` set to that of row `from`, written as a
/// plain FITS table at `path`.
fn duplicate_number(golden_cat: &Path, path: &Path, from: usize, to: usize) -> i64 {
    let mut cat = read_catalog(golden_cat).unwrap();
    let col = cat.columns.iter_mut().find(|c| c.name == "NUMBER").unwrap();
    let n = match &mut col.data {
        ColumnData::I32(v) => {
            v[to] = v[from];
            v[from] as i64
        }
        ColumnData::I64(v) => {
            v[to] = v[from];
            v[from]
        }
        other => panic!("NUMBER is {other:?}"),
    };
    let _ = std::fs::remove_file(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    write_table(path, &cat).unwrap();
    n
}

#[test]
fn dre_refuses_a_catalogue_with_a_repeated_number_and_keeps_the_fit() {
    let _turn = turn();
    let dir = golden_workdir(&["Cuts", "PSF", "Sextracted"]);
    let d = dir.path();
    let golden_cat = d.join("Sextracted/gold/gold_cat.fits");
    // Tile `dup`: the golden cuts and PSF, a catalogue where row 5 repeats row 2's NUMBER.
    std::fs::copy(d.join("Cuts/gold_cuts.h5"), d.join("Cuts/dup_cuts.h5")).unwrap();
    std::fs::copy(d.join("PSF/gold.psf"), d.join("PSF/dup.psf")).unwrap();
    let n = duplicate_number(&golden_cat, &d.join("Sextracted/dup_cat.fits"), 2, 5);
    let cube = crate::common::golden_cube();
    let o = run_in(DRE, d, &["-m", cube.to_str().unwrap(), "-q"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        tool_lines("dre", &o),
        [format!(
            "dre: Sextracted/dup_cat.fits: catalogue NUMBERs are not unique: NUMBER {n} (2 \
             rows); the Summary has the fit columns only"
        )]
    );
    // Every object fitted once, none copied, none dropped; the good tile joined.
    let dup = read_catalog(d.join("Summary/dup_dre.fits")).unwrap();
    let gold = read_catalog(d.join("Summary/gold_dre.fits")).unwrap();
    assert_eq!(dup.nrows(), 30);
    assert_eq!(gold.nrows(), 30);
    assert!(!dup.has("X_IMAGE") && gold.has("X_IMAGE"));
    no_temporaries(d);
}

// ---- make_cuts: catalogue and check images --------------------------------------------

/// A working directory under target/ with the golden tile as `Tiles/NAME.fits` and copies
/// of its SExtractor files in `Sextracted/NAME/`.
fn cuts_workdir(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let g = dre_testdata::golden();
    for name in names {
        let d = dir.path();
        std::fs::create_dir_all(d.join(format!("Sextracted/{name}"))).unwrap();
        std::fs::create_dir_all(d.join("Tiles")).unwrap();
        std::fs::copy(
            g.join("Tiles/gold.fits"),
            d.join(format!("Tiles/{name}.fits")),
        )
        .unwrap();
        for kind in ["cat", "nb", "rms", "seg"] {
            std::fs::copy(
                g.join(format!("Sextracted/gold/gold_{kind}.fits")),
                d.join(format!("Sextracted/{name}/{name}_{kind}.fits")),
            )
            .unwrap();
        }
    }
    dir
}

fn make_cuts(dir: &Path) -> Output {
    output(Command::new(MAKE_CUTS).current_dir(dir))
}

/// Where the golden cut of object NUMBER `number` lies in the tile: its lower corner.
fn cut_corner(cat: &Path, number: i64) -> (usize, usize) {
    let t = read_catalog(cat).unwrap();
    let numbers = t.column("NUMBER").unwrap().as_i64().unwrap();
    let row = numbers.iter().position(|&n| n == number).unwrap();
    let (x, y) = (
        t.column("X_IMAGE").unwrap().as_f64().unwrap()[row],
        t.column("Y_IMAGE").unwrap().as_f64().unwrap()[row],
    );
    let lower = |pos: f64| ((pos - 1.0) - 64.0).ceil() as usize;
    (lower(x), lower(y))
}

fn read_image(path: &Path) -> Vec<f32> {
    dre::init_cfitsio();
    let mut f = FitsFile::open(path).unwrap();
    let hdu = f.primary_hdu().unwrap();
    hdu.read_image(&mut f).unwrap()
}

#[test]
fn make_cuts_refuses_a_catalogue_with_a_repeated_number() {
    let dir = cuts_workdir(&["a_dup", "b_good"]);
    let d = dir.path();
    let cat = d.join("Sextracted/a_dup/a_dup_cat.fits");
    let n = duplicate_number(&cat, &cat, 0, 1);
    let o = make_cuts(d);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        tool_lines("make_cuts", &o),
        [
            format!(
                "make_cuts: Sextracted/a_dup/a_dup_cat.fits: catalogue NUMBERs are not unique: \
             NUMBER {n} (2 rows): each object needs its own (its cut is named EE_NNNN)"
            ),
            "make_cuts: 1 of 2 tiles failed".to_string()
        ]
    );
    assert!(!d.join("Cuts/a_dup_cuts.h5").exists());
    assert_eq!(
        CutReader::open(d.join("Cuts/b_good_cuts.h5"))
            .unwrap()
            .names()
            .len(),
        30
    );
    no_temporaries(d);
}

#[test]
fn make_cuts_reports_bad_rms_nan_background_and_infinite_pixels_by_object() {
    let dir = cuts_workdir(&["a_good", "b_bad"]);
    let d = dir.path();
    let golden = CutReader::open(dre_testdata::golden().join("Cuts/gold_cuts.h5")).unwrap();
    let names: Vec<String> = golden.names().to_vec();
    let number = |name: &str| name[3..].parse::<i64>().unwrap();
    // Four objects: A no positive rms at all, B one infinite pixel, C one negative rms,
    // D one NaN background pixel.
    let [a, b, c, e] = [&names[3], &names[10], &names[17], &names[24]];
    let sex = d.join("Sextracted/b_bad");
    let cat = sex.join("b_bad_cat.fits");
    let (rms_path, nb_path) = (sex.join("b_bad_rms.fits"), sex.join("b_bad_nb.fits"));
    let (mut rms, mut nb) = (read_image(&rms_path), read_image(&nb_path));
    let at = |(x0, y0): (usize, usize), i: usize, j: usize| (y0 + j) * 1024 + x0 + i;
    // A: zero rms under its whole (cleaned) segment, as the golden cut has it.
    let seg = golden.read(a).unwrap().seg;
    let ca = cut_corner(&cat, number(a));
    for j in 0..128 {
        for i in 0..128 {
            if seg[j * 128 + i] {
                rms[at(ca, i, j)] = 0.0;
            }
        }
    }
    // The cut's centre pixel (64, 64) is always in the segment.
    nb[at(cut_corner(&cat, number(b)), 64, 64)] = f32::INFINITY;
    rms[at(cut_corner(&cat, number(c)), 64, 64)] = -1.0;
    nb[at(cut_corner(&cat, number(e)), 64, 64)] = f32::NAN;
    write_image(&rms_path, 1024, 1024, &rms);
    write_image(&nb_path, 1024, 1024, &nb);

    let o = make_cuts(d);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let l = tool_lines("make_cuts", &o);
    let rms_name = "Sextracted/b_bad/b_bad_rms.fits";
    let nb_name = "Sextracted/b_bad/b_bad_nb.fits";
    assert!(l.contains(&format!(
        "make_cuts: warning: {rms_name}: object {a}: no positive finite rms under its segment \
         (zero, negative or NaN noise): left out"
    )));
    assert!(l.contains(&format!(
        "make_cuts: warning: {nb_name}: object {b}: 1 infinite pixels under its segment: \
         left out"
    )));
    // One line per image for the objects cut with pixels dre will leave out.
    let rms_line = l
        .iter()
        .find(|x| x.contains("have an rms <= 0 or not finite under their segment"))
        .unwrap();
    assert!(rms_line.starts_with(&format!("make_cuts: warning: {rms_name}: ")));
    assert!(rms_line.contains(c.as_str()), "{rms_line}");
    assert_eq!(
        l.iter()
            .find(|x| x.contains("NaN pixels under their segment"))
            .unwrap(),
        &format!(
            "make_cuts: warning: {nb_name}: 1 objects ({e}) have NaN pixels under their \
             segment (no background there?): cut as they are, dre leaves those pixels out of \
             their fit"
        )
    );
    assert_eq!(l.len(), 4, "{l:?}");
    assert!(l.iter().all(|x| x.starts_with("make_cuts: warning: ")));
    // A and B left out, the rest cut; the good tile as the original.
    let bad: Vec<String> = CutReader::open(d.join("Cuts/b_bad_cuts.h5"))
        .unwrap()
        .names()
        .to_vec();
    let want: Vec<String> = names
        .iter()
        .filter(|n| *n != a && *n != b)
        .cloned()
        .collect();
    assert_eq!(bad, want);
    let good = CutReader::open(d.join("Cuts/a_good_cuts.h5")).unwrap();
    assert_eq!(good.names(), &names[..]);
    no_temporaries(d);
}

// ---- dre: cut files -------------------------------------------------------------------

#[test]
fn dre_says_what_is_wrong_with_the_noise_and_data_of_each_object() {
    let _turn = turn();
    let dir = workdir(&["a", "b"]);
    let d = dir.path();
    let centre = 15 * B + 15;
    let mut zero_rms = cut("00_0002");
    zero_rms.rms.iter_mut().for_each(|v| *v = 0.0);
    let n_seg = zero_rms.seg.iter().filter(|&&s| s).count();
    let mut one_negative_rms = cut("00_0003");
    one_negative_rms.rms[centre] = -3.0;
    let mut infinite = cut("00_0004");
    infinite.obj[centre] = f32::INFINITY;
    let mut one_nan = cut("00_0005");
    one_nan.obj[centre] = f32::NAN;
    write_cuts(
        &d.join("Cuts/a_cuts.h5"),
        &[
            cut("00_0001"),
            zero_rms,
            one_negative_rms,
            infinite,
            one_nan,
        ],
    );
    let o = dre(d, &[]);
    assert_eq!(o.status.code(), Some(1));
    let l = dre_lines(&o);
    assert_eq!(
        l,
        [
            format!(
                "dre: Cuts/a_cuts.h5: object 00_0002: no pixel of its segment has a positive \
                 finite rms ({n_seg} of {n_seg} zero or negative, 0 NaN or infinite)"
            ),
            "dre: Cuts/a_cuts.h5: object 00_0004: 1 infinite data pixels in its segment, the \
             first at (x, y) = (15, 15) of the cut: its flux, and every chi, would be NaN"
                .to_string(),
            "dre: warning: Cuts/a_cuts.h5: 2 objects (00_0003, 00_0005) were fitted without \
             some segment pixels (1 with an rms <= 0 or not finite, 1 with NaN data): those \
             pixels are left out of their fit"
                .to_string(),
        ]
    );
    assert_eq!(summary_rows(d, "a"), 3);
    assert_eq!(summary_rows(d, "b"), 3);
    no_temporaries(d);
}

// ---- dre_score ------------------------------------------------------------------------

#[test]
fn dre_score_refuses_malformed_truth_rows_naming_the_line() {
    let dir = golden_workdir(&["Summary", "Truth"]);
    let d = dir.path();
    let text = std::fs::read_to_string(d.join("Truth/gold_truth.csv")).unwrap();
    let score = |csv: &str| {
        std::fs::write(d.join("Truth/bad.csv"), csv).unwrap();
        run_in(
            DRE_SCORE,
            d,
            &["Summary/gold_dre.fits", "Truth/bad.csv", "--json"],
        )
    };
    // The golden truth scores.
    let good = score(&text);
    assert_eq!(good.status.code(), Some(0), "{}", stderr(&good));
    let mut rows: Vec<String> = text.lines().map(String::from).collect();
    let header_fields = rows[0].split(',').count();
    // Line 5 loses its last field.
    let cut_at = rows[4].rfind(',').unwrap();
    rows[4].truncate(cut_at);
    let o = score(&(rows.join("\n") + "\n"));
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    assert_eq!(
        tool_lines("dre_score", &o),
        [format!(
            "dre_score: Truth/bad.csv: line 5: {} fields, the header has {header_fields}",
            header_fields - 1
        )]
    );
    // A word where a number belongs.
    let mut rows: Vec<String> = text.lines().map(String::from).collect();
    rows[7] = rows[7].replacen(",gal,", ",gal,x,", 1);
    let mut f: Vec<&str> = rows[7].split(',').collect();
    f.remove(3);
    rows[7] = f.join(",");
    let o = score(&(rows.join("\n") + "\n"));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        tool_lines("dre_score", &o),
        ["dre_score: Truth/bad.csv: line 8: X is `x`, not a number"]
    );
}
