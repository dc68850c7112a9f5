//! The default model cube: the original program's grid, rendered once into a cache folder
//! and re-rendered when the cached file is missing, unreadable or another cube.

use crate::error::Result;
use crate::io::cube_file::{read_cube, write_cube};
use crate::io::fits::{open_fits, read_str_key};
use crate::model::cube::{Axis, Grid, ModelCube};
use crate::model::render::{convention_cards, render_cube, RadiusConvention};
use std::path::{Path, PathBuf};

/// The original program's grid: n = 4; q = 0.1..1.0 step 0.1; theta = -90..90 step 15;
/// log10 R_e = -0.4..1.6 step 0.1; 128x128 stamps (2730 models).
pub fn default_grid() -> Grid {
    Grid {
        index: Axis::new(4.0, 0.0, 1),
        axrat: Axis::new(0.1, 0.1, 10),
        posang: Axis::new(-90.0, 15.0, 13),
        logh: Axis::new(-0.4, 0.1, 21),
        boxsize: 128,
    }
}

/// Where the default cube is kept unless the caller says otherwise: `$DRE_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/dre`, else `~/.cache/dre`, else `.dre-cache` in the working directory.
pub fn default_cache_dir() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("DRE_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("dre")))
        .or_else(|| env("HOME").map(|h| h.join(".cache/dre")))
        .unwrap_or_else(|| PathBuf::from(".dre-cache"))
}

/// File name of the default cube in a cache folder; the version changes with the renderer.
const DEFAULT_CUBE_NAME: &str = "dre_default_cube_v1.fits";

/// The path of the default cube (the default grid, semi-major radii) in `cache_dir`,
/// rendered there first when it is missing, unreadable or not that cube.
pub fn default_cube(cache_dir: &Path) -> Result<PathBuf> {
    load_default_cube(cache_dir).map(|(path, _)| path)
}

/// The default cube, read once, and the path of its file in `cache_dir` (rendered there
/// first when it is missing, unreadable or not that cube: then the cube rendered, not read
/// back).
pub fn load_default_cube(cache_dir: &Path) -> Result<(PathBuf, ModelCube)> {
    let path = cache_dir.join(DEFAULT_CUBE_NAME);
    let cube = cached_cube(&path, &default_grid(), RadiusConvention::Major)?;
    Ok((path, cube))
}

/// The cube of `grid` in convention `radius` held by `path`, rendered there if not.
fn cached_cube(path: &Path, grid: &Grid, radius: RadiusConvention) -> Result<ModelCube> {
    match cube_of(path, grid, radius) {
        Some(cube) => Ok(cube),
        None => {
            let cube = render_cube(grid, radius, &|| ())?;
            write_cube(path, &cube, &convention_cards(grid, radius))?;
            Ok(cube)
        }
    }
}

/// The cube in `path`, if it reads whole and is of this grid and radius convention.
fn cube_of(path: &Path, grid: &Grid, radius: RadiusConvention) -> Option<ModelCube> {
    let cube = read_cube(path).ok()?;
    let radtype = open_fits(path).ok().and_then(|mut f| {
        let hdu = f.primary_hdu().ok()?;
        read_str_key(&mut f, &hdu, "RADTYPE").ok()
    });
    (cube.grid == *grid && radtype.as_deref() == Some(radius.header_value())).then_some(cube)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::cube::test_grids::tiny as tiny_grid;

    #[test]
    fn cache_rerenders_corrupt_or_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cube.fits");
        let g = tiny_grid();
        std::fs::write(&path, b"not a FITS file").unwrap();
        let rendered = cached_cube(&path, &g, RadiusConvention::Major).unwrap();
        let cube = read_cube(&path).unwrap();
        assert_eq!(cube.grid, g);
        // What is returned is what the file holds.
        assert_eq!(rendered.data, cube.data);
        assert_eq!(rendered.grid, cube.grid);
        assert!(cube_of(&path, &g, RadiusConvention::Major).is_some());
        // Another convention or grid is not this cube.
        assert!(cube_of(&path, &g, RadiusConvention::Circular).is_none());
        let mut other = g.clone();
        other.boxsize = 32;
        assert!(cube_of(&path, &other, RadiusConvention::Major).is_none());
        // A valid cache is kept as it is, and read.
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        let read = cached_cube(&path, &g, RadiusConvention::Major).unwrap();
        assert_eq!(read.data, cube.data);
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            before
        );
        // A truncated file is rendered again.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        cached_cube(&path, &g, RadiusConvention::Major).unwrap();
        assert_eq!(read_cube(&path).unwrap().data, cube.data);
    }
}
