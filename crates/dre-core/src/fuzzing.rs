//! Entry points for the fuzz targets (`crates/dre-core/fuzz`) and their corpus replay test:
//! each target's bytes go through the reader a tool would call on such a file. Not part of
//! the API: hidden, and free to change with the targets.

use crate::error::{Error, Result};
use crate::io::image::ImageHdu;
use crate::prep::window::Window;
use crate::{read_catalog, read_chi, read_cube, read_grid, read_psf, CutReader};
use std::path::{Path, PathBuf};

/// The fuzz targets, each with the extension its input file is given (`read_psf` reads a
/// `.psf` as PSFEx output and anything else as an image).
pub const TARGETS: [(&str, &str); 7] = [
    ("fits_image", "fits"),
    ("fits_table", "fits"),
    ("ldac", "cat"),
    ("psf", "psf"),
    ("cube", "fits"),
    ("cuts", "h5"),
    ("chi", "h5"),
];

/// Writes `data` to a scratch file of this process and target (under `/dev/shm` where it
/// exists), reads it as `target` does, and removes it: `Ok` when one of the target's reads
/// succeeded. Any `Err` is a fine answer; a panic, an abort or a hang is a bug.
pub fn read_bytes(target: &str, data: &[u8]) -> Result<()> {
    let Some(&(_, ext)) = TARGETS.iter().find(|(t, _)| *t == target) else {
        return Err(Error::Invalid(format!("no fuzz target {target}")));
    };
    let path = scratch(target, ext);
    std::fs::write(&path, data).map_err(|e| Error::file(&path, e))?;
    let read = read_as(target, &path);
    let _ = std::fs::remove_file(&path);
    read
}

fn scratch(target: &str, ext: &str) -> PathBuf {
    let shm = Path::new("/dev/shm");
    let dir = match shm.is_dir() {
        true => shm.to_path_buf(),
        false => std::env::temp_dir(),
    };
    // Test threads replay targets side by side: one file per target and thread.
    let thread = format!("{:?}", std::thread::current().id());
    let thread: String = thread.chars().filter(char::is_ascii_digit).collect();
    dir.join(format!(
        "dre-fuzz-{}-{thread}-{target}.{ext}",
        std::process::id()
    ))
}

fn read_as(target: &str, path: &Path) -> Result<()> {
    match target {
        "fits_image" => {
            // A tile's science image, then the second extension of a multi-extension tile.
            let first = image_windows(path, 1, 8);
            either(first, image_windows(path, 2, 8))
        }
        "fits_table" | "ldac" => {
            let t = read_catalog(path)?;
            for c in &t.columns {
                let _ = (c.len(), c.as_f64(), c.as_i64());
            }
            Ok(())
        }
        "psf" => {
            // As PSFEx output, then as a plain image (`.fits`).
            let psfex = read_psf(path).map(drop);
            let image = path.with_extension("fits");
            std::fs::rename(path, &image).map_err(|e| Error::file(path, e))?;
            let read = read_psf(&image).map(drop);
            let _ = std::fs::rename(&image, path);
            either(psfex, read)
        }
        "cube" => {
            read_grid(path)?;
            read_cube(path).map(drop)
        }
        "cuts" => {
            let cuts = CutReader::open(path)?;
            for name in cuts.names() {
                let _ = cuts.read(name);
            }
            let _ = cuts.warnings();
            Ok(())
        }
        "chi" => {
            let names = CutReader::open(path)?.names().to_vec();
            for name in names {
                let _ = read_chi(path, &name);
            }
            Ok(())
        }
        t => Err(Error::Invalid(format!("no fuzz target {t}"))),
    }
}

/// `Ok` when one of two reads succeeded, else the first one's error.
fn either<A, B>(first: Result<A>, second: Result<B>) -> Result<()> {
    match (first, second) {
        (Err(e), Err(_)) => Err(e),
        _ => Ok(()),
    }
}

/// Opens image extension `ext` of `path` as `make_cuts` opens a tile and reads the windows
/// of side `size` (at most the image's) at its centre and two corners, as float32 (science,
/// rms) and int64 (segmentation). Returns the number of pixels read.
pub fn image_windows(path: &Path, ext: usize, size: usize) -> Result<usize> {
    let mut img = ImageHdu::open(path, ext)?;
    let size = size.min(img.width).min(img.height);
    if size == 0 {
        return Ok(0);
    }
    let (w, h) = (img.width as f64, img.height as f64);
    let half = size as f64 / 2.0;
    let mut read = 0;
    for (x, y) in [(w / 2.0, h / 2.0), (half, half), (w - half, h - half)] {
        let win = Window::centred(x, y, size);
        if !win.fits_in(img.width, img.height) {
            continue;
        }
        read += img.window::<f32>(&win)?.len();
        // As a segmentation map; cfitsio cannot read a quantised float image tile-compressed
        // as integers (status 414), an error a valid science image may give here.
        read += img.window::<i64>(&win).map_or(0, |v| v.len());
    }
    Ok(read)
}
