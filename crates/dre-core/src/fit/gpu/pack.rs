//! A batch of objects flattened for the fit kernel: every object's segment pixels, one
//! after another, as three parallel arrays, and per object where its pixels start and its
//! data flux F_d.
//!
//! A pixel whose term numpy would drop however the model looks (NaN data or NaN noise) is
//! kept for F_k (the model flux is over the whole segment) with its data set to NaN, so its
//! chi term is NaN and dropped like any other NaN term: the kernel needs no mask.

use crate::error::{Error, Result};
use crate::fit::kernel::Prepared;

/// The flat arrays of one batch.
#[derive(Clone, Debug, Default)]
pub struct Packed {
    /// Per segment pixel: its index in the model stamp (row-major).
    pub pix: Vec<u32>,
    /// Per segment pixel: the data, NaN where the term is not counted.
    pub dat: Vec<f32>,
    /// Per segment pixel: rms^2 (1 where the term is not counted).
    pub r2: Vec<f32>,
    /// Object j's pixels are `start[j]..start[j + 1]`; `n_objects() + 1` entries.
    pub start: Vec<u32>,
    /// Per object: F_d, the nansum of the data over the segment.
    pub flux: Vec<f32>,
}

impl Packed {
    #[cfg(test)]
    /// Packs `objects`, every one prepared for stamps of `stamp` pixels.
    pub fn new(objects: &[Prepared], stamp: usize) -> Result<Packed> {
        let mut p = Packed::default();
        p.fill(objects, stamp)?;
        Ok(p)
    }

    /// Packs `objects` into `self`, reusing its allocations.
    pub fn fill(&mut self, objects: &[Prepared], stamp: usize) -> Result<()> {
        self.pix.clear();
        self.dat.clear();
        self.r2.clear();
        self.start.clear();
        self.flux.clear();
        self.start.push(0);
        for o in objects {
            if o.stamp_len() != stamp {
                return Err(Error::Invalid(format!(
                    "object {} was prepared for stamps of {} pixels, the cube has {stamp}",
                    o.name,
                    o.stamp_len()
                )));
            }
            for (q, d, r2, counted) in o.segment_pixels() {
                self.pix.push(q as u32);
                self.dat.push(if counted { d } else { f32::NAN });
                self.r2.push(r2);
            }
            let end = u32::try_from(self.pix.len()).map_err(|_| {
                Error::Invalid("batch too large: more than 2^32 segment pixels".into())
            })?;
            self.start.push(end);
            self.flux.push(o.flux);
        }
        Ok(())
    }

    pub fn n_objects(&self) -> usize {
        self.flux.len()
    }

    #[cfg(test)]
    /// Object j's pixel range.
    pub fn range(&self, j: usize) -> std::ops::Range<usize> {
        self.start[j] as usize..self.start[j + 1] as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::cuts::Cut;
    use std::path::Path;

    /// A 6x6 cut with a 2x3 segment at rows 2-3, columns 1-3, one NaN datum and one NaN
    /// noise inside it.
    fn cut() -> Cut {
        let b = 6;
        let mut seg = vec![false; b * b];
        for y in 2..4 {
            for x in 1..4 {
                seg[y * b + x] = true;
            }
        }
        let mut obj: Vec<f32> = (0..b * b).map(|i| i as f32).collect();
        let mut rms = vec![0.5; b * b];
        obj[2 * b + 2] = f32::NAN;
        rms[3 * b + 3] = f32::NAN;
        Cut {
            name: "00_0001".into(),
            size: b,
            obj,
            seg,
            rms,
        }
    }

    #[test]
    fn packs_segment_pixels_in_row_order() {
        let o = Prepared::new(&cut(), 6, Path::new("t")).unwrap();
        let p = Packed::new(&[o.clone(), o], 36).unwrap();
        assert_eq!(p.n_objects(), 2);
        assert_eq!(p.start, vec![0, 6, 12]);
        assert_eq!(p.pix[..6], [13, 14, 15, 19, 20, 21]);
        assert_eq!(p.pix[6..], p.pix[..6]);
        assert_eq!(p.range(1), 6..12);
        // NaN datum and NaN noise: not counted, data NaN.
        let want_d = [13.0, f32::NAN, 15.0, 19.0, 20.0, f32::NAN];
        for (g, w) in p.dat[..6].iter().zip(want_d) {
            assert!(g == &w || (g.is_nan() && w.is_nan()), "{g} vs {w}");
        }
        assert_eq!(p.r2[0], 0.25);
        assert_eq!(p.r2[1], 1.0);
        // F_d is the nansum over the segment (the NaN-noise pixel's data counts).
        assert_eq!(p.flux, vec![13.0 + 15.0 + 19.0 + 20.0 + 21.0; 2]);
    }

    #[test]
    fn refuses_objects_of_another_stamp_size_and_reuses_buffers() {
        let o = Prepared::new(&cut(), 6, Path::new("t")).unwrap();
        assert!(Packed::new(std::slice::from_ref(&o), 49).is_err());
        let mut p = Packed::new(&[o.clone(), o.clone(), o.clone()], 36).unwrap();
        p.fill(std::slice::from_ref(&o), 36).unwrap();
        let q = Packed::new(&[o], 36).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            (&p.pix, &p.start, &p.flux, &p.r2),
            (&q.pix, &q.start, &q.flux, &q.r2)
        );
        assert_eq!(bits(&p.dat), bits(&q.dat)); // NaN != NaN: compare the bits
        let empty = Packed::new(&[], 36).unwrap();
        assert_eq!((empty.n_objects(), empty.start.len()), (0, 1));
    }
}
