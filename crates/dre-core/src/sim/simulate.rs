//! Simulated tiles with known truth: Sérsic galaxies and stars at random positions, seen
//! through a Moffat PSF, with the sky left in, Poisson and Gaussian read noise, so that a user
//! can measure how well DRE recovers galaxies on their own setup.
//!
//! Conventions: positions are FITS 1-based (X, Y); R_e is the semi-major half-light radius;
//! theta is THETA_IMAGE; galaxies are pixel-integrated, convolved with the Moffat sampled at
//! pixel centres, and cut at a box of 24 R_e (at least 64, at most 512 pixels) — FLUX is the
//! flux drawn. The S/N is the optimal, sky-limited one: S/N = FLUX sqrt(sum p^2) / sigma with
//! p the normalised convolved profile and sigma^2 = (sky gain + read^2) / gain^2 per pixel.
//! Everything is drawn from one seeded ChaCha8 stream in a fixed order: the same options give
//! the same tile, bit for bit, on any machine and any number of threads.

use crate::conventions::{fits_to_index, index_to_fits, stamp_centre};
use crate::error::{Error, Result};
use crate::fit::convolve::Convolver;
use crate::io::atomic::write_file;
use crate::io::fits::{write_image, Card};
use crate::io::psf::Psf;
use crate::model::render::{render_at, StampParams};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Poisson};
use rayon::prelude::*;
use std::path::Path;

/// What to simulate.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// The tile is `size` x `size` pixels (default 2048).
    pub size: usize,
    /// Number of galaxies (default 250).
    pub galaxies: usize,
    /// Number of stars, for PSFEx (default 40).
    pub stars: usize,
    /// Moffat PSF FWHM in pixels (default 3).
    pub fwhm: f64,
    /// Moffat beta, > 1 (default 3.5).
    pub beta: f64,
    /// Side of the true PSF image written, odd (default 25, as PSFEx's).
    pub psf_size: usize,
    /// Sky in counts per pixel, left in the image (default 100).
    pub sky: f64,
    /// Gain in e-/count (default 1).
    pub gain: f64,
    /// Read noise in e- (default 5).
    pub read_noise: f64,
    /// Exposure time in s, written to the header only (default 1).
    pub exptime: f64,
    /// Galaxy S/N range, log-uniform (default 20..500).
    pub snr: (f64, f64),
    /// Semi-major R_e range in pixels, log-uniform (default 1.5..25).
    pub re: (f64, f64),
    /// Axis ratio range, uniform (default 0.2..1).
    pub q: (f64, f64),
    /// Sérsic indices; each galaxy takes one at random (default `[4]`).
    pub index: Vec<f64>,
    /// Star S/N (log-uniform; default 200..2000).
    pub star_snr: (f64, f64),
    /// No centre closer than this to the edge, pixels (default 100; make_cuts keeps objects
    /// 80 px inside).
    pub margin: f64,
    /// Seed of the ChaCha8 stream (default 1).
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            size: 2048,
            galaxies: 250,
            stars: 40,
            fwhm: 3.0,
            beta: 3.5,
            psf_size: 25,
            sky: 100.0,
            gain: 1.0,
            read_noise: 5.0,
            exptime: 1.0,
            snr: (20.0, 500.0),
            re: (1.5, 25.0),
            q: (0.2, 1.0),
            index: vec![4.0],
            star_snr: (200.0, 2000.0),
            margin: 100.0,
            seed: 1,
        }
    }
}

/// Largest tile side [pixels] the simulator draws.
pub const MAX_SIZE: usize = 32768;

impl SimConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        let range = |name: &str, (lo, hi): (f64, f64), min: f64| -> Result<()> {
            if !(lo.is_finite() && hi.is_finite() && lo >= min && lo <= hi) {
                return bad(format!(
                    "{name} range {lo}..{hi} is not a finite range >= {min}"
                ));
            }
            Ok(())
        };
        range("S/N", self.snr, f64::MIN_POSITIVE)?;
        range("star S/N", self.star_snr, f64::MIN_POSITIVE)?;
        range("radius", self.re, 0.05)?;
        range("axis ratio", self.q, f64::MIN_POSITIVE)?;
        if self.q.1 > 1.0 {
            return bad(format!("axis ratio {} is above 1", self.q.1));
        }
        if self.index.is_empty() || self.index.iter().any(|&n| !(0.2..=10.0).contains(&n)) {
            return bad("Sersic indices must be within 0.2..10".into());
        }
        if !(self.fwhm > 0.0 && self.fwhm.is_finite() && self.beta > 1.0 && self.beta.is_finite()) {
            return bad("the Moffat PSF needs FWHM > 0 and beta > 1".into());
        }
        if self.psf_size < 3 || self.psf_size % 2 == 0 {
            return bad("the PSF size must be odd and at least 3".into());
        }
        if !(self.sky >= 0.0 && self.gain > 0.0 && self.read_noise >= 0.0 && self.exptime > 0.0) {
            return bad("sky and read noise must be >= 0, gain and exposure > 0".into());
        }
        // The tile is held as float64 while drawn: 32768^2 pixels is 8 GiB already.
        if self.size > MAX_SIZE {
            return bad(format!(
                "a {0}x{0} tile is larger than the simulator's limit of {MAX_SIZE}x{MAX_SIZE}",
                self.size
            ));
        }
        if self.margin.is_nan() || self.margin < 0.0 || 2.0 * self.margin >= self.size as f64 {
            return bad(format!(
                "a {0}x{0} tile has no room inside a margin of {1}",
                self.size, self.margin
            ));
        }
        Ok(())
    }

    /// Noise sigma of one pixel, in counts, from the sky and the read noise.
    pub fn sky_sigma(&self) -> f64 {
        (self.sky * self.gain + self.read_noise * self.read_noise).sqrt() / self.gain
    }
}

/// One true galaxy.
#[derive(Clone, Debug, PartialEq)]
pub struct Galaxy {
    /// Centre x, FITS 1-based pixels (as X_IMAGE).
    pub x: f64,
    /// Centre y, FITS 1-based pixels (as Y_IMAGE).
    pub y: f64,
    /// Sérsic index.
    pub n: f64,
    /// Axis ratio b/a.
    pub q: f64,
    /// Position angle in degrees, THETA_IMAGE, in [-90, 90).
    pub theta: f64,
    /// Semi-major half-light radius in pixels.
    pub re_major: f64,
    /// Flux in counts added to the image (noiseless; the drawn stamp sums to it).
    pub flux: f64,
    /// Optimal, sky-limited S/N.
    pub snr: f64,
}

/// One true star.
#[derive(Clone, Debug, PartialEq)]
pub struct Star {
    /// Centre x, FITS 1-based pixels.
    pub x: f64,
    /// Centre y, FITS 1-based pixels.
    pub y: f64,
    /// Total flux in counts.
    pub flux: f64,
    /// Optimal, sky-limited S/N.
    pub snr: f64,
}

/// A simulated tile and its truth.
#[derive(Clone, Debug)]
pub struct Simulation {
    /// The tile is `size` x `size` pixels.
    pub size: usize,
    /// Row-major counts, sky included.
    pub image: Vec<f32>,
    /// The true galaxies, in drawing order.
    pub galaxies: Vec<Galaxy>,
    /// The true stars, in drawing order.
    pub stars: Vec<Star>,
    /// The true PSF: the Moffat integrated over pixels, centred, normalised.
    pub psf: Psf,
}

/// The Moffat profile, normalised to total flux 1.
fn moffat(cfg: &SimConfig) -> impl Fn(f64, f64) -> f64 + Sync {
    let beta = cfg.beta;
    let alpha = cfg.fwhm / (2.0 * (2f64.powf(1.0 / beta) - 1.0).sqrt());
    let norm = (beta - 1.0) / (std::f64::consts::PI * alpha * alpha);
    move |dx: f64, dy: f64| norm * (1.0 + (dx * dx + dy * dy) / (alpha * alpha)).powf(-beta)
}

/// A `size` square image of the Moffat centred at (cx, cy) (pixel coordinates of the image),
/// each pixel integrated by 8x8 midpoint sub-samples (sampled at pixel centres if not).
fn moffat_image(cfg: &SimConfig, size: usize, cx: f64, cy: f64, integrate: bool) -> Vec<f64> {
    let f = moffat(cfg);
    let sub = if integrate { 8 } else { 1 };
    (0..size * size)
        .map(|p| {
            let (x, y) = ((p % size) as f64 - cx, (p / size) as f64 - cy);
            let mut acc = 0.0;
            for i in 0..sub {
                for j in 0..sub {
                    let ox = (j as f64 + 0.5) / sub as f64 - 0.5;
                    let oy = (i as f64 + 0.5) / sub as f64 - 0.5;
                    acc += f(x + ox, y + oy);
                }
            }
            acc / (sub * sub) as f64
        })
        .collect()
}

fn to_psf(size: usize, v: &[f64]) -> Psf {
    let sum: f64 = v.iter().sum();
    Psf {
        width: size,
        height: size,
        data: v.iter().map(|&x| (x / sum) as f32).collect(),
    }
}

fn log_uniform(rng: &mut ChaCha8Rng, (lo, hi): (f64, f64)) -> f64 {
    if lo == hi {
        return lo;
    }
    (lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp()
}

fn uniform(rng: &mut ChaCha8Rng, (lo, hi): (f64, f64)) -> f64 {
    lo + rng.random::<f64>() * (hi - lo)
}

/// Galaxy stamp size: 24 R_e, even, within 64..=512.
fn galaxy_box(re_major: f64) -> usize {
    let b = (24.0 * re_major).ceil() as usize;
    (b + b % 2).clamp(64, 512)
}

/// Draws the positions and parameters (no pixels yet), avoiding overlaps.
fn draw_objects(cfg: &SimConfig, rng: &mut ChaCha8Rng) -> Result<(Vec<Galaxy>, Vec<Star>)> {
    let lo = cfg.margin;
    let hi = cfg.size as f64 - cfg.margin;
    // Centres (x, y) and the radius each must keep clear.
    let mut taken: Vec<(f64, f64, f64)> = Vec::new();
    let mut place = |rng: &mut ChaCha8Rng, clear: f64| -> Result<(f64, f64)> {
        for _ in 0..10_000 {
            let (x, y) = (uniform(rng, (lo, hi)), uniform(rng, (lo, hi)));
            if taken
                .iter()
                .all(|&(tx, ty, tr)| (tx - x).hypot(ty - y) > tr + clear)
            {
                taken.push((x, y, clear));
                return Ok((x, y));
            }
        }
        Err(Error::Invalid(format!(
            "cannot place {} galaxies and {} stars without overlaps on a {}x{} tile",
            cfg.galaxies, cfg.stars, cfg.size, cfg.size
        )))
    };
    let mut galaxies = Vec::with_capacity(cfg.galaxies);
    for _ in 0..cfg.galaxies {
        let re_major = log_uniform(rng, cfg.re);
        let q = uniform(rng, cfg.q);
        let theta = uniform(rng, (-90.0, 90.0));
        let n = cfg.index[rng.random_range(0..cfg.index.len())];
        let snr = log_uniform(rng, cfg.snr);
        let (x, y) = place(rng, 6.0 + 2.0 * re_major)?;
        galaxies.push(Galaxy {
            x: index_to_fits(x),
            y: index_to_fits(y),
            n,
            q,
            theta,
            re_major,
            flux: 0.0,
            snr,
        });
    }
    let mut stars = Vec::with_capacity(cfg.stars);
    for _ in 0..cfg.stars {
        let snr = log_uniform(rng, cfg.star_snr);
        let (x, y) = place(rng, 6.0 + 3.0 * cfg.fwhm)?;
        stars.push(Star {
            x: index_to_fits(x),
            y: index_to_fits(y),
            flux: 0.0,
            snr,
        });
    }
    Ok((galaxies, stars))
}

/// A normalised, convolved image of one object on a `b` square stamp whose pixel (0, 0) is
/// tile pixel (x0, y0).
struct Drawn {
    x0: i64,
    y0: i64,
    b: usize,
    pixels: Vec<f64>,
}

impl Drawn {
    fn sum_sq(&self) -> f64 {
        self.pixels.iter().map(|p| p * p).sum()
    }
}

fn draw_galaxy(g: &Galaxy, psf: &Psf) -> Result<Drawn> {
    let b = galaxy_box(g.re_major);
    let (cx, cy) = (fits_to_index(g.x), fits_to_index(g.y));
    let (x0, y0) = (
        cx.round() as i64 - b as i64 / 2,
        cy.round() as i64 - b as i64 / 2,
    );
    let params = StampParams {
        n: g.n,
        q: g.q,
        theta: g.theta,
        re_major: g.re_major,
    };
    let stamp = render_at(&params, b, (cx - x0 as f64, cy - y0 as f64))?.pixels;
    let conv = Convolver::new(psf, b)?;
    let mut img: Vec<f32> = stamp.iter().map(|&v| v as f32).collect();
    conv.convolve(&mut img, &mut conv.scratch());
    let sum: f64 = img.iter().map(|&v| v as f64).sum();
    Ok(Drawn {
        x0,
        y0,
        b,
        pixels: img.iter().map(|&v| v as f64 / sum).collect(),
    })
}

fn draw_star(cfg: &SimConfig, s: &Star) -> Drawn {
    let b = cfg.psf_size.max((8.0 * cfg.fwhm).ceil() as usize | 1);
    let (cx, cy) = (fits_to_index(s.x), fits_to_index(s.y));
    let (x0, y0) = (
        cx.round() as i64 - b as i64 / 2,
        cy.round() as i64 - b as i64 / 2,
    );
    let img = moffat_image(cfg, b, cx - x0 as f64, cy - y0 as f64, true);
    let sum: f64 = img.iter().sum();
    Drawn {
        x0,
        y0,
        b,
        pixels: img.iter().map(|v| v / sum).collect(),
    }
}

fn add(image: &mut [f64], size: usize, d: &Drawn, flux: f64) {
    for j in 0..d.b {
        let y = d.y0 + j as i64;
        if y < 0 || y >= size as i64 {
            continue;
        }
        for i in 0..d.b {
            let x = d.x0 + i as i64;
            if x >= 0 && x < size as i64 {
                image[y as usize * size + x as usize] += flux * d.pixels[j * d.b + i];
            }
        }
    }
}

/// Simulates a tile.
pub fn simulate(cfg: &SimConfig) -> Result<Simulation> {
    cfg.validate()?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let (mut galaxies, mut stars) = draw_objects(cfg, &mut rng)?;
    let c = stamp_centre(cfg.psf_size);
    let sampled = to_psf(cfg.psf_size, &moffat_image(cfg, cfg.psf_size, c, c, false));
    let true_psf = to_psf(cfg.psf_size, &moffat_image(cfg, cfg.psf_size, c, c, true));
    let sigma = cfg.sky_sigma();
    let size = cfg.size;

    // Galaxies render in parallel (each on its own), then add in their fixed order.
    let drawn: Vec<Drawn> = galaxies
        .par_iter()
        .map(|g| draw_galaxy(g, &sampled))
        .collect::<Result<_>>()?;
    let mut image = vec![0f64; size * size];
    for (g, d) in galaxies.iter_mut().zip(&drawn) {
        g.flux = g.snr * sigma / d.sum_sq().sqrt();
        add(&mut image, size, d, g.flux);
    }
    for s in &mut stars {
        let d = draw_star(cfg, s);
        s.flux = s.snr * sigma / d.sum_sq().sqrt();
        add(&mut image, size, &d, s.flux);
    }

    // Counts -> electrons (Poisson) -> counts, plus read noise.
    let read =
        Normal::new(0.0, cfg.read_noise / cfg.gain).map_err(|e| Error::Invalid(e.to_string()))?;
    let pixels: Vec<f32> = image
        .iter()
        .map(|&v| {
            let lambda = (v + cfg.sky) * cfg.gain;
            let electrons = match Poisson::new(lambda) {
                Ok(p) => p.sample(&mut rng),
                Err(_) => 0.0,
            };
            (electrons / cfg.gain + read.sample(&mut rng)) as f32
        })
        .collect();
    Ok(Simulation {
        size,
        image: pixels,
        galaxies,
        stars,
        psf: true_psf,
    })
}

/// Writes a simulation into the working directory `dir`: `Tiles/NAME.fits` (float32 counts
/// with GAIN, EXPTIME and the simulation's settings in the header), `Truth/NAME_truth.csv`
/// (the galaxies), `Truth/NAME_stars.csv` and `Truth/NAME_psf.fits` (the true PSF). Each file
/// is written whole or not at all.
pub fn write_simulation(dir: &Path, name: &str, sim: &Simulation, cfg: &SimConfig) -> Result<()> {
    let cards = [
        Card::float("GAIN", cfg.gain, "e-/count"),
        Card::float("EXPTIME", cfg.exptime, "s"),
        Card::float("SKY", cfg.sky, "sky level left in the image [counts]"),
        Card::float("RDNOISE", cfg.read_noise, "read noise [e-]"),
        Card::float("PSF_FWHM", cfg.fwhm, "Moffat FWHM [pix]"),
        Card::float("PSF_BETA", cfg.beta, "Moffat beta"),
        Card::int("NGAL", sim.galaxies.len() as i64, "galaxies"),
        Card::int("NSTAR", sim.stars.len() as i64, "stars"),
        Card::int("SEED", cfg.seed as i64, "random seed"),
        Card::text("SIMULATR", "dre_simulate", "DRE in Rust"),
    ];
    let size = sim.size;
    write_image(
        dir.join(format!("Tiles/{name}.fits")),
        size,
        size,
        &sim.image,
        &cards,
    )?;
    let psf = &sim.psf;
    write_image(
        dir.join(format!("Truth/{name}_psf.fits")),
        psf.width,
        psf.height,
        &psf.data,
        &[Card::text("PSFTYPE", "MOFFAT", "pixel-integrated, sum 1")],
    )?;
    let mut csv = String::from("X,Y,N_SERSIC,Q,THETA,RE_MAJOR,LOG_RE,FLUX,SNR\n");
    for g in &sim.galaxies {
        csv.push_str(&format!(
            "{:.4},{:.4},{},{:.6},{:.4},{:.6},{:.6},{:.3},{:.3}\n",
            g.x,
            g.y,
            g.n,
            g.q,
            g.theta,
            g.re_major,
            g.re_major.log10(),
            g.flux,
            g.snr
        ));
    }
    write_file(&dir.join(format!("Truth/{name}_truth.csv")), csv.as_bytes())?;
    let mut csv = String::from("X,Y,FLUX,SNR\n");
    for s in &sim.stars {
        csv.push_str(&format!(
            "{:.4},{:.4},{:.3},{:.3}\n",
            s.x, s.y, s.flux, s.snr
        ));
    }
    write_file(&dir.join(format!("Truth/{name}_stars.csv")), csv.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SimConfig {
        SimConfig {
            size: 256,
            galaxies: 4,
            stars: 2,
            re: (1.5, 4.0),
            margin: 40.0,
            ..SimConfig::default()
        }
    }

    #[test]
    fn same_seed_same_tile_on_any_thread_count() {
        let cfg = small();
        let a = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| simulate(&cfg).unwrap());
        let b = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap()
            .install(|| simulate(&cfg).unwrap());
        assert_eq!(a.image, b.image);
        assert_eq!(a.galaxies, b.galaxies);
        let c = simulate(&SimConfig { seed: 2, ..cfg }).unwrap();
        assert_ne!(a.image, c.image);
    }

    #[test]
    fn fluxes_give_the_asked_snr_and_the_sky_is_left_in() {
        let cfg = SimConfig {
            galaxies: 0,
            stars: 0,
            ..small()
        };
        let sim = simulate(&cfg).unwrap();
        let n = sim.image.len() as f64;
        let mean = sim.image.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = sim
            .image
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!((mean - cfg.sky).abs() < 0.1, "mean {mean}");
        assert!(
            (var.sqrt() / cfg.sky_sigma() - 1.0).abs() < 0.01,
            "sigma {}",
            var.sqrt()
        );

        let sim = simulate(&small()).unwrap();
        for g in &sim.galaxies {
            assert!(g.flux > 0.0 && g.snr >= 20.0 && g.snr <= 500.0);
            assert!(g.x > 40.0 && g.x < 217.0 && g.q >= 0.2 && g.q <= 1.0);
        }
        // The true PSF is normalised and peaks at its centre.
        let p = &sim.psf;
        let sum: f32 = p.data.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5);
        let max = p.data.iter().cloned().fold(0.0, f32::max);
        assert_eq!(p.data[12 * 25 + 12], max);
    }

    #[test]
    fn a_tile_too_small_for_its_objects_is_refused() {
        let cfg = SimConfig {
            size: 128,
            galaxies: 500,
            margin: 30.0,
            ..small()
        };
        assert!(simulate(&cfg)
            .unwrap_err()
            .to_string()
            .contains("cannot place 500 galaxies"));
        assert!(SimConfig {
            q: (0.2, 1.5),
            ..small()
        }
        .validate()
        .is_err());
        assert!(SimConfig {
            margin: 200.0,
            ..small()
        }
        .validate()
        .is_err());
        // A size that would not fit in memory is refused before anything is allocated.
        let e = SimConfig {
            size: 200_000,
            ..small()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("larger than the simulator's limit"), "{e}");
    }
}

/// The Cramér-Rao bound of the default simulated tiles (README, "Summary columns"): the
/// smallest one-sigma errors in log R_e, q and theta that any unbiased estimator can reach
/// from the pixels of each galaxy's 128 x 128 cut (flux and centre fitted too, the true PSF
/// and noise), and the whole-sample NMAD of offsets drawn with those errors. The slowest
/// library test (about 40 s in release on 2 cores); its figures print with
/// `cargo test --release -p dre-core --lib cramer_rao -- --nocapture`.
#[cfg(test)]
mod cramer_rao {
    use super::*;
    use crate::fit::statistics::invert;

    /// The normalised convolved image of `g` on the `b` x `b` stamp of its simulation.
    fn image(g: &Galaxy, conv: &Convolver, b: usize, x0: i64, y0: i64) -> Vec<f64> {
        let p = StampParams {
            n: g.n,
            q: g.q.min(1.0),
            theta: g.theta,
            re_major: g.re_major,
        };
        let (cx, cy) = (fits_to_index(g.x), fits_to_index(g.y));
        let stamp = render_at(&p, b, (cx - x0 as f64, cy - y0 as f64)).unwrap();
        let mut img: Vec<f32> = stamp.pixels.iter().map(|&v| v as f32).collect();
        conv.convolve(&mut img, &mut conv.scratch());
        let sum: f64 = img.iter().map(|&v| v as f64).sum();
        img.iter().map(|&v| v as f64 / sum).collect()
    }

    /// Errors of (log R_e, q, theta) for `g`: the inverse Fisher matrix of (flux, x, y,
    /// log R_e, q, theta) over the cut's pixels, derivatives by central differences; with
    /// the sky known, then with a constant sky fitted too.
    fn bounds(cfg: &SimConfig, psf: &Psf, g: &Galaxy) -> [[f64; 3]; 2] {
        let b = galaxy_box(g.re_major);
        let (cx, cy) = (fits_to_index(g.x), fits_to_index(g.y));
        let (x0, y0) = (
            cx.round() as i64 - b as i64 / 2,
            cy.round() as i64 - b as i64 / 2,
        );
        // One convolver for the galaxy's eleven images (its PSF spectrum and FFT plans).
        let conv = Convolver::new(psf, b).unwrap();
        let p = image(g, &conv, b, x0, y0);
        let mut d = vec![p.clone()];
        for (k, h) in [0.02, 0.02, 0.002, 0.004, 0.2].into_iter().enumerate() {
            let moved = |s: f64| {
                let mut m = g.clone();
                match k {
                    0 => m.x += s,
                    1 => m.y += s,
                    2 => m.re_major *= 10f64.powf(s),
                    3 => m.q += s,
                    _ => m.theta += s,
                }
                image(&m, &conv, b, x0, y0)
            };
            // q stays <= 1: one-sided near it.
            let (up, down) = if k == 3 && g.q + h > 1.0 {
                (0.0, -2.0 * h)
            } else {
                (h, -h)
            };
            let (a, c) = (moved(up), moved(down));
            d.push(
                a.iter()
                    .zip(&c)
                    .map(|(u, v)| g.flux * (u - v) / (up - down))
                    .collect(),
            );
        }
        d.push(vec![1.0; p.len()]);
        let n = d.len();
        let s2 = cfg.sky_sigma().powi(2);
        let mut f = vec![0.0; n * n];
        for px in 0..p.len() {
            let (ix, iy) = ((px % b) as i64 + x0, (px / b) as i64 + y0);
            if (ix as f64 - cx).abs() > 64.0 || (iy as f64 - cy).abs() > 64.0 {
                continue;
            }
            let var = s2 + g.flux * p[px] / cfg.gain;
            for i in 0..n {
                for j in 0..n {
                    f[i * n + j] += d[i][px] * d[j][px] / var;
                }
            }
        }
        // Sky known: the Fisher matrix without its last row and column.
        let m = n - 1;
        let known: Vec<f64> = (0..m * m).map(|k| f[(k / m) * n + k % m]).collect();
        let errors = |f: &[f64], n: usize| {
            let c = invert(f, n).unwrap();
            [3, 4, 5].map(|k| c[k * n + k].sqrt())
        };
        [errors(&known, m), errors(&f, n)]
    }

    /// NMAD of a sample whose members are normal with zero mean and errors `s`.
    fn mixture_nmad(s: &[f64]) -> f64 {
        // erf by its continued-fraction-free Chebyshev fit (Numerical Recipes' erfc, 1e-7).
        let erf = |x: f64| {
            let t = 1.0 / (1.0 + 0.5 * x.abs());
            let e = t
                * (-x * x - 1.26551223
                    + t * (1.00002368
                        + t * (0.37409196
                            + t * (0.09678418
                                + t * (-0.18628806
                                    + t * (0.27886807
                                        + t * (-1.13520398
                                            + t * (1.48851587
                                                + t * (-0.82215223 + t * 0.17087277)))))))))
                    .exp();
            1.0 - e
        };
        let within = |t: f64| s.iter().map(|&si| erf(t / (si * 2f64.sqrt()))).sum::<f64>();
        let (mut lo, mut hi) = (0.0, 10.0);
        for _ in 0..100 {
            let m = 0.5 * (lo + hi);
            if within(m) < 0.5 * s.len() as f64 {
                lo = m;
            } else {
                hi = m;
            }
        }
        1.4826 * lo
    }

    #[test]
    fn cramer_rao_bound_of_the_default_tiles() {
        // Per sky mode (known, fitted): the errors of log r, q, and theta (q <= 0.8).
        let mut errs: [[Vec<f64>; 3]; 2] = Default::default();
        for seed in [7, 8] {
            let cfg = SimConfig {
                seed,
                ..SimConfig::default()
            };
            let sim = simulate(&cfg).unwrap();
            let c = stamp_centre(cfg.psf_size);
            let psf = to_psf(cfg.psf_size, &moffat_image(&cfg, cfg.psf_size, c, c, false));
            let all: Vec<[[f64; 3]; 2]> = sim
                .galaxies
                .par_iter()
                .map(|g| bounds(&cfg, &psf, g))
                .collect();
            for (g, b) in sim.galaxies.iter().zip(all) {
                for (e, b) in errs.iter_mut().zip(b) {
                    e[0].push(b[0]);
                    e[1].push(b[1]);
                    if g.q <= 0.8 {
                        e[2].push(b[2]);
                    }
                }
            }
        }
        // What the README quotes, to a few per cent.
        let want = [[0.0236, 0.0298, 2.10], [0.0253, 0.0299, 2.10]];
        for (mode, (e, want)) in ["known", "fitted"].iter().zip(errs.iter().zip(want)) {
            let nmad = [0, 1, 2].map(|k| mixture_nmad(&e[k]));
            eprintln!(
                "sky {mode}: NMAD log r {:.4}, q {:.4}, theta {:.2} deg",
                nmad[0], nmad[1], nmad[2]
            );
            for (got, want) in nmad.iter().zip(want) {
                assert!((got / want - 1.0).abs() < 0.03, "{got} vs {want}");
            }
        }
    }
}
