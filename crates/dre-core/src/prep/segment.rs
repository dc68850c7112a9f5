//! The segment mask of a cut, cleaned as the original does it with `scipy.ndimage`: a 4x4 block
//! forced on at the centre, only the 4-connected cluster holding the centre kept, its holes
//! filled, then 4 dilations by the 3x3 cross (pixels off the image count as off).

/// Side of the block forced on at the centre, so that even an object SExtractor's segmentation
/// missed keeps a few pixels.
const CENTRE_BLOCK: usize = 4;
/// Dilations by the 3x3 cross: the mask grows by 4 pixels (city-block distance).
const DILATIONS: usize = 4;

/// Cleans `mask`, a `size` x `size` row-major image (`size` > 0), in place. Crate-internal:
/// `cut_tile`, its only caller, refuses a zero box and cuts windows of `size` x `size`.
pub fn clean_mask(mask: &mut [bool], size: usize) {
    debug_assert!(size > 0, "empty mask");
    debug_assert_eq!(mask.len(), size * size, "mask is not size x size");
    let c = size / 2;
    let lo = c.saturating_sub(CENTRE_BLOCK / 2);
    let hi = (c + CENTRE_BLOCK / 2).min(size);
    for y in lo..hi {
        mask[y * size + lo..y * size + hi].fill(true);
    }
    let cluster = flood(mask, size, &[c * size + c]);
    mask.copy_from_slice(&cluster);
    fill_holes(mask, size);
    for _ in 0..DILATIONS {
        dilate_cross(mask, size);
    }
}

/// The pixels of `mask` 4-connected to any of `seeds` (seeds that are off reach nothing).
fn flood(mask: &[bool], size: usize, seeds: &[usize]) -> Vec<bool> {
    let mut reached = vec![false; mask.len()];
    let mut stack: Vec<usize> = seeds.iter().copied().filter(|&i| mask[i]).collect();
    for &i in &stack {
        reached[i] = true;
    }
    while let Some(i) = stack.pop() {
        let (x, y) = (i % size, i / size);
        let mut visit = |j: usize| {
            if mask[j] && !reached[j] {
                reached[j] = true;
                stack.push(j);
            }
        };
        if x > 0 {
            visit(i - 1);
        }
        if x + 1 < size {
            visit(i + 1);
        }
        if y > 0 {
            visit(i - size);
        }
        if y + 1 < size {
            visit(i + size);
        }
    }
    reached
}

/// `binary_fill_holes` with the cross: background not 4-connected to the border becomes mask.
fn fill_holes(mask: &mut [bool], size: usize) {
    let background: Vec<bool> = mask.iter().map(|&m| !m).collect();
    let border: Vec<usize> = (0..size)
        .flat_map(|k| [k, (size - 1) * size + k, k * size, k * size + size - 1])
        .collect();
    let outside = flood(&background, size, &border);
    for (m, o) in mask.iter_mut().zip(outside) {
        *m = !o;
    }
}

/// One `binary_dilation` by the 3x3 cross, border value 0.
fn dilate_cross(mask: &mut [bool], size: usize) {
    let src = mask.to_vec();
    for y in 0..size {
        for x in 0..size {
            let i = y * size + x;
            mask[i] = src[i]
                || (x > 0 && src[i - 1])
                || (x + 1 < size && src[i + 1])
                || (y > 0 && src[i - size])
                || (y + 1 < size && src[i + size]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_rows(rows: &[&str]) -> Vec<bool> {
        rows.iter()
            .flat_map(|r| r.bytes().map(|b| b == b'#'))
            .collect()
    }

    #[test]
    fn keeps_only_the_central_cluster_with_4_connectivity() {
        let size = 16;
        let mut mask = vec![false; size * size];
        // A blob touching the centre block, one touching it only diagonally, one far away.
        for (x, y) in [(10, 8), (11, 8), (11, 9), (11, 10), (12, 11), (2, 2)] {
            mask[y * size + x] = true;
        }
        let cluster = flood(&mask, size, &[8 * size + 8]);
        assert!(cluster.iter().all(|&c| !c), "the centre pixel is off");
        mask[8 * size + 9] = true;
        mask[8 * size + 8] = true;
        let cluster = flood(&mask, size, &[8 * size + 8]);
        let on: Vec<usize> = (0..size * size).filter(|&i| cluster[i]).collect();
        assert_eq!(
            on,
            vec![
                8 * 16 + 8,
                8 * 16 + 9,
                8 * 16 + 10,
                8 * 16 + 11,
                9 * 16 + 11,
                10 * 16 + 11
            ]
        );
    }

    #[test]
    fn fills_holes_but_not_bays_open_to_the_border() {
        let mut mask = from_rows(&[
            "........", //
            ".#####..", //
            ".#...#..", //
            ".#.#.#..", //
            ".#####..", //
            "....#...", //
            "#...#.#.", //
            "#.###.#.", //
        ]);
        fill_holes(&mut mask, 8);
        let want = from_rows(&[
            "........", //
            ".#####..", //
            ".#####..", //
            ".#####..", //
            ".#####..", //
            "....#...", //
            "#...#.#.", //
            "#.###.#.", //
        ]);
        assert_eq!(mask, want);
        // A hole touching a hole diagonally only is still closed off from the border.
        let mut ring = from_rows(&["#####", "#.#.#", "##.##", "#####", "....."]);
        fill_holes(&mut ring, 5);
        assert_eq!(
            ring,
            from_rows(&["#####", "#####", "#####", "#####", "....."])
        );
    }

    #[test]
    fn dilates_by_city_block_distance_and_clips_at_the_border() {
        let mut mask = vec![false; 11 * 11];
        mask[5 * 11 + 5] = true;
        mask[0] = true;
        for _ in 0..4 {
            dilate_cross(&mut mask, 11);
        }
        for y in 0..11i64 {
            for x in 0..11i64 {
                let d_centre = (x - 5).abs() + (y - 5).abs();
                let d_corner = x + y;
                assert_eq!(mask[(y * 11 + x) as usize], d_centre <= 4 || d_corner <= 4);
            }
        }
    }

    #[test]
    fn an_empty_mask_becomes_the_dilated_centre_block() {
        let size = 32;
        let mut mask = vec![false; size * size];
        clean_mask(&mut mask, size);
        // The block is rows/columns 14..18; 4 dilations reach city-block distance 4 from it.
        let dist = |v: i64| {
            if v < 14 {
                14 - v
            } else if v > 17 {
                v - 17
            } else {
                0
            }
        };
        for y in 0..size as i64 {
            for x in 0..size as i64 {
                assert_eq!(mask[(y * size as i64 + x) as usize], dist(x) + dist(y) <= 4);
            }
        }
    }
}
