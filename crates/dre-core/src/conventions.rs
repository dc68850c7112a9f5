//! The conventions every stage shares, each written once here and tested by its definition.
//!
//! * **Stamp centre**: a stamp of `B` x `B` pixels is centred at pixel index `(B-1)/2` on
//!   each axis (the centre of the middle pixel for odd `B`, the corner between the four
//!   middle pixels for even `B`), as GalSim and the original's `modelbulge.fits` place it.
//! * **Angles**: theta is SExtractor's `THETA_IMAGE`, degrees counter-clockwise from +x. An
//!   ellipse at theta and at theta + 180 is the same: angles fold into (-90, 90] and differ
//!   modulo 180; at q = 1 theta has no meaning.
//! * **Positions**: FITS and SExtractor count pixels from 1 at the pixel's centre; arrays
//!   count from 0. `index = fits - 1`.
//! * **Round models**: an axis ratio within [`Q_ROUND_TOLERANCE`] of 1 is round.
//! * **Object names**: `EE_NNNN`, the extension number in two digits and the catalogue
//!   NUMBER in at least four, zero padded.
//! * **Twin models**: two models of a cube are twins when they are the same image (the same
//!   n, q and R_e with angles equal modulo 180, or any angles at q = 1); twins are computed
//!   once and copied (see [`are_twin_angles`]).

/// Pixel index of the centre of a stamp `size` pixels wide: `(size - 1) / 2`.
pub fn stamp_centre(size: usize) -> f64 {
    (size as f64 - 1.0) / 2.0
}

/// `theta` (degrees) folded into (-90, 90]; exact (an fmod and at most one subtraction of
/// 180, which floating point does without rounding).
pub fn fold_angle(theta: f64) -> f64 {
    let t = theta % 180.0;
    if t > 90.0 {
        t - 180.0
    } else if t <= -90.0 {
        t + 180.0
    } else {
        t
    }
}

/// `a - b` (degrees) modulo 180, in [-90, 90): the smallest rotation from `b` to `a`.
pub fn angle_difference(a: f64, b: f64) -> f64 {
    (a - b + 90.0).rem_euclid(180.0) - 90.0
}

/// Whether two angles (degrees) give the same ellipse: they differ by a multiple of 180
/// exactly (grid angles are compared bit for bit, never within a tolerance).
pub fn are_twin_angles(a: f64, b: f64) -> bool {
    ((a - b).abs() % 180.0) == 0.0
}

/// How far from 1 an axis ratio may be and still be round (grid arithmetic
/// `start + i * step` overshoots 1 by rounding).
pub const Q_ROUND_TOLERANCE: f64 = 1e-9;

/// Whether an axis ratio is round (q = 1 within [`Q_ROUND_TOLERANCE`]).
pub fn is_round(q: f64) -> bool {
    (q - 1.0).abs() <= Q_ROUND_TOLERANCE
}

/// 0-based array index of a 1-based FITS / SExtractor pixel coordinate.
pub fn fits_to_index(fits: f64) -> f64 {
    fits - 1.0
}

/// 1-based FITS / SExtractor pixel coordinate of a 0-based array index.
pub fn index_to_fits(index: f64) -> f64 {
    index + 1.0
}

/// The name of an object in cut and chi files: `EE_NNNN` (`00_0002`, `03_12345`).
pub fn object_name(ext: u32, number: u64) -> String {
    format!("{ext:02}_{number:04}")
}

/// `EE_NNNN` -> (EXT_NUMBER, NUMBER); None for any other name.
pub fn parse_object_name(name: &str) -> Option<(u32, u64)> {
    let (e, n) = name.split_once('_')?;
    if e.is_empty() || n.is_empty() || !(e.bytes().chain(n.bytes()).all(|c| c.is_ascii_digit())) {
        return None;
    }
    Some((e.parse().ok()?, n.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_centre_is_the_middle_of_the_pixel_range() {
        // By definition: the mean of the pixel indices 0..size.
        for size in [1usize, 2, 7, 8, 128] {
            let mean = (0..size).map(|i| i as f64).sum::<f64>() / size as f64;
            assert_eq!(stamp_centre(size), mean);
        }
    }

    #[test]
    fn folded_angles_are_in_range_and_equal_modulo_180() {
        for k in -40..=40 {
            let theta = k as f64 * 15.0 + 0.25;
            let f = fold_angle(theta);
            assert!(f > -90.0 && f <= 90.0, "{theta} -> {f}");
            assert_eq!(((theta - f) / 180.0).fract(), 0.0, "{theta} -> {f}");
        }
        assert_eq!(fold_angle(-90.0), 90.0);
        assert_eq!(fold_angle(90.0), 90.0);
        assert_eq!(fold_angle(270.0), 90.0);
    }

    #[test]
    fn angle_difference_is_the_smallest_rotation() {
        assert_eq!(angle_difference(89.0, -89.0), -2.0);
        assert_eq!(angle_difference(-89.0, 89.0), 2.0);
        assert_eq!(angle_difference(10.0, 190.0), 0.0);
        for (a, b) in [(12.5, -70.0), (170.0, 3.0), (-45.0, 45.0)] {
            let d = angle_difference(a, b);
            assert!((-90.0..90.0).contains(&d));
            assert!(
                are_twin_angles(fold_angle(b + d), fold_angle(a))
                    || (b + d - a).abs() % 180.0 < 1e-12
            );
        }
    }

    #[test]
    fn twin_angles_differ_by_multiples_of_180() {
        assert!(are_twin_angles(-90.0, 90.0));
        assert!(are_twin_angles(15.0, 375.0));
        assert!(!are_twin_angles(15.0, 30.0));
        assert!(!are_twin_angles(0.0, 90.0));
    }

    #[test]
    fn round_within_tolerance() {
        assert!(is_round(1.0));
        assert!(is_round(0.1 + 9.0 * 0.1));
        assert!(!is_round(0.9));
    }

    #[test]
    fn fits_positions_are_one_based() {
        // The first pixel's centre is 1 in FITS, 0 as an index.
        assert_eq!(fits_to_index(1.0), 0.0);
        assert_eq!(index_to_fits(fits_to_index(37.25)), 37.25);
    }

    #[test]
    fn object_names_round_trip() {
        assert_eq!(object_name(0, 2), "00_0002");
        assert_eq!(object_name(3, 12345), "03_12345");
        assert_eq!(parse_object_name("03_12345"), Some((3, 12345)));
        assert_eq!(parse_object_name(&object_name(12, 7)), Some((12, 7)));
        for bad in ["junk", "00_", "_0001", "0a_0001", "00_+001", "00_0001_x"] {
            assert_eq!(parse_object_name(bad), None, "{bad}");
        }
    }
}
