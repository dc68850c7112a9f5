//! Cube files (SPEC 3): the model cube as one FITS image of shape
//! (NINDEX*NAXRAT, NPOSANG*BOXSIZE, NLOGH*BOXSIZE), one row of stamps per angle, one column
//! per radius, with the grid in the header; the layout of the original's `modelbulge.fits`.

use crate::error::{AtPath, Error, Result};
use crate::io::fits::{
    check_whole_read, checked_hdu, count_hdus, open_fits, read_f64_key, write_fits, AtWrite, Card,
};
use crate::model::cube::{Axis, Grid, ModelCube};
use fitsio::hdu::{FitsHdu, HduInfo};
use fitsio::images::{ImageDescription, ImageType};
use fitsio::FitsFile;
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
    data.resize(total, 0.0);

    // Read one strip (one angle of one plane: BOXSIZE rows x all radii) at a time, so the
    // peak memory is the cube plus one strip.
    let width = nr * b;
    let strip_len = b * width;
    for plane in 0..ni * nq {
        for t in 0..nt {
            let start = (plane * nt + t) * strip_len;
            let strip: Vec<f32> = hdu
                .read_section(&mut f, start, start + strip_len)
                .at(path)?;
            for (y, row) in strip.chunks_exact(width).enumerate() {
                for (r, px) in row.chunks_exact(b).enumerate() {
                    let k = (plane * nt + t) * nr + r;
                    let dst = k * b * b + y * b;
                    data[dst..dst + b].copy_from_slice(px);
                }
            }
        }
    }
    let cube = ModelCube { grid, data };
    // A model of zeros or non-finite pixels would spoil every object's estimates.
    cube.check_models().map_err(|e| e.at_file(path))?;
    Ok(cube)
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
    let path = path.as_ref();
    cube.check_shape()?;
    let grid = &cube.grid;
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
                    let model = cube.model((plane * nt + t) * nr + r);
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

    fn grid() -> Grid {
        Grid {
            index: Axis::new(3.0, 1.0, 2),
            axrat: Axis::new(0.5, 0.5, 2),
            posang: Axis::new(-90.0, 90.0, 3),
            logh: Axis::new(0.0, 0.5, 2),
            boxsize: 8,
        }
    }

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
}
