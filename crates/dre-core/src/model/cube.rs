//! The model cube: noiseless, flux-normalised Sérsic stamps on a regular 4-axis grid
//! (Sérsic index n, axis ratio q, position angle theta, log10 effective radius),
//! held once in memory as float32 in C order (n, q, theta, logr, y, x).
//!
//! On disk (SPEC 3) the image is (NINDEX*NAXRAT, NPOSANG*BOXSIZE, NLOGH*BOXSIZE):
//! one row of stamps per angle, one column per radius.

use crate::conventions::{are_twin_angles, is_round};
use crate::error::{Error, Result};
use crate::io::fits::Card;
use rayon::prelude::*;

/// One regular axis of the grid: `start + i * step` for `i` in `0..count`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Axis {
    /// First value (header key `NAME0`).
    pub start: f64,
    /// Step between values (`DNAME`); any value when `count` is 1.
    pub step: f64,
    /// Number of values (`NNAME`).
    pub count: usize,
}

impl Axis {
    /// The axis `start, start + step, ...`, `count` values.
    pub fn new(start: f64, step: f64, count: usize) -> Self {
        Axis { start, step, count }
    }

    /// The i-th grid value, computed as numpy's `arange(count) * step + start`.
    pub fn value(&self, i: usize) -> f64 {
        i as f64 * self.step + self.start
    }

    /// Every grid value, as [`Axis::value`] computes it.
    pub fn values(&self) -> Vec<f64> {
        (0..self.count).map(|i| self.value(i)).collect()
    }
}

/// The four axes of a cube and the stamp size.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    /// Sérsic index n (`INDEX0 DINDEX NINDEX`; default cube: n = 4 only, as the original).
    pub index: Axis,
    /// Axis ratio q = b/a, in (0, 1] (`AXRAT*`; default 0.1..1.0 step 0.1, as the original).
    pub axrat: Axis,
    /// Position angle theta in degrees, THETA_IMAGE (`POSANG*`; default -90..90 step 15, as
    /// the original).
    pub posang: Axis,
    /// log10 of the effective radius in pixels (`LOGH*`; default -0.4..1.6 step 0.1, as
    /// the original).
    pub logh: Axis,
    /// Stamp side in pixels (`BOXSIZE`; default 128, as the original).
    pub boxsize: usize,
}

impl Grid {
    /// (NINDEX, NAXRAT, NPOSANG, NLOGH).
    pub fn shape(&self) -> [usize; 4] {
        [
            self.index.count,
            self.axrat.count,
            self.posang.count,
            self.logh.count,
        ]
    }

    /// The error [`ModelCube::check_models`] gives for the faults `bad` (flat model
    /// number, what is wrong) found in a cube of this grid, in model order: it names the
    /// first bad model by its grid values and indices. Ok when there are none.
    pub(crate) fn model_faults(&self, bad: &[(usize, String)]) -> Result<()> {
        let Some((k, why)) = bad.first() else {
            return Ok(());
        };
        let [i, j, t, r] = self.unravel(*k);
        // float32, as the original holds its axes: 0.4, not 0.4000000000000001.
        let v = |a: &Axis, i: usize| a.value(i) as f32;
        let more = match bad.len() {
            1 => String::new(),
            n => format!(" (and {} more models)", n - 1),
        };
        Err(Error::Invalid(format!(
            "model (n, q, theta, logr) = ({}, {}, {}, {}), indices ({i}, {j}, {t}, {r}): \
             {why}{more}",
            v(&self.index, i),
            v(&self.axrat, j),
            v(&self.posang, t),
            v(&self.logh, r)
        )))
    }

    /// Fails unless `data` holds this grid's stamps, one after another: a cube's fields are
    /// public, so a hand-made one may not.
    pub(crate) fn check_data(&self, data: &[f32]) -> Result<()> {
        let need = self.n_models().checked_mul(self.stamp_len());
        if need != Some(data.len()) {
            return Err(Error::Invalid(format!(
                "cube holds {} values, not the {} models of {}x{} pixels of its grid",
                data.len(),
                self.n_models(),
                self.boxsize,
                self.boxsize
            )));
        }
        Ok(())
    }

    /// Number of models, the product of the four counts (2730 for the default grid).
    pub fn n_models(&self) -> usize {
        self.shape().iter().product()
    }

    /// Pixels per stamp, `boxsize * boxsize`.
    pub fn stamp_len(&self) -> usize {
        self.boxsize * self.boxsize
    }

    /// Flat model number -> (n, q, theta, logr) indices, C order.
    ///
    /// # Panics
    ///
    /// If an axis has no values (a grid that fails [`Grid::validate`]).
    pub fn unravel(&self, k: usize) -> [usize; 4] {
        let [_, nq, nt, nr] = self.shape();
        [
            k / (nq * nt * nr),
            (k / (nt * nr)) % nq,
            (k / nr) % nt,
            k % nr,
        ]
    }

    /// Checks that the grid can describe a cube: counts and box positive, values finite, and
    /// an axis of several values not stuck on one (a zero step). Descending axes (a negative
    /// step) are fine: every estimate reads the axis by its values, not by its direction.
    pub fn validate(&self) -> Result<()> {
        for (name, a) in self.named_axes() {
            if a.count == 0 {
                return Err(Error::Invalid(format!("{name} axis has no values")));
            }
            if !a.start.is_finite() || !a.step.is_finite() {
                return Err(Error::Invalid(format!(
                    "{name} axis start or step is not finite"
                )));
            }
            if a.count > 1 && a.step == 0.0 {
                return Err(Error::Invalid(format!(
                    "D{name} is 0 with N{name} = {}: the {name} axis repeats one value",
                    a.count
                )));
            }
        }
        if self.boxsize == 0 {
            return Err(Error::Invalid("BOXSIZE is 0".into()));
        }
        // Every count and product of them (the cube's size in bytes included) fits a usize.
        self.shape()
            .iter()
            .try_fold(1usize, |acc, &n| acc.checked_mul(n))
            .and_then(|v| v.checked_mul(self.boxsize))
            .and_then(|v| v.checked_mul(self.boxsize))
            .and_then(|v| v.checked_mul(4))
            .ok_or_else(|| Error::Invalid("the cube is too large to address".into()))?;
        Ok(())
    }

    fn named_axes(&self) -> [(&'static str, &Axis); 4] {
        [
            ("INDEX", &self.index),
            ("AXRAT", &self.axrat),
            ("POSANG", &self.posang),
            ("LOGH", &self.logh),
        ]
    }

    /// Header cards describing the grid (SPEC 3).
    pub fn cards(&self) -> Vec<Card> {
        let mut cards = Vec::new();
        let axes = [
            ("INDEX", &self.index, "Sersic index"),
            ("AXRAT", &self.axrat, "axis ratio b/a"),
            ("POSANG", &self.posang, "position angle [deg]"),
            ("LOGH", &self.logh, "log10 effective radius [pix]"),
        ];
        for (name, a, what) in axes {
            cards.push(Card::int(
                &format!("N{name}"),
                a.count as i64,
                &format!("number of values of {what}"),
            ));
            cards.push(Card::float(
                &format!("{name}0"),
                a.start,
                &format!("first {what}"),
            ));
            cards.push(Card::float(
                &format!("D{name}"),
                a.step,
                &format!("step of {what}"),
            ));
        }
        cards.push(Card::int(
            "BOXSIZE",
            self.boxsize as i64,
            "stamp size [pix]",
        ));
        cards
    }
}

/// A cube of stamps in memory, (n, q, theta, logr, y, x) C order.
#[derive(Clone, Debug)]
pub struct ModelCube {
    /// The grid the stamps are on.
    pub grid: Grid,
    /// `grid.n_models() * grid.stamp_len()` pixels: stamp k at `k * stamp_len`.
    pub data: Vec<f32>,
}

impl ModelCube {
    /// Number of stamps.
    pub fn n_models(&self) -> usize {
        self.grid.n_models()
    }

    /// Fails unless every model has finite pixels summing to a positive flux: a model of
    /// zeros gives NaN chi for every object, and so NaN CHI_STD, LOGR_CHI and LOGR_VAR for
    /// all of them. The error names the first bad model by its grid values and indices.
    pub fn check_models(&self) -> Result<()> {
        let len = self.grid.stamp_len();
        if len == 0 {
            return Ok(());
        }
        let bad: Vec<(usize, String)> = self
            .data
            .par_chunks(len)
            .enumerate()
            .filter_map(|(k, m)| model_fault(m).map(|why| (k, why)))
            .collect();
        self.grid.model_faults(&bad)
    }

    /// The k-th stamp (flat model number), boxsize*boxsize pixels, row-major.
    ///
    /// # Panics
    ///
    /// If `data` holds no k-th stamp (`k >= n_models()` for a cube of its grid).
    pub fn model(&self, k: usize) -> &[f32] {
        let len = self.grid.stamp_len();
        &self.data[k * len..(k + 1) * len]
    }

    /// The stamps in flat model order, each as [`ModelCube::model`] gives it.
    ///
    /// # Panics
    ///
    /// If the grid's `boxsize` is 0 (a grid that fails [`Grid::validate`]).
    pub fn models(&self) -> std::slice::ChunksExact<'_, f32> {
        self.data.chunks_exact(self.grid.stamp_len())
    }
}

/// What is wrong with one model's pixels, if anything.
pub(crate) fn model_fault(m: &[f32]) -> Option<String> {
    // One pass in 8 lanes (the cube is checked on every read; a sequential f64 sum was 13 %
    // of a run); a non-finite pixel makes the sum non-finite, and is then counted.
    let (mut sum, mut nonzero) = ([0.0f64; 8], [false; 8]);
    let chunks = m.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            sum[i] += c[i] as f64;
            nonzero[i] |= c[i] != 0.0;
        }
    }
    let mut sum: f64 = sum.iter().sum();
    let mut nonzero = nonzero.contains(&true);
    for &v in tail {
        sum += v as f64;
        nonzero |= v != 0.0;
    }
    if !sum.is_finite() {
        let bad = m.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            return Some(format!("{bad} non-finite pixels (NaN or Inf)"));
        }
    }
    if !nonzero {
        return Some("every pixel is zero".into());
    }
    (sum <= 0.0).then(|| format!("its pixels sum to {sum:e}, not a positive flux"))
}

/// For each model of a cube, the first model holding the same image (itself if none): the
/// same orientation (theta equal modulo 180, or any theta at q = 1) at the same n, q and R_e,
/// confirmed bit for bit. Such twins are convolved and fitted once and copied, which keeps
/// their chi values, and so the first-minimum tie rule, exact.
#[derive(Clone, Debug, PartialEq)]
pub struct Twins(Vec<usize>);

impl Twins {
    #[cfg(test)]
    /// Every model its own (no sharing).
    pub fn none(n_models: usize) -> Twins {
        Twins((0..n_models).collect())
    }

    pub fn of(cube: &ModelCube) -> Twins {
        let g = &cube.grid;
        let [ni, nq, nt, nr] = g.shape();
        // The pairs the grid says are twins (model k, its first twin k0 < k), in order of k.
        let mut pairs = Vec::new();
        for i in 0..ni {
            for q in 0..nq {
                let round = is_round(g.axrat.value(q));
                for t in 1..nt {
                    let Some(t0) = (0..t).find(|&t0| {
                        round || are_twin_angles(g.posang.value(t), g.posang.value(t0))
                    }) else {
                        continue;
                    };
                    for r in 0..nr {
                        let k = ((i * nq + q) * nt + t) * nr + r;
                        pairs.push((k, ((i * nq + q) * nt + t0) * nr + r));
                    }
                }
            }
        }
        // Confirmed bit for bit on the thread pool (tens of MB compared).
        let same: Vec<bool> = pairs
            .par_iter()
            .map(|&(k, k0)| cube.model(k) == cube.model(k0))
            .collect();
        let mut first: Vec<usize> = (0..g.n_models()).collect();
        for (&(k, k0), same) in pairs.iter().zip(same) {
            if same {
                first[k] = first[k0];
            }
        }
        Twins(first)
    }

    #[cfg(test)]
    /// The model whose image model `k` shares.
    pub fn first(&self, k: usize) -> usize {
        self.0[k]
    }

    pub fn is_first(&self, k: usize) -> bool {
        self.0[k] == k
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    #[cfg(test)]
    /// Number of distinct images.
    pub fn distinct(&self) -> usize {
        (0..self.0.len()).filter(|&k| self.is_first(k)).count()
    }

    /// Copies each first model's `width` values in `per_model` (model-major) to its twins.
    pub fn fill<T: Copy>(&self, per_model: &mut [T], width: usize) {
        for k in 0..self.0.len() {
            let j = self.0[k];
            if j != k {
                per_model.copy_within(j * width..(j + 1) * width, k * width);
            }
        }
    }
}

/// Grids for the unit tests of the modules that read, write and render cubes.
#[cfg(test)]
pub(crate) mod test_grids {
    use super::{Axis, Grid};

    /// 24 models of 8 x 8: two n, two q, three theta (-90, 0, 90: the ends are twins), two
    /// radii.
    pub fn small() -> Grid {
        Grid {
            index: Axis::new(3.0, 1.0, 2),
            axrat: Axis::new(0.5, 0.5, 2),
            posang: Axis::new(-90.0, 90.0, 3),
            logh: Axis::new(0.0, 0.5, 2),
            boxsize: 8,
        }
    }

    /// 12 models of 16 x 16: n = 4, two q, three theta, two radii.
    pub fn tiny() -> Grid {
        Grid {
            index: Axis::new(4.0, 0.0, 1),
            boxsize: 16,
            ..small()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_grids::small as grid;

    #[test]
    fn unravel_is_c_order() {
        let g = grid();
        assert_eq!(g.n_models(), 24);
        assert_eq!(g.unravel(0), [0, 0, 0, 0]);
        assert_eq!(g.unravel(1), [0, 0, 0, 1]);
        assert_eq!(g.unravel(2), [0, 0, 1, 0]);
        assert_eq!(g.unravel(6), [0, 1, 0, 0]);
        assert_eq!(g.unravel(23), [1, 1, 2, 1]);
    }

    #[test]
    fn zero_steps_are_refused_and_descending_axes_accepted() {
        let mut g = grid();
        g.logh = Axis::new(1.0, -0.5, 2);
        assert!(g.validate().is_ok());
        g.logh = Axis::new(1.0, 0.0, 2);
        assert_eq!(
            g.validate().unwrap_err().to_string(),
            "DLOGH is 0 with NLOGH = 2: the LOGH axis repeats one value"
        );
        // One value needs no step (the original's single-index cubes have DINDEX 0).
        g.logh = Axis::new(1.0, 0.0, 1);
        g.index = Axis::new(4.0, 0.0, 1);
        assert!(g.validate().is_ok());
    }

    #[test]
    fn models_of_zeros_or_non_finite_pixels_are_named() {
        let g = grid();
        let len = g.stamp_len();
        let mut cube = ModelCube {
            data: vec![1.0; g.n_models() * len],
            grid: g.clone(),
        };
        assert!(cube.check_models().is_ok());
        // Model [1, 0, 2, 1]: n 4, q 0.5, theta 90, logr 0.5.
        let k = 17;
        assert_eq!(g.unravel(k), [1, 0, 2, 1]);
        cube.data[k * len..(k + 1) * len].fill(0.0);
        assert_eq!(
            cube.check_models().unwrap_err().to_string(),
            "model (n, q, theta, logr) = (4, 0.5, 90, 0.5), indices (1, 0, 2, 1): \
             every pixel is zero"
        );
        cube.data[3] = f32::NAN;
        cube.data[len + 5] = f32::INFINITY;
        assert_eq!(
            cube.check_models().unwrap_err().to_string(),
            "model (n, q, theta, logr) = (3, 0.5, -90, 0), indices (0, 0, 0, 0): \
             1 non-finite pixels (NaN or Inf) (and 2 more models)"
        );
        cube.data.fill(1.0);
        cube.data[..len].fill(-1.0);
        assert!(cube
            .check_models()
            .unwrap_err()
            .to_string()
            .ends_with("indices (0, 0, 0, 0): its pixels sum to -6.4e1, not a positive flux"));
    }

    #[test]
    fn twins_are_the_same_orientation_and_identical() {
        // theta -90, 0, 90; q 0.5 and 1.
        let g = grid();
        let mut data = vec![0f32; g.n_models() * g.stamp_len()];
        for (k, stamp) in data.chunks_exact_mut(g.stamp_len()).enumerate() {
            let [n, q, t, r] = g.unravel(k);
            // Same image for theta -90 and +90, and for every theta at q = 1.
            let t = if q == 1 { 0 } else { t % 2 };
            stamp.fill((((n * 2 + q) * 3 + t) * 2 + r) as f32);
        }
        // ... except one pair that is not bit-identical: no twin then.
        let k_odd = g.n_models() - 1; // n 1, q 1, theta 90, r 1: twin of theta -90
        data[k_odd * g.stamp_len()] += 1.0;
        let cube = ModelCube {
            grid: g.clone(),
            data,
        };
        let tw = Twins::of(&cube);
        assert_eq!(tw.first(4), 0); // q 0.5, theta 90 -> theta -90
        assert_eq!(tw.first(2), 2); // theta 0 is its own
        assert_eq!(tw.first(6 + 2), 6); // q 1: every theta -> theta -90
        assert_eq!(tw.first(6 + 5), 6 + 1);
        assert_eq!(tw.first(k_odd), k_odd);
        // Per index: 2 twins at q = 0.5, 4 at q = 1; less the altered one.
        assert_eq!(tw.distinct(), 24 - 2 * 6 + 1);
        let mut v: Vec<usize> = (0..24).map(|k| k * 10).collect();
        tw.fill(&mut v, 1);
        for (k, v) in v.iter().enumerate() {
            assert_eq!(*v, tw.first(k) * 10, "model {k}");
        }
    }
}
