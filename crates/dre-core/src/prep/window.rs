//! The square window of a cut, placed as astropy's `Cutout2D` places it: the lower edge on each
//! axis at `ceil(pos - size / 2)` (0-based), so the position lands in `(size/2 - 1, size/2]`.

/// A `size` x `size` window of an image, lower corner at (`x0`, `y0`), 0-based pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub x0: i64,
    pub y0: i64,
    pub size: usize,
}

impl Window {
    /// The window centred on the 0-based position (`x`, `y`).
    pub fn centred(x: f64, y: f64, size: usize) -> Self {
        let lower = |pos: f64| (pos - size as f64 / 2.0).ceil() as i64;
        Window {
            x0: lower(x),
            y0: lower(y),
            size,
        }
    }

    /// Whether the whole window lies on an image of `width` x `height` pixels.
    pub fn fits_in(&self, width: usize, height: usize) -> bool {
        let s = self.size as i64;
        self.x0 >= 0 && self.y0 >= 0 && self.x0 + s <= width as i64 && self.y0 + s <= height as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_edge_is_ceil_of_pos_minus_half_size() {
        // Half-integer positions round the edge up: the object sits at 64 of the cut.
        assert_eq!(Window::centred(100.5, 200.5, 128).x0, 37);
        assert_eq!(Window::centred(100.5, 200.5, 128).y0, 137);
        // Integer positions sit at 64 too; just above an integer, at (63, 64].
        assert_eq!(Window::centred(100.0, 0.0, 128).x0, 36);
        assert_eq!(Window::centred(100.25, 0.0, 128).x0, 37);
        assert_eq!(Window::centred(100.75, 0.0, 128).x0, 37);
        assert_eq!(Window::centred(101.0, 0.0, 128).x0, 37);
        // Odd sizes: the edge at ceil(pos - 5.5).
        assert_eq!(Window::centred(10.5, 10.4, 11).x0, 5);
        assert_eq!(Window::centred(10.5, 10.4, 11).y0, 5);
    }

    #[test]
    fn windows_off_the_image_are_told() {
        let w = Window::centred(63.5, 100.0, 128);
        assert_eq!(w.x0, 0);
        assert!(w.fits_in(1024, 1024));
        assert!(!Window::centred(63.0, 100.0, 128).fits_in(1024, 1024));
        assert!(Window::centred(959.0, 959.0, 128).fits_in(1024, 1024));
        assert!(!Window::centred(960.5, 500.0, 128).fits_in(1024, 1024));
    }
}
