//! Renders model cubes natively (SPEC 3): pixel-integrated Sérsic stamps centred at
//! ((BOXSIZE-1)/2, (BOXSIZE-1)/2), theta = THETA_IMAGE, each normalised to sum 1 in its box.

pub use super::stamp::Stamp;

use super::stamp::{self, Canonical};
use crate::conventions::{stamp_centre, Q_ROUND_TOLERANCE};
use crate::error::{Error, Result};
use crate::io::cube_file::write_cube;
use crate::io::fits::Card;
use crate::model::cube::{Axis, Grid, ModelCube};
use crate::model::sersic::b_n;
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::Path;

/// What the radius axis (10^LOGH) measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RadiusConvention {
    /// The half-light radius along the semi-major axis (GALFIT, Imfit).
    Major,
    /// The circularised half-light radius sqrt(ab) = R_e,major * sqrt(q).
    Circular,
}

impl RadiusConvention {
    /// The semi-major half-light radius of a model of radius `r` and axis ratio `q`.
    pub fn semi_major(self, r: f64, q: f64) -> f64 {
        match self {
            RadiusConvention::Major => r,
            RadiusConvention::Circular => r / q.sqrt(),
        }
    }

    /// The RADTYPE header value.
    pub fn header_value(self) -> &'static str {
        match self {
            RadiusConvention::Major => "HLR_MAJOR",
            RadiusConvention::Circular => "HLR_CIRC",
        }
    }
}

/// One model: Sérsic index, axis ratio b/a, THETA_IMAGE in degrees, semi-major R_e in pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StampParams {
    /// Sérsic index n (> 0; 4 is de Vaucouleurs).
    pub n: f64,
    /// Axis ratio q = b/a, in (0, 1].
    pub q: f64,
    /// Position angle in degrees, THETA_IMAGE: the major axis counter-clockwise from +x.
    pub theta: f64,
    /// Half-light radius along the semi-major axis, in pixels.
    pub re_major: f64,
}

/// Renders one stamp of `boxsize` x `boxsize` pixels, centred at ((BOX-1)/2, (BOX-1)/2).
pub fn render_stamp(params: &StampParams, boxsize: usize) -> Result<Stamp> {
    check_params(params, boxsize)?;
    stamp::render(&canonical(params), boxsize)
}

/// Renders one stamp centred at `centre` (0-based pixel coordinates of the box, anywhere),
/// as a simulated galaxy at a sub-pixel position needs.
pub fn render_at(params: &StampParams, boxsize: usize, centre: (f64, f64)) -> Result<Stamp> {
    check_params(params, boxsize)?;
    if !(centre.0.is_finite() && centre.1.is_finite()) {
        return Err(Error::Invalid(format!("centre {centre:?} is not finite")));
    }
    stamp::render_at(&canonical(params), boxsize, centre)
}

fn canonical(p: &StampParams) -> Canonical {
    Canonical::new(p.n, p.q.min(1.0), p.theta, p.re_major)
}

fn check_params(params: &StampParams, boxsize: usize) -> Result<()> {
    let StampParams {
        n,
        q,
        theta,
        re_major,
    } = *params;
    check_index(n)?;
    check_axrat(q)?;
    if !theta.is_finite() {
        return Err(Error::Invalid(format!(
            "position angle {theta} is not finite"
        )));
    }
    if !(re_major.is_finite() && re_major > 0.0) {
        return Err(Error::Invalid(format!(
            "effective radius {re_major} must be positive and finite"
        )));
    }
    check_box(boxsize)
}

/// Smallest stamp the renderer accepts.
pub const MIN_BOX: usize = 8;
/// Largest Sérsic index accepted: beyond it the cusp outgrows what the tests cover.
pub const MAX_INDEX: f64 = 20.0;

fn check_index(n: f64) -> Result<()> {
    if !(n > 0.0 && n <= MAX_INDEX) {
        return Err(Error::Invalid(format!(
            "Sersic index {n} is outside (0, {MAX_INDEX}]"
        )));
    }
    b_n(n).map(|_| ())
}

fn check_axrat(q: f64) -> Result<()> {
    if !(q > 0.0 && q <= 1.0 + Q_ROUND_TOLERANCE) {
        return Err(Error::Invalid(format!("axis ratio {q} is outside (0, 1]")));
    }
    Ok(())
}

fn check_box(boxsize: usize) -> Result<()> {
    if boxsize < MIN_BOX {
        return Err(Error::Invalid(format!(
            "box size {boxsize} is below the minimum {MIN_BOX}"
        )));
    }
    Ok(())
}

/// Checks that every model of the grid can be rendered.
pub fn validate_grid(grid: &Grid) -> Result<()> {
    grid.validate()?;
    check_box(grid.boxsize)?;
    // Axes are regular, so their ends bound them.
    let ends = |a: &Axis| [a.value(0), a.value(a.count - 1)];
    for n in ends(&grid.index) {
        check_index(n)?;
    }
    for q in ends(&grid.axrat) {
        check_axrat(q)?;
    }
    for t in ends(&grid.posang) {
        if !t.is_finite() {
            return Err(Error::Invalid(format!("position angle {t} is not finite")));
        }
    }
    for l in ends(&grid.logh) {
        let r = 10f64.powf(l);
        if !(r.is_finite() && r > 0.0) {
            return Err(Error::Invalid(format!(
                "log10 radius {l} gives no usable radius"
            )));
        }
    }
    Ok(())
}

/// The index axis from a list of Sérsic indices, which must be evenly spaced (the cube
/// stores INDEX0, DINDEX, NINDEX). One index gives step 0, as the original's cubes.
pub fn index_axis(values: &[f64]) -> Result<Axis> {
    let list = || {
        values
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    match values {
        [] => Err(Error::Invalid("no Sersic index given".into())),
        [n] => Ok(Axis::new(*n, 0.0, 1)),
        [first, second, ..] => {
            let axis = Axis::new(*first, second - first, values.len());
            let span = (values[values.len() - 1] - first).abs();
            let regular = axis.step != 0.0
                && values
                    .iter()
                    .enumerate()
                    .all(|(i, v)| (axis.value(i) - v).abs() <= 1e-9 * span);
            if regular {
                Ok(axis)
            } else {
                Err(Error::Invalid(format!(
                    "Sersic indices {} are not evenly spaced and distinct (the cube stores INDEX0, DINDEX, NINDEX)",
                    list()
                )))
            }
        }
    }
}

/// The header cards recording how a cube was rendered (SPEC 3).
pub fn convention_cards(grid: &Grid, radius: RadiusConvention) -> Vec<Card> {
    vec![
        Card::float(
            "CENTER",
            stamp_centre(grid.boxsize),
            "0-based pixel of profile centre (x and y)",
        ),
        Card::text(
            "RADTYPE",
            radius.header_value(),
            match radius {
                RadiusConvention::Major => "10**LOGH = semi-major half-light radius",
                RadiusConvention::Circular => "10**LOGH = circularised half-light radius",
            },
        ),
        Card::text(
            "ANGCONV",
            "THETA_IMAGE",
            "deg CCW from +x toward +y (row index)",
        ),
        Card::text(
            "FLUXNORM",
            "BOXSUM=1",
            "each stamp sums to 1 inside the box",
        ),
        Card::text(
            "PIXRESP",
            "integrated",
            "profile integrated over each pixel",
        ),
        Card::text("GENERATR", "dre make_cube", "DRE in Rust"),
    ]
}

/// Renders every model of the grid. `tick` is called once per model, from any thread.
/// The result does not depend on the number of threads: each stamp is computed alone, and
/// models that are the same image (theta = ±90, any theta at q = 1) are rendered once and
/// copied.
pub fn render_cube(
    grid: &Grid,
    radius: RadiusConvention,
    tick: &(dyn Fn() + Sync),
) -> Result<ModelCube> {
    validate_grid(grid)?;
    let len = grid.stamp_len();
    let total = grid.n_models() * len;
    let mut data: Vec<f32> = Vec::new();
    data.try_reserve_exact(total).map_err(|_| {
        Error::Invalid(format!(
            "cannot allocate {:.1} GiB for the cube",
            total as f64 * 4.0 / (1u64 << 30) as f64
        ))
    })?;
    data.resize(total, 0.0);

    // The first model of each distinct image renders; the others copy it.
    let models: Vec<Canonical> = (0..grid.n_models())
        .map(|k| {
            let [i, j, t, r] = grid.unravel(k);
            let q = grid.axrat.value(j).min(1.0);
            let re = radius.semi_major(10f64.powf(grid.logh.value(r)), q);
            Canonical::new(grid.index.value(i), q, grid.posang.value(t), re)
        })
        .collect();
    let mut first: HashMap<[u64; 4], usize> = HashMap::new();
    let source: Vec<usize> = models
        .iter()
        .enumerate()
        .map(|(k, m)| *first.entry(m.key()).or_insert(k))
        .collect();

    data.par_chunks_mut(len)
        .enumerate()
        .filter(|(k, _)| source[*k] == *k)
        .try_for_each(|(k, out)| -> Result<()> {
            let s = stamp::render(&models[k], grid.boxsize)?;
            for (o, v) in out.iter_mut().zip(&s.pixels) {
                *o = *v as f32;
            }
            tick();
            Ok(())
        })?;
    for (k, &src) in source.iter().enumerate() {
        if src != k {
            data.copy_within(src * len..(src + 1) * len, k * len);
            tick();
        }
    }
    Ok(ModelCube {
        grid: grid.clone(),
        data,
    })
}

/// Renders the grid and writes it to `path` with its convention cards (atomically).
pub fn make_cube(
    path: &Path,
    grid: &Grid,
    radius: RadiusConvention,
    tick: &(dyn Fn() + Sync),
) -> Result<()> {
    let cube = render_cube(grid, radius, tick)?;
    write_cube(path, &cube, &convention_cards(grid, radius))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::cube::test_grids::tiny as tiny_grid;

    #[test]
    fn an_off_centre_stamp_is_the_centred_one_shifted() {
        let p = StampParams {
            n: 4.0,
            q: 0.6,
            theta: 30.0,
            re_major: 2.5,
        };
        let a = render_stamp(&p, 32).unwrap();
        // Centre moved by whole pixels: the same image, shifted, to the pixel tolerance.
        let b = render_at(&p, 32, (15.5 + 3.0, 15.5 - 2.0)).unwrap();
        let peak = a.pixels.iter().cloned().fold(0.0, f64::max);
        for y in 4..28 {
            for x in 4..28 {
                let (sy, sx) = (y as i64 - 2, x as i64 + 3);
                let want = a.pixels[y * 32 + x] * a.inbox;
                let got = b.pixels[sy as usize * 32 + sx as usize] * b.inbox;
                assert!(
                    (got - want).abs() < 1e-6 * peak,
                    "({y},{x}) {got} vs {want}"
                );
            }
        }
        // Centred on a pixel (odd offset): the cusp falls in that pixel.
        let c = render_at(&p, 32, (10.0, 20.0)).unwrap();
        let max = c
            .pixels
            .iter()
            .cloned()
            .enumerate()
            .fold((0, 0.0), |m, (k, v)| if v > m.1 { (k, v) } else { m });
        assert_eq!(max.0, 20 * 32 + 10);
    }

    #[test]
    fn grid_validation_rejects_bad_grids() {
        assert!(validate_grid(&tiny_grid()).is_ok());
        assert!(validate_grid(&crate::model::default_cube::default_grid()).is_ok());
        let bad = |f: &dyn Fn(&mut Grid)| {
            let mut g = tiny_grid();
            f(&mut g);
            validate_grid(&g).unwrap_err().to_string()
        };
        assert!(bad(&|g| g.axrat = Axis::new(0.5, 0.3, 3)).contains("axis ratio 1.1"));
        assert!(bad(&|g| g.axrat = Axis::new(0.0, 0.5, 2)).contains("axis ratio 0"));
        assert!(bad(&|g| g.boxsize = 7).contains("box size 7"));
        assert!(bad(&|g| g.index = Axis::new(-1.0, 1.0, 1)).contains("Sersic index -1"));
        assert!(bad(&|g| g.logh.step = f64::NAN).contains("not finite"));
        assert!(bad(&|g| g.posang.count = 0).contains("no values"));
        assert!(bad(&|g| g.logh = Axis::new(400.0, 1.0, 1)).contains("log10 radius"));
        // q = 1 reached by rounding is accepted.
        let mut g = tiny_grid();
        g.axrat = Axis::new(0.1, 0.1, 10);
        assert!(validate_grid(&g).is_ok());
    }

    #[test]
    fn index_axis_needs_even_spacing() {
        assert_eq!(index_axis(&[4.0]).unwrap(), Axis::new(4.0, 0.0, 1));
        assert_eq!(index_axis(&[3.0, 4.0]).unwrap(), Axis::new(3.0, 1.0, 2));
        assert_eq!(
            index_axis(&[1.0, 1.5, 2.0, 2.5]).unwrap(),
            Axis::new(1.0, 0.5, 4)
        );
        let e = index_axis(&[3.0, 4.0, 6.0]).unwrap_err().to_string();
        assert!(e.contains("3 4 6") && e.contains("evenly spaced"), "{e}");
        assert!(index_axis(&[2.0, 2.0]).is_err());
        assert!(index_axis(&[]).is_err());
    }
}
