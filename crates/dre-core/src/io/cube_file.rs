//! Cube files (SPEC 3): the model cube as one FITS image of shape
//! (NINDEX*NAXRAT, NPOSANG*BOXSIZE, NLOGH*BOXSIZE), one row of stamps per angle, one column
//! per radius, with the grid in the header; the layout of the original's `modelbulge.fits`.

use crate::error::{AtPath, Error, Result};
use crate::io::fits::{
    check_whole_read, checked_hdu, count_hdus, open_fits, read_f64_key, write_fits, AtWrite, Card,
};
use crate::model::cube::{model_fault, Axis, Grid, ModelCube};
use fitsio::hdu::{FitsHdu, HduInfo};
use fitsio::images::{ImageDescription, ImageType};
use fitsio::FitsFile;
use std::mem::MaybeUninit;
use std::path::Path;

/// Reads the grid of a cube file from its header, without the images.
pub fn read_grid(path: impl AsRef<Path>) -> Result<Grid> {
    let path = path.as_ref();
    let mut f = open_fits(path)?;
    let (hdu, _) = find_image(&mut f, path)?;
    grid_from_header(&mut f, &hdu, path)
}

fn grid_from_header(f: &mut FitsFile, hdu: &FitsHdu, path: &Path) -> Result<Grid> {
    let key = |f: &mut FitsFile, k: &str| read_f64_key(f, hdu, k).map_err(|e| e.at_file(path));
    let count = |f: &mut FitsFile, k: &str| -> Result<usize> {
        let v = key(f, k)?;
        if v < 1.0 || v.fract() != 0.0 {
            return Err(Error::file(
                path,
                format!("header key {k} = {v} is not a positive integer"),
            ));
        }
        Ok(v as usize)
    };
    let index = match hdu.read_key::<f64>(f, "NINDEX") {
        Ok(_) => Axis::new(key(f, "INDEX0")?, key(f, "DINDEX")?, count(f, "NINDEX")?),
        Err(_) => Axis::new(4.0, 0.0, 1),
    };
    let grid = Grid {
        index,
        axrat: Axis::new(key(f, "AXRAT0")?, key(f, "DAXRAT")?, count(f, "NAXRAT")?),
        posang: Axis::new(key(f, "POSANG0")?, key(f, "DPOSANG")?, count(f, "NPOSANG")?),
        logh: Axis::new(key(f, "LOGH0")?, key(f, "DLOGH")?, count(f, "NLOGH")?),
        boxsize: count(f, "BOXSIZE")?,
    };
    grid.validate().map_err(|e| e.at_file(path))?;
    Ok(grid)
}

/// Reads a cube file (SPEC 3). The image may be in the primary HDU or, as the original's
/// `save_models` writes it, in the first extension. Cubes without the index keys have one
/// index, n = 4.
pub fn read_cube(path: impl AsRef<Path>) -> Result<ModelCube> {
    let path = path.as_ref();
    let mut f = open_fits(path)?;
    let (hdu, shape) = find_image(&mut f, path)?;
    let grid = grid_from_header(&mut f, &hdu, path)?;

    let [ni, nq, nt, nr] = grid.shape();
    let b = grid.boxsize;
    let expected = [ni * nq, nt * b, nr * b];
    let planes = if shape.len() == 2 { 1 } else { shape[0] };
    let found = [planes, shape[shape.len() - 2], shape[shape.len() - 1]];
    if found != expected {
        return Err(Error::file(
            path,
            format!(
                "image shape {:?} disagrees with its header: NINDEX*NAXRAT={}, NPOSANG*BOXSIZE={}, NLOGH*BOXSIZE={}",
                found, expected[0], expected[1], expected[2]
            ),
        ));
    }

    // The data lies within the file (find_image); a tile-compressed cube is bounded, and
    // memory refused is an error, not an abort.
    let total = check_whole_read(path, &found, "cube")?;
    let mut data: Vec<f32> = Vec::new();
    data.try_reserve_exact(total).map_err(|_| {
        Error::file(
            path,
            format!("not enough memory for the cube ({total} values)"),
        )
    })?;

    let width = nr * b;
    let strip_len = b * width;
    // A model of zeros or non-finite pixels would spoil every object's estimates: checked
    // strip by strip as they are read (a pass over the whole cube afterwards reads it from
    // memory again), or after cfitsio's read.
    match plain_f32_data(&mut f, &hdu, path, total) {
        Some(offset) if strip_len > 0 => {
            let bad = read_raw(path, offset, &mut data, total, b, width)?;
            grid.model_faults(&bad).map_err(|e| e.at_file(path))?;
            Ok(ModelCube { grid, data })
        }
        _ => {
            data.resize(total, 0.0);
            read_cfitsio(&mut f, &hdu, path, &mut data, b, width)?;
            let cube = ModelCube { grid, data };
            cube.check_models().map_err(|e| e.at_file(path))?;
            Ok(cube)
        }
    }
}

/// Reads the cube through cfitsio, one strip (one angle of one plane: BOXSIZE rows x all
/// radii) at a time, so the peak memory is the cube plus one strip.
fn read_cfitsio(
    f: &mut FitsFile,
    hdu: &FitsHdu,
    path: &Path,
    data: &mut [f32],
    b: usize,
    width: usize,
) -> Result<()> {
    let strip_len = b * width;
    if strip_len == 0 {
        return Ok(());
    }
    for (s, out) in data.chunks_mut(strip_len).enumerate() {
        let start = s * strip_len;
        let strip: Vec<f32> = hdu.read_section(f, start, start + strip_len).at(path)?;
        unstrip(strip.chunks_exact(width), out, b);
    }
    Ok(())
}

/// Puts one strip's rows (BOXSIZE rows of all radii) into its models, one after another.
fn unstrip<'a>(rows: impl Iterator<Item = &'a [f32]>, out: &mut [f32], b: usize) {
    for (y, row) in rows.enumerate() {
        for (r, px) in row.chunks_exact(b).enumerate() {
            let dst = r * b * b + y * b;
            out[dst..dst + b].copy_from_slice(px);
        }
    }
}

/// The byte offset of the image data when it is plain big-endian float32 (BITPIX -32, no
/// BSCALE or BZERO, not tile-compressed, in an uncompressed file holding all `total`
/// values), which [`read_raw`] reads; `None` leaves the reading to cfitsio.
fn plain_f32_data(f: &mut FitsFile, hdu: &FitsHdu, path: &Path, total: usize) -> Option<u64> {
    use fitsio::sys::{ffghadll, ffgidt, ffmahd, fits_is_compressed_image};
    use std::os::raw::c_int;
    let mut trivial =
        |key: &str, identity: f64| hdu.read_key::<f64>(f, key).map_or(true, |v| v == identity);
    if !trivial("BSCALE", 1.0) || !trivial("BZERO", 0.0) {
        return None;
    }
    let mut status: c_int = 0;
    let (mut bitpix, mut ext): (c_int, c_int) = (0, 0);
    let (mut head, mut start, mut end) = (0i64, 0i64, 0i64);
    let hdunum = c_int::try_from(hdu.number + 1).ok()?;
    // SAFETY: the pointer comes from the open FitsFile `f`, which outlives these calls.
    let compressed = unsafe {
        let fp = f.as_raw();
        ffmahd(fp, hdunum, &mut ext, &mut status);
        ffgidt(fp, &mut bitpix, &mut status);
        let c = fits_is_compressed_image(fp, &mut status);
        ffghadll(fp, &mut head, &mut start, &mut end, &mut status);
        c
    };
    if status != 0 || bitpix != -32 || compressed != 0 {
        return None;
    }
    let start = u64::try_from(start).ok()?;
    let bytes = u64::try_from(total).ok()?.checked_mul(4)?;
    // cfitsio opens gzip-compressed files too: only a plain FITS file is read directly.
    let mut magic = [0u8; 9];
    let file = std::fs::File::open(path).ok()?;
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut magic, 0).ok()?;
    let len = file.metadata().ok()?.len();
    (&magic == b"SIMPLE  =" && start.checked_add(bytes)? <= len).then_some(start)
}

/// Reads the cube's `total` big-endian float32 values at byte `offset` into `data` (empty,
/// with room for them), strips read and byte-swapped in parallel on the thread pool (cfitsio
/// swaps on one thread), each thread with one strip's buffer. The first write to each page
/// of `data` is on a pool thread too, so the kernel zeroes the pages in parallel (a serial
/// zeroing of the whole cube first was 8 % of a run of `dre`). A strip holds whole models
/// (one angle of one plane: every radius), which are checked while in cache; returns the
/// faults found (flat model number, what is wrong), in model order.
fn read_raw(
    path: &Path,
    offset: u64,
    data: &mut Vec<f32>,
    total: usize,
    b: usize,
    width: usize,
) -> Result<Vec<(usize, String)>> {
    use rayon::prelude::*;
    use std::os::unix::fs::FileExt;
    debug_assert!(data.is_empty() && data.capacity() >= total && width % b == 0);
    let file = std::fs::File::open(path).map_err(|e| Error::file(path, e.to_string()))?;
    let strip_len = b * width;
    let per_strip = width / b;
    let faults: Vec<Vec<(usize, String)>> = data.spare_capacity_mut()[..total]
        .par_chunks_mut(strip_len)
        .enumerate()
        .map_init(
            || vec![0u8; strip_len * 4],
            |raw, (s, out)| {
                let at = offset + (s * strip_len * 4) as u64;
                let raw = &mut raw[..out.len() * 4];
                file.read_exact_at(raw, at)
                    .map_err(|e| Error::file(path, format!("cannot read the cube's data: {e}")))?;
                let models = write_strip(raw, out, b, width);
                Ok(models
                    .chunks_exact(b * b)
                    .enumerate()
                    .filter_map(|(r, m)| model_fault(m).map(|why| (s * per_strip + r, why)))
                    .collect())
            },
        )
        .collect::<Result<_>>()?;
    // SAFETY: write_strip wrote every value of every strip, all of the first `total`.
    unsafe { data.set_len(total) };
    Ok(faults.into_iter().flatten().collect())
}

/// Puts one strip's big-endian rows (BOXSIZE rows of all radii, `width` values each) into
/// its models, one after another, writing each value of `out` once.
fn write_strip<'a>(
    raw: &[u8],
    out: &'a mut [MaybeUninit<f32>],
    b: usize,
    width: usize,
) -> &'a [f32] {
    for (y, row) in raw.chunks_exact(width * 4).enumerate() {
        for (r, px) in row.chunks_exact(b * 4).enumerate() {
            let dst = &mut out[r * b * b + y * b..][..b];
            for (d, c) in dst.iter_mut().zip(px.chunks_exact(4)) {
                d.write(f32::from_be_bytes([c[0], c[1], c[2], c[3]]));
            }
        }
    }
    // SAFETY: the rows of every model of the strip, all of `out`, were written just above
    // (`out` holds width / b models of b rows of b values).
    unsafe { &*(out as *const [MaybeUninit<f32>] as *const [f32]) }
}

fn find_image(f: &mut FitsFile, path: &Path) -> Result<(FitsHdu, Vec<usize>)> {
    let n = count_hdus(f, path)?;
    for i in 0..n {
        let hdu = checked_hdu(f, i, path)?;
        if let HduInfo::ImageInfo { shape, .. } = &hdu.info {
            if shape.len() == 2 || shape.len() == 3 {
                let shape = shape.clone();
                return Ok((hdu, shape));
            }
        }
    }
    Err(Error::file(
        path,
        "no 2-D or 3-D image HDU: not a model cube",
    ))
}

/// Writes a cube in the layout of SPEC 3 (readable by the original's `ModelsCube`), with the
/// grid keys and any extra cards (the rendering convention). Written whole or not at all.
pub fn write_cube(path: impl AsRef<Path>, cube: &ModelCube, extra: &[Card]) -> Result<()> {
    write_models(path, &cube.grid, &cube.data, extra)
}

/// [`write_cube`] of the stamps `data` (flat model order, as [`ModelCube::data`]) on `grid`,
/// wherever they are held: no [`ModelCube`] has to own a copy.
pub fn write_models(
    path: impl AsRef<Path>,
    grid: &Grid,
    data: &[f32],
    extra: &[Card],
) -> Result<()> {
    let path = path.as_ref();
    grid.check_data(data).map_err(|e| e.at_file(path))?;
    let [ni, nq, nt, nr] = grid.shape();
    let b = grid.boxsize;
    let dims = [ni * nq, nt * b, nr * b];
    let desc = ImageDescription {
        data_type: ImageType::Float,
        dimensions: &dims,
    };
    write_fits(path, Some(&desc), |f| {
        let hdu = f.primary_hdu().at_write(path)?;
        for card in grid.cards().iter().chain(extra) {
            card.write(f, &hdu).at_write(path)?;
        }
        let width = nr * b;
        let mut strip = vec![0f32; b * width];
        for plane in 0..ni * nq {
            for t in 0..nt {
                for r in 0..nr {
                    let k = (plane * nt + t) * nr + r;
                    let model = &data[k * b * b..(k + 1) * b * b];
                    for y in 0..b {
                        strip[y * width + r * b..y * width + (r + 1) * b]
                            .copy_from_slice(&model[y * b..(y + 1) * b]);
                    }
                }
                let start = (plane * nt + t) * strip.len();
                hdu.write_section(f, start, start + strip.len(), &strip)
                    .at_write(path)?;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::cube::test_grids::small as grid;

    #[test]
    fn a_cube_without_index_keys_is_de_vaucouleurs() {
        let mut g = grid();
        g.index = Axis::new(4.0, 0.0, 1);
        let cube = ModelCube {
            data: vec![1.0; g.n_models() * g.stamp_len()],
            grid: g.clone(),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.fits");
        write_cube(&path, &cube, &[]).unwrap();
        let mut f = crate::io::fits::edit_fits(&path).unwrap();
        for key in ["NINDEX", "INDEX0", "DINDEX"] {
            let (k, mut status) = (std::ffi::CString::new(key).unwrap(), 0);
            unsafe { fitsio::sys::ffdkey(f.as_raw(), k.as_ptr(), &mut status) };
            assert_eq!(status, 0);
        }
        drop(f);
        let back = read_cube(&path).unwrap();
        assert_eq!(back.grid, g);
    }

    #[test]
    fn models_held_elsewhere_are_written_as_their_cube_and_short_ones_refused() {
        let g = grid();
        let n = g.n_models() * g.stamp_len();
        // The stamps inside a larger buffer, as a caller's array may hold them.
        let held: Vec<f32> = (0..n + 5).map(|i| 1.0 + (i % 97) as f32).collect();
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.fits"), dir.path().join("b.fits"));
        write_models(&a, &g, &held[..n], &[]).unwrap();
        let cube = ModelCube {
            grid: g.clone(),
            data: held[..n].to_vec(),
        };
        write_cube(&b, &cube, &[]).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_eq!(read_cube(&a).unwrap().data, cube.data);
        let c = dir.path().join("c.fits");
        let e = write_models(&c, &g, &held[..n - 1], &[]).unwrap_err();
        let [b, m] = [g.boxsize, g.n_models()];
        let want = format!(
            "{}: cube holds {} values, not the {m} models of {b}x{b} pixels of its grid",
            c.display(),
            n - 1
        );
        assert_eq!(e.to_string(), want);
        assert!(!c.exists(), "nothing is written");
    }

    #[test]
    fn bad_models_are_found_as_the_strips_are_read() {
        let g = grid();
        let len = g.stamp_len();
        let mut cube = ModelCube {
            grid: g.clone(),
            data: vec![1.0; g.n_models() * len],
        };
        // The last model and one in the first strip: the error names the first in model
        // order, as the check of a whole cube in memory does.
        let last = g.n_models() - 1;
        cube.data[last * len + 3] = f32::NAN;
        cube.data[len..2 * len].fill(0.0);
        let want = cube.check_models().unwrap_err().to_string();
        assert!(want.contains("(and 1 more models)"), "{want}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cube.fits");
        write_cube(&path, &cube, &[]).unwrap();
        let got = read_cube(&path).unwrap_err().to_string();
        assert_eq!(got, format!("{}: {want}", path.display()));
    }

    #[test]
    fn write_then_read_round_trips() {
        let g = grid();
        let data: Vec<f32> = (0..g.n_models() * g.stamp_len())
            .map(|i| i as f32)
            .collect();
        let cube = ModelCube {
            grid: g.clone(),
            data,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cube.fits");
        write_cube(&path, &cube, &[Card::text("RADTYPE", "HLR_MAJOR", "test")]).unwrap();
        let back = read_cube(&path).unwrap();
        assert_eq!(back.grid, g);
        assert_eq!(back.data, cube.data);
    }

    /// The direct read (parallel byte swap) gives what cfitsio gives, from a cube in the
    /// primary HDU and from one in an extension, as the original writes it.
    #[test]
    fn direct_read_equals_cfitsio() {
        let g = grid();
        let data: Vec<f32> = (0..g.n_models() * g.stamp_len())
            .map(|i| (i as f32).sin() * 1e-3 + i as f32)
            .collect();
        let cube = ModelCube {
            grid: g.clone(),
            data,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cube.fits");
        write_cube(&path, &cube, &[]).unwrap();
        let mut f = open_fits(&path).unwrap();
        let (hdu, _) = find_image(&mut f, &path).unwrap();
        let total = cube.data.len();
        let offset = plain_f32_data(&mut f, &hdu, &path, total).expect("a plain float32 cube");
        let (b, width) = (g.boxsize, g.logh.count * g.boxsize);
        let mut direct = Vec::with_capacity(total);
        read_raw(&path, offset, &mut direct, total, b, width).unwrap();
        let mut slow = vec![0.0; total];
        read_cfitsio(&mut f, &hdu, &path, &mut slow, b, width).unwrap();
        assert_eq!(direct, cube.data);
        assert_eq!(slow, cube.data);

        // The same image in the first extension, after an empty primary HDU.
        let ext = dir.path().join("ext.fits");
        {
            crate::io::fits::init_cfitsio();
            let mut out = fitsio::FitsFile::create(&ext).open().unwrap();
            let desc = ImageDescription {
                data_type: ImageType::Float,
                dimensions: &[g.index.count * g.axrat.count, g.posang.count * b, width],
            };
            let hdu = out.create_image("MODELS", &desc).unwrap();
            // The image in the file's order, as cfitsio reads it.
            let img = find_image(&mut f, &path).unwrap().0;
            let raw: Vec<f32> = img.read_image(&mut f).unwrap();
            hdu.write_image(&mut out, &raw).unwrap();
        }
        let mut fe = open_fits(&ext).unwrap();
        let (hdu, _) = find_image(&mut fe, &ext).unwrap();
        assert_eq!(hdu.number, 1);
        let offset = plain_f32_data(&mut fe, &hdu, &ext, total).expect("a plain float32 image");
        let mut direct = Vec::with_capacity(total);
        read_raw(&ext, offset, &mut direct, total, b, width).unwrap();
        assert_eq!(direct, cube.data);
    }
}
