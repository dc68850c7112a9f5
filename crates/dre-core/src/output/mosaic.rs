//! Mosaics (SPEC 6): per object a BOX x 4*BOX float32 image: the data | the segment filled
//! with the mean data flux | the best model scaled to the data | the residual.
//!
//! The original writes each block transposed (a reshape/.T slip); we write them in the
//! tile's orientation, so that the blocks line up with the tile in a viewer.

use crate::error::Result;
use crate::io::fits::write_image;
use std::path::Path;

/// Builds the mosaic, row-major, `boxsize` rows of `4 * boxsize`.
///
/// # Panics
///
/// If `data`, `seg` or `model` holds fewer than `boxsize * boxsize` pixels.
pub fn mosaic(
    data: &[f32],
    seg: &[bool],
    model: &[f32],
    scale: f32,
    flux: f32,
    boxsize: usize,
) -> Vec<f32> {
    let b = boxsize;
    let n_seg = seg.iter().filter(|&&s| s).count().max(1) as f32;
    let fill = flux / n_seg;
    let mut out = vec![0f32; 4 * b * b];
    for y in 0..b {
        let row = &mut out[y * 4 * b..(y + 1) * 4 * b];
        for x in 0..b {
            let p = y * b + x;
            let m = scale * model[p];
            row[x] = data[p];
            row[b + x] = if seg[p] { fill } else { 0.0 };
            row[2 * b + x] = m;
            row[3 * b + x] = data[p] - m;
        }
    }
    out
}

/// Writes a mosaic image, whole or not at all.
pub fn write_mosaic(path: impl AsRef<Path>, image: &[f32], boxsize: usize) -> Result<()> {
    write_image(path, 4 * boxsize, boxsize, image, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_data_segment_model_residual() {
        let data = [1.0, 2.0, 3.0, 4.0];
        let seg = [true, true, false, true];
        let model = [0.5, 0.25, 0.0, 0.25];
        let m = mosaic(&data, &seg, &model, 4.0, 9.0, 2);
        assert_eq!(&m[..8], &[1.0, 2.0, 3.0, 3.0, 2.0, 1.0, -1.0, 1.0]);
        assert_eq!(&m[8..], &[3.0, 4.0, 0.0, 3.0, 0.0, 1.0, 3.0, 3.0]);
    }
}
