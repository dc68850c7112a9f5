//! One pixel-integrated Sérsic stamp (SPEC 3 convention).
//!
//! Pixels whose closure holds the profile centre (the cusp) are integrated exactly in the
//! radial direction: in the frame where the ellipse is a circle, the pixel is a polygon and
//! the flux of each (centre, edge) triangle is a 1-D angular integral of the enclosed-flux
//! function P(2n, b (R/R_e)^(1/n)). Every other pixel is integrated by adaptive cubature
//! (3x3 Gauss against 2x2 Gauss), refining first wherever a cell is larger than the local
//! scale of the profile, so narrow ridges of flat models are not stepped over.

use crate::conventions::{fold_angle, stamp_centre};
use crate::error::Result;
use crate::model::sersic::{gamma_p, Sersic};

/// Tolerance of each pixel, relative to the stamp's peak pixel.
const REL_TOL: f64 = 1e-7;
/// Cells whose whole possible content is below this share of the pixel tolerance are
/// taken by their midpoint.
const TINY_SHARE: f64 = 1e-3;
/// Absolute tolerance (in units of the total flux) of the cusp pixels.
const CUSP_TOL: f64 = 1e-12;
/// Refinement limits: a cell of 2^-16 px, an angle of 2^-20 of an edge's.
const MAX_DEPTH: u32 = 16;
const MAX_DEPTH_1D: u32 = 20;

/// A rendered stamp: `pixels` (row-major, y up the rows) sum to 1; `inbox` is the fraction
/// of the model's total flux that fell inside the box before normalising.
#[derive(Clone, Debug)]
pub struct Stamp {
    /// `boxsize * boxsize` pixel values, row-major, summing to 1.
    pub pixels: Vec<f64>,
    /// Share of the total flux inside the box before normalising, in (0, 1].
    pub inbox: f64,
}

/// Canonical parameters of one stamp: the same physical image always gets the same numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Canonical {
    pub n: f64,
    pub q: f64,
    pub theta: f64,
    pub re: f64,
}

impl Canonical {
    /// theta reduced to (-90, 90] (exact: fmod and one Sterbenz subtraction), and ignored
    /// for round models.
    pub fn new(n: f64, q: f64, theta: f64, re: f64) -> Self {
        let mut t = fold_angle(theta);
        if q == 1.0 || t == 0.0 {
            t = 0.0; // also folds -0.0
        }
        Canonical { n, q, theta: t, re }
    }

    pub fn key(&self) -> [u64; 4] {
        [self.n, self.q, self.theta, self.re].map(f64::to_bits)
    }
}

/// The profile in pixel coordinates relative to its centre, normalised to total flux 1.
struct Profile {
    cos: f64,
    sin: f64,
    q: f64,
    inv_q: f64,
    /// I(R) = norm * exp(-k R^(1/n)).
    k: f64,
    norm: f64,
    n: f64,
    root: Root,
}

/// R^(1/n) from R², with exact square-root chains for the common indices.
#[derive(Clone, Copy)]
enum Root {
    Half,
    Quarter,
    Eighth,
    Square,
    Pow(f64),
}

impl Root {
    fn new(n: f64) -> Self {
        match n {
            1.0 => Root::Half,
            2.0 => Root::Quarter,
            4.0 => Root::Eighth,
            0.5 => Root::Square,
            _ => Root::Pow(0.5 / n),
        }
    }

    #[inline]
    fn of(self, r2: f64) -> f64 {
        match self {
            Root::Half => r2.sqrt(),
            Root::Quarter => r2.sqrt().sqrt(),
            Root::Eighth => r2.sqrt().sqrt().sqrt(),
            Root::Square => r2,
            Root::Pow(p) => r2.powf(p),
        }
    }
}

/// sin and cos of an angle in degrees, exact at 0 and 90 so aligned models are exactly
/// mirror-symmetric.
fn sin_cos_deg(t: f64) -> (f64, f64) {
    match t {
        0.0 => (0.0, 1.0),
        90.0 => (1.0, 0.0),
        _ => t.to_radians().sin_cos(),
    }
}

impl Profile {
    fn new(m: &Canonical) -> Result<Self> {
        let s = Sersic::new(m.n, m.re)?;
        let (sin, cos) = sin_cos_deg(m.theta);
        let k = s.b / m.re.powf(1.0 / m.n);
        // total_flux is for I(R_e) = 1; here I(0) = 1, i.e. I_e = e^-b.
        let flux = s.total_flux(m.q) * (-s.b).exp();
        Ok(Profile {
            cos,
            sin,
            q: m.q,
            inv_q: 1.0 / m.q,
            k,
            norm: 1.0 / flux,
            n: m.n,
            root: Root::new(m.n),
        })
    }

    /// The major-axis frame, minor axis stretched by 1/q: R = |to_circle(x, y)|.
    #[inline]
    fn to_circle(&self, x: f64, y: f64) -> (f64, f64) {
        (
            self.cos * x + self.sin * y,
            (self.cos * y - self.sin * x) * self.inv_q,
        )
    }

    #[inline]
    fn r2(&self, x: f64, y: f64) -> f64 {
        let (u, v) = self.to_circle(x, y);
        u * u + v * v
    }

    #[inline]
    fn at_r2(&self, r2: f64) -> f64 {
        self.norm * (-self.k * self.root.of(r2)).exp()
    }

    #[inline]
    fn at(&self, x: f64, y: f64) -> f64 {
        self.at_r2(self.r2(x, y))
    }

    /// Flux fraction inside the circle-frame radius rho of a full turn: P(2n, k rho^(1/n)).
    fn enclosed(&self, rho: f64) -> f64 {
        gamma_p(2.0 * self.n, self.k * self.root.of(rho * rho))
    }
}

/// Renders one model (already validated: n > 0, 0 < q <= 1, re > 0, box >= 1), centred at
/// ((BOX-1)/2, (BOX-1)/2).
pub(crate) fn render(m: &Canonical, boxsize: usize) -> Result<Stamp> {
    let c = stamp_centre(boxsize);
    render_with(m, boxsize, (c, c), Symmetry::of(m))
}

/// Renders one model centred anywhere: pixel (0-based) coordinates `centre` of the box.
pub(crate) fn render_at(m: &Canonical, boxsize: usize, centre: (f64, f64)) -> Result<Stamp> {
    render_with(m, boxsize, centre, Symmetry::None)
}

fn render_with(
    m: &Canonical,
    boxsize: usize,
    (cx, cy): (f64, f64),
    sym: Symmetry,
) -> Result<Stamp> {
    let p = Profile::new(m)?;
    let b = boxsize;
    let centre_of = |k: usize| ((k % b) as f64 - cx, (k / b) as f64 - cy);
    let touches = |(x, y): (f64, f64)| x.abs() <= 0.5 && y.abs() <= 0.5;

    let mut pix = vec![0.0_f64; b * b];
    let mut peak = 0.0_f64;
    for (k, v) in pix.iter_mut().enumerate() {
        let xy = centre_of(k);
        if touches(xy) {
            *v = cusp_pixel(&p, xy);
            peak = peak.max(*v);
        }
    }
    if peak == 0.0 {
        // The centre is off the box: scale the tolerance by the profile's central pixel.
        peak = cusp_pixel(&p, (0.0, 0.0));
    }
    let cells = Cells {
        p: &p,
        tau: REL_TOL * peak,
        tiny: TINY_SHARE * REL_TOL * peak,
    };
    for k in 0..b * b {
        let (i, j) = (k / b, k % b);
        let (orbit, len) = sym.orbit(i, j, b - 1);
        let orbit = &orbit[..len];
        if orbit.iter().any(|&(oi, oj)| oi * b + oj < k) {
            continue; // filled from its representative
        }
        let xy = centre_of(k);
        let v = if touches(xy) {
            pix[k]
        } else {
            cells.integrate(xy.0, xy.1, 0.5, 0)
        };
        for &(oi, oj) in orbit {
            pix[oi * b + oj] = v;
        }
    }
    let inbox: f64 = pix.iter().sum();
    pix.iter_mut().for_each(|v| *v /= inbox);
    Ok(Stamp { pixels: pix, inbox })
}

/// The pixel symmetries an elliptical model has on a square grid centred between pixels
/// (or on one): each stamp is computed on one representative per orbit and copied, which
/// makes symmetric pixels bit-identical and saves the work.
#[derive(Clone, Copy, Debug)]
enum Symmetry {
    /// Off-centre: no symmetry of the pixel grid.
    None,
    Point,
    PointMirror,
    PointDiagonal,
    Full,
}

impl Symmetry {
    fn of(m: &Canonical) -> Self {
        if m.q == 1.0 {
            Symmetry::Full
        } else if m.theta == 0.0 || m.theta == 90.0 {
            Symmetry::PointMirror
        } else if m.theta.abs() == 45.0 {
            Symmetry::PointDiagonal
        } else {
            Symmetry::Point
        }
    }

    /// Images of pixel (row i, column j) under the group, `last` = boxsize - 1.
    fn orbit(self, i: usize, j: usize, last: usize) -> ([(usize, usize); 8], usize) {
        let (mi, mj) = (last - i, last - j);
        let all = [
            (i, j),
            (mi, mj),
            (i, mj),
            (mi, j),
            (j, i),
            (mj, mi),
            (j, mi),
            (mj, i),
        ];
        let mut out = [(0, 0); 8];
        let picks: &[usize] = match self {
            Symmetry::None => &[0],
            Symmetry::Point => &[0, 1],
            Symmetry::PointMirror => &[0, 1, 2, 3],
            Symmetry::PointDiagonal => &[0, 1, 4, 5],
            Symmetry::Full => &[0, 1, 2, 3, 4, 5, 6, 7],
        };
        for (o, &s) in out.iter_mut().zip(picks) {
            *o = all[s];
        }
        (out, picks.len())
    }
}

/// Adaptive cubature over square cells (centre, half-width) of one pixel.
struct Cells<'a> {
    p: &'a Profile,
    /// Allowed error per unit area.
    tau: f64,
    /// A cell that cannot hold more flux than this is taken by its midpoint.
    tiny: f64,
}

const G2: f64 = 0.577_350_269_189_625_8; // 1/sqrt(3)
const G3: f64 = 0.774_596_669_241_483_4; // sqrt(3/5)
const W3: [f64; 3] = [5.0 / 9.0, 8.0 / 9.0, 5.0 / 9.0];

impl Cells<'_> {
    fn integrate(&self, cx: f64, cy: f64, hw: f64, depth: u32) -> f64 {
        let p = self.p;
        let area = 4.0 * hw * hw;
        // A lower bound of the elliptical radius over the cell: R >= the distance to the
        // centre, and R is (1/q)-Lipschitz.
        let dx = (cx.abs() - hw).max(0.0);
        let dy = (cy.abs() - hw).max(0.0);
        let r_c = p.r2(cx, cy).sqrt();
        let r_lo = (dx * dx + dy * dy)
            .sqrt()
            .max(r_c - std::f64::consts::SQRT_2 * hw * p.inv_q);
        let f_max = p.at_r2(r_lo * r_lo);
        if f_max <= self.tau || f_max * area <= self.tiny || depth >= MAX_DEPTH {
            return area * p.at(cx, cy);
        }
        if 2.0 * hw > self.local_scale(r_lo) {
            return self.split(cx, cy, hw, depth);
        }
        let mut g2 = 0.0;
        for sy in [-G2, G2] {
            for sx in [-G2, G2] {
                g2 += p.at(cx + sx * hw, cy + sy * hw);
            }
        }
        g2 *= area / 4.0;
        let mut g3 = 0.0;
        for (wy, sy) in W3.iter().zip([-G3, 0.0, G3]) {
            for (wx, sx) in W3.iter().zip([-G3, 0.0, G3]) {
                g3 += wx * wy * p.at(cx + sx * hw, cy + sy * hw);
            }
        }
        g3 *= area / 4.0;
        if (g3 - g2).abs() <= self.tau * area {
            g3
        } else {
            self.split(cx, cy, hw, depth)
        }
    }

    fn split(&self, cx: f64, cy: f64, hw: f64, depth: u32) -> f64 {
        let h = hw / 2.0;
        let mut sum = 0.0;
        for oy in [-h, h] {
            for ox in [-h, h] {
                sum += self.integrate(cx + ox, cy + oy, h, depth + 1);
            }
        }
        sum
    }

    /// The shortest length over which the profile changes appreciably at elliptical radius
    /// r: the log-slope scale n R / (b (R/R_e)^(1/n)), and the curvature of the isophotes
    /// (~R), both shrunk by q across the major axis.
    fn local_scale(&self, r: f64) -> f64 {
        let p = self.p;
        let slope = p.n / (p.k * p.root.of(r * r)); // = n / (b (r/re)^(1/n))
        p.q * r * slope.min(1.0)
    }
}

/// A pixel whose closure holds the centre: the sum over its edges of the flux of the
/// triangle (centre, edge), each an angular integral of the enclosed flux in the frame
/// where the isophotes are circles (a linear map with positive determinant, so the
/// orientation of the edges is kept).
fn cusp_pixel(p: &Profile, (x, y): (f64, f64)) -> f64 {
    let corners = [
        (x - 0.5, y - 0.5),
        (x + 0.5, y - 0.5),
        (x + 0.5, y + 0.5),
        (x - 0.5, y + 0.5),
    ];
    let mut sum = 0.0;
    for e in 0..4 {
        let a = corners[e];
        let b = corners[(e + 1) % 4];
        sum += triangle(p, p.to_circle(a.0, a.1), p.to_circle(b.0, b.1));
    }
    // Each triangle integral is (flux fraction of a full turn) * dphi; the full turn is 2π.
    sum / (2.0 * std::f64::consts::PI)
}

/// ∫ P(2n, k rho(phi)^(1/n)) dphi over the signed angle from a to b, rho(phi) being the
/// distance to the line ab along the ray phi.
fn triangle(p: &Profile, a: (f64, f64), b: (f64, f64)) -> f64 {
    let cross = a.0 * b.1 - a.1 * b.0;
    let (ra, rb) = (a.0.hypot(a.1), b.0.hypot(b.1));
    if cross.abs() <= 1e-12 * ra * rb {
        // The edge's line passes through the centre (exactly, or but for rounding of the
        // frame change): the triangle has no area.
        return 0.0;
    }
    let dot = a.0 * b.0 + a.1 * b.1;
    let phi_a = a.1.atan2(a.0);
    let dphi = cross.atan2(dot);
    // Unit normal of the line, pointing away from the centre, and its distance.
    let (ex, ey) = (b.0 - a.0, b.1 - a.1);
    let len = (ex * ex + ey * ey).sqrt();
    let (mut nx, mut ny) = (ey / len, -ex / len);
    let mut dist = nx * a.0 + ny * a.1;
    if dist < 0.0 {
        (nx, ny, dist) = (-nx, -ny, -dist);
    }
    let f = |phi: f64| {
        let (s, c) = phi.sin_cos();
        p.enclosed(dist / (nx * c + ny * s))
    };
    // The tolerance is per radian of a full turn's flux.
    adaptive_1d(&f, phi_a, phi_a + dphi, CUSP_TOL, 0)
}

const GL5: [(f64, f64); 5] = [
    (-0.906_179_845_938_664, 0.236_926_885_056_189_1),
    (-0.538_469_310_105_683_1, 0.478_628_670_499_366_5),
    (0.0, 0.568_888_888_888_888_9),
    (0.538_469_310_105_683_1, 0.478_628_670_499_366_5),
    (0.906_179_845_938_664, 0.236_926_885_056_189_1),
];
const GL7: [(f64, f64); 7] = [
    (-0.949_107_912_342_758_5, 0.129_484_966_168_869_7),
    (-0.741_531_185_599_394_4, 0.279_705_391_489_276_7),
    (-0.405_845_151_377_397_2, 0.381_830_050_505_118_9),
    (0.0, 0.417_959_183_673_469_4),
    (0.405_845_151_377_397_2, 0.381_830_050_505_118_9),
    (0.741_531_185_599_394_4, 0.279_705_391_489_276_7),
    (0.949_107_912_342_758_5, 0.129_484_966_168_869_7),
];

fn adaptive_1d(f: &dyn Fn(f64) -> f64, a: f64, b: f64, tol: f64, depth: u32) -> f64 {
    let (m, h) = ((a + b) / 2.0, (b - a) / 2.0);
    let rule = |nodes: &[(f64, f64)]| h * nodes.iter().map(|&(x, w)| w * f(m + h * x)).sum::<f64>();
    let (g5, g7) = (rule(&GL5), rule(&GL7));
    if (g7 - g5).abs() <= tol || depth >= MAX_DEPTH_1D {
        g7
    } else {
        adaptive_1d(f, a, m, tol / 2.0, depth + 1) + adaptive_1d(f, m, b, tol / 2.0, depth + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(n: f64, q: f64, theta: f64, re: f64) -> Canonical {
        Canonical::new(n, q, theta, re)
    }

    #[test]
    fn canonical_theta_folds_equivalent_angles() {
        assert_eq!(model(4.0, 0.5, -90.0, 2.0), model(4.0, 0.5, 90.0, 2.0));
        assert_eq!(model(4.0, 0.5, 270.0, 2.0), model(4.0, 0.5, 90.0, 2.0));
        assert_eq!(model(4.0, 0.5, -135.0, 2.0).theta, 45.0);
        assert_eq!(model(4.0, 0.5, 135.0, 2.0).theta, -45.0);
        assert_eq!(model(4.0, 1.0, 30.0, 2.0), model(4.0, 1.0, -60.0, 2.0));
        assert_eq!(
            model(4.0, 0.5, -0.0, 2.0).key(),
            model(4.0, 0.5, 0.0, 2.0).key()
        );
    }

    /// The cusp method on a pixel away from the centre agrees with the cubature.
    #[test]
    fn cusp_method_agrees_with_cubature() {
        for m in [
            model(4.0, 0.3, 30.0, 2.0),
            model(1.0, 0.7, -60.0, 0.8),
            model(0.5, 1.0, 0.0, 3.0),
        ] {
            let p = Profile::new(&m).unwrap();
            let cells = Cells {
                p: &p,
                tau: 1e-12,
                tiny: 1e-16,
            };
            for (x, y) in [(1.5, 0.5), (-2.5, 3.5), (4.0, -1.0)] {
                let polar = cusp_pixel(&p, (x, y));
                let cubature = cells.integrate(x, y, 0.5, 0);
                assert!(
                    (polar - cubature).abs() < 1e-10,
                    "{m:?} ({x},{y}): {polar} vs {cubature}"
                );
            }
        }
    }

    /// Over whole stamps of the hardest models (cuspy, flat, tiny or large), the cubature
    /// agrees with the exact-in-radius method applied to every pixel.
    #[test]
    fn cubature_matches_radial_method_everywhere() {
        let b = 40;
        for m in [
            model(4.0, 0.1, 30.0, 0.4),
            model(4.0, 0.1, -75.0, 40.0),
            model(6.0, 0.2, 60.0, 0.4),
            model(0.5, 0.1, 10.0, 2.0),
            model(1.0, 0.1, 0.0, 0.4),
        ] {
            let s = render(&m, b).unwrap();
            let p = Profile::new(&m).unwrap();
            let c = (b as f64 - 1.0) / 2.0;
            let exact: Vec<f64> = (0..b * b)
                .map(|k| cusp_pixel(&p, ((k % b) as f64 - c, (k / b) as f64 - c)))
                .collect();
            let peak = exact.iter().cloned().fold(0.0, f64::max);
            let worst = s
                .pixels
                .iter()
                .zip(&exact)
                .map(|(a, e)| (a * s.inbox - e).abs())
                .fold(0.0, f64::max);
            assert!(worst <= 1e-6 * peak, "{m:?}: {:e} of peak", worst / peak);
            let total: f64 = exact.iter().sum();
            assert!(
                (total - s.inbox).abs() < 1e-7,
                "{m:?}: {total} vs {}",
                s.inbox
            );
        }
    }

    /// A big box holds all the flux; an odd box puts the cusp inside the middle pixel,
    /// whose flux lies between that of its inscribed and circumscribed circles.
    #[test]
    fn flux_bookkeeping() {
        let s = render(&model(1.0, 0.6, 20.0, 1.5), 64).unwrap();
        assert!((s.inbox - 1.0).abs() < 1e-6, "inbox {}", s.inbox);
        let sum: f64 = s.pixels.iter().sum();
        assert!((sum - 1.0).abs() < 1e-12);

        let m = model(4.0, 1.0, 0.0, 0.4);
        let s = render(&m, 33).unwrap();
        let b = Sersic::new(4.0, 0.4).unwrap().b;
        let within = |r: f64| gamma_p(8.0, b * (r / 0.4_f64).powf(0.25));
        let centre = s.pixels[16 * 33 + 16] * s.inbox;
        assert!(within(0.5) < centre && centre < within(0.5 * 2f64.sqrt()));
    }
}
