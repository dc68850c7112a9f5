//! Sub-pixel shifts of a cut, as `scipy.ndimage.shift` does them with its defaults
//! (mode 'constant', cval 0): cubic B-spline interpolation of a mirror-extended image for obj and
//! rms, nearest neighbour for the segment mask. Output points that map outside the image are 0.

/// The pole of the cubic B-spline prefilter, sqrt(3) - 2.
const POLE: f64 = -0.267_949_192_431_122_7;

/// Shifts a `size` x `size` image by (`dy`, `dx`) pixels with cubic splines (order 3).
pub fn shift_cubic(image: &[f32], size: usize, dy: f64, dx: f64) -> Vec<f32> {
    let mut coef: Vec<f64> = image.iter().map(|&v| v as f64).collect();
    if size > 1 {
        // Prefilter along axis 0 (columns), then axis 1 (rows), as scipy's spline_filter.
        let mut line = vec![0.0; size];
        for x in 0..size {
            for y in 0..size {
                line[y] = coef[y * size + x];
            }
            prefilter(&mut line);
            for y in 0..size {
                coef[y * size + x] = line[y];
            }
        }
        for row in coef.chunks_mut(size) {
            prefilter(row);
        }
    }
    let ys: Vec<Option<Taps>> = (0..size).map(|k| taps(k as f64 - dy, size)).collect();
    let xs: Vec<Option<Taps>> = (0..size).map(|k| taps(k as f64 - dx, size)).collect();
    let mut out = vec![0.0f32; size * size];
    for (oy, ty) in ys.iter().enumerate() {
        let Some(ty) = ty else { continue };
        for (ox, tx) in xs.iter().enumerate() {
            let Some(tx) = tx else { continue };
            let mut t = 0.0;
            for (&iy, &wy) in ty.index.iter().zip(&ty.weight) {
                for (&ix, &wx) in tx.index.iter().zip(&tx.weight) {
                    t += coef[iy * size + ix] * wy * wx;
                }
            }
            out[oy * size + ox] = t as f32;
        }
    }
    out
}

/// Shifts a mask by (`dy`, `dx`) pixels, nearest neighbour (spline order 0).
pub fn shift_nearest(mask: &[bool], size: usize, dy: f64, dx: f64) -> Vec<bool> {
    let source = |k: usize, d: f64| -> Option<usize> {
        let c = k as f64 - d;
        (c >= 0.0 && c <= (size - 1) as f64).then(|| (c + 0.5).floor() as usize)
    };
    let mut out = vec![false; size * size];
    for oy in 0..size {
        let Some(iy) = source(oy, dy) else { continue };
        for ox in 0..size {
            if let Some(ix) = source(ox, dx) {
                out[oy * size + ox] = mask[iy * size + ix];
            }
        }
    }
    out
}

/// The four input samples and weights of one output coordinate.
struct Taps {
    index: [usize; 4],
    weight: [f64; 4],
}

/// Taps for input coordinate `c`; None outside [0, len - 1], where scipy's 'constant' mode
/// gives cval without interpolating.
fn taps(c: f64, len: usize) -> Option<Taps> {
    if !(c >= 0.0 && c <= (len - 1) as f64) {
        return None;
    }
    let start = c.floor() as i64 - 1;
    let mut index = [0; 4];
    for (k, idx) in index.iter_mut().enumerate() {
        *idx = mirror(start + k as i64, len);
    }
    Some(Taps {
        index,
        weight: cubic_weights(c),
    })
}

/// Mirror extension without repeating the edge sample (scipy's 'mirror').
fn mirror(i: i64, len: usize) -> usize {
    let n = len as i64;
    if n <= 1 {
        return 0;
    }
    let period = 2 * n - 2;
    let m = i.rem_euclid(period);
    (if m >= n { period - m } else { m }) as usize
}

/// The cubic B-spline weights of the four taps around `c`, computed as scipy does.
fn cubic_weights(c: f64) -> [f64; 4] {
    let y = c - c.floor();
    let z = 1.0 - y;
    let w1 = (y * y * (y - 2.0) * 3.0 + 4.0) / 6.0;
    let w2 = (z * z * (z - 2.0) * 3.0 + 4.0) / 6.0;
    let w0 = z * z * z / 6.0;
    [w0, w1, w2, 1.0 - w0 - w1 - w2]
}

/// In-place cubic B-spline prefilter of one line, mirror boundary (scipy's for 'constant').
fn prefilter(c: &mut [f64]) {
    let n = c.len();
    let z = POLE;
    let gain = (1.0 - z) * (1.0 - 1.0 / z);
    for v in c.iter_mut() {
        *v *= gain;
    }
    // Causal initialisation for a mirror-symmetric extension.
    let z_n_1 = z.powi(n as i32 - 1);
    let mut z_i = z;
    c[0] += z_n_1 * c[n - 1];
    for i in 1..n - 1 {
        c[0] += z_i * (c[i] + z_n_1 * c[n - 1 - i]);
        z_i *= z;
    }
    c[0] /= 1.0 - z_n_1 * z_n_1;
    for i in 1..n {
        c[i] += z * c[i - 1];
    }
    c[n - 1] = (z * c[n - 2] + c[n - 1]) * z / (z * z - 1.0);
    for i in (0..n - 1).rev() {
        c[i] = z * (c[i + 1] - c[i]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(size: usize) -> Vec<f32> {
        (0..size * size)
            .map(|i| ((i * 7919 % 1013) as f32 * 0.37).sin() * 10.0 + (i % size) as f32)
            .collect()
    }

    #[test]
    fn integer_shift_is_a_roll_with_zero_fill() {
        let size = 16;
        let img = image(size);
        let out = shift_cubic(&img, size, 2.0, -3.0);
        for y in 0..size {
            for x in 0..size {
                let (sy, sx) = (y as i64 - 2, x as i64 + 3);
                let want = if (0..size as i64).contains(&sy) && (0..size as i64).contains(&sx) {
                    img[sy as usize * size + sx as usize]
                } else {
                    0.0
                };
                let got = out[y * size + x];
                assert!((got - want).abs() < 1e-4, "({y},{x}): {got} vs {want}");
            }
        }
        let mask: Vec<bool> = img.iter().map(|&v| v > 5.0).collect();
        let moved = shift_nearest(&mask, size, 2.0, -3.0);
        for y in 0..size {
            for x in 0..size {
                let (sy, sx) = (y as i64 - 2, x as i64 + 3);
                let inside = (0..size as i64).contains(&sy) && (0..size as i64).contains(&sx);
                let want = inside && mask[sy as usize * size + sx as usize];
                assert_eq!(moved[y * size + x], want);
            }
        }
    }

    #[test]
    fn zero_shift_reproduces_the_image() {
        let img = image(9);
        let out = shift_cubic(&img, 9, 0.0, 0.0);
        for (a, b) in img.iter().zip(&out) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn matches_scipy_bit_for_bit_on_a_fractional_shift() {
        let img: Vec<f32> = (0..25).map(|i| ((i * i) % 7) as f32).collect();
        let out = shift_cubic(&img, 5, 0.5, -0.25);
        // The same operations in the same order: the same float32 values.
        assert_eq!(out, SCIPY_HALF_SHIFT);
    }

    #[test]
    fn mirror_does_not_repeat_the_edge() {
        let m: Vec<usize> = (-3..9).map(|i| mirror(i, 5)).collect();
        assert_eq!(m, vec![3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1, 0]);
    }

    #[rustfmt::skip]
    // scipy.ndimage.shift(np.arange(25, dtype='f4').reshape(5, 5) ** 2 % 7, (0.5, -0.25))
    const SCIPY_HALF_SHIFT: [f32; 25] = [
        0.0, 0.0, 0.0, 0.0, 0.0,
        1.6013016, 1.1813747, 1.9940354, 1.9640659, 0.0,
        3.3090615, 1.0130484, 1.5189414, 1.0064006, 0.0,
        1.4308329, 4.0655036, 3.0182638, 1.2496245, 0.0,
        1.1123476, 1.5808934, 1.5347471, 3.440763, 0.0,
    ];
}
