//! Entry points for the fuzz targets (`crates/dre-core/fuzz`) and their corpus replay test:
//! each target's bytes go through the reader a tool would call on such a file. Not part of
//! the API: hidden, and free to change with the targets.
//!
//! The FITS targets take the file's bytes. The HDF5 targets (`cuts`, `chi`) take a recipe
//! from which a well-formed HDF5 file is built ([`hdf5_from_recipe`]): HDF5 1.10 itself
//! overflows buffers and dereferences null on corrupted metadata (README, "Fuzzing"), which
//! no check before the call can prevent, so what is fuzzed is the readers' handling of
//! every file HDF5 can describe.

use crate::error::{Error, Result};
use crate::io::image::{ImageHdu, Plane};
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

/// The fuzz input `data` of `target` (a file's bytes, or a recipe for the HDF5 targets)
/// written to a scratch file of this process and target (under `/dev/shm` where it
/// exists), read as `target` does, and removed: `Ok` when one of the target's reads
/// succeeded. Any `Err` is a fine answer; a panic, an abort or a hang is a bug.
pub fn read_bytes(target: &str, data: &[u8]) -> Result<()> {
    read_scratch(target, data, matches!(target, "cuts" | "chi"))
}

/// As [`read_bytes`], `data` being a whole file's bytes for every target.
pub fn read_file_bytes(target: &str, data: &[u8]) -> Result<()> {
    read_scratch(target, data, false)
}

fn read_scratch(target: &str, data: &[u8], recipe: bool) -> Result<()> {
    let Some(&(_, ext)) = TARGETS.iter().find(|(t, _)| *t == target) else {
        return Err(Error::Invalid(format!("no fuzz target {target}")));
    };
    let path = scratch(target, ext);
    let read = match recipe {
        true => hdf5_from_recipe(&path, data),
        false => std::fs::write(&path, data).map_err(|e| Error::file(&path, e)),
    }
    .and_then(|_| read_as(target, &path));
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
            let reads: Vec<_> = cuts.names().iter().map(|n| cuts.read(n)).collect();
            let _ = cuts.warnings();
            any_ok(reads)
        }
        "chi" => {
            let names = CutReader::open(path)?.names().to_vec();
            any_ok(names.iter().map(|n| read_chi(path, n)).collect())
        }
        t => Err(Error::Invalid(format!("no fuzz target {t}"))),
    }
}

/// `Ok` when there was nothing to read or one of the reads succeeded, else the first error.
fn any_ok<T>(reads: Vec<Result<T>>) -> Result<()> {
    match reads.iter().any(|r| r.is_ok()) {
        true => Ok(()),
        false => reads.into_iter().find_map(|r| r.err()).map_or(Ok(()), Err),
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
/// rms) and int64 (segmentation), both ways make_cuts reads them: out of the image read
/// whole, and a window at a time. Returns the number of pixels read.
pub fn image_windows(path: &Path, ext: usize, size: usize) -> Result<usize> {
    let mut read = 0;
    for max_pixels in [usize::MAX, 0] {
        let mut img = Plane::<f32>::new(ImageHdu::open(path, ext)?, max_pixels)?;
        // As a segmentation map; cfitsio cannot read a quantised float image tile-compressed
        // as integers (status 414), an error a valid science image may give here.
        let mut seg = ImageHdu::open(path, ext).and_then(|h| Plane::<i64>::new(h, max_pixels));
        let (width, height) = img.size();
        let size = size.min(width).min(height);
        if size == 0 {
            return Ok(0);
        }
        let (w, h) = (width as f64, height as f64);
        let half = size as f64 / 2.0;
        for (x, y) in [(w / 2.0, h / 2.0), (half, half), (w - half, h - half)] {
            let win = Window::centred(x, y, size);
            if !win.fits_in(width, height) {
                continue;
            }
            read += img.window(&win)?.len();
            if let Ok(seg) = seg.as_mut() {
                read += seg.window(&win).map_or(0, |v| v.len());
            }
        }
    }
    Ok(read)
}

/// Builds an HDF5 file at `path` from `recipe`, whose bytes choose, in turn, up to four
/// root members (groups of datasets as cut files hold, datasets as chi files hold, empty
/// groups), their names (the usual ones, repeats, odd ones), each dataset's element type
/// (float, integer, bool, string), shape (0 to 4 axes; a large one is left unwritten, so
/// that it reads as fill values), layout (contiguous, chunked, gzip, lzf) and values (any
/// bit pattern). What HDF5 refuses to write is left out.
pub fn hdf5_from_recipe(path: &Path, recipe: &[u8]) -> Result<()> {
    let file = hdf5::File::create(path).map_err(|e| Error::file(path, e))?;
    let mut r = Recipe {
        bytes: recipe,
        at: 0,
    };
    let mut names: Vec<String> = Vec::new();
    for _ in 0..r.next() % 5 {
        let name = r.name(&names, &["01_0001", "01_0002", "02_0001"]);
        names.push(name.clone());
        match r.next() % 3 {
            0 => {
                let Ok(group) = file.create_group(&name) else {
                    continue;
                };
                for _ in 0..r.next() % 5 {
                    let member = r.name(&[], &["obj", "rms", "seg", "x"]);
                    match r.next() % 8 {
                        0 => drop(group.create_group(&member)),
                        _ => drop(r.dataset(&group, &member)),
                    }
                }
            }
            1 => drop(r.dataset(&file, &name)),
            _ => drop(file.create_group(&name)),
        }
    }
    file.close().map_err(|e| Error::file(path, e))
}

struct Recipe<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Recipe<'_> {
    /// The next byte; zeros once the recipe is used up.
    fn next(&mut self) -> u8 {
        let b = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        std::array::from_fn(|_| self.next())
    }

    fn name(&mut self, used: &[String], usual: &[&str]) -> String {
        match self.next() % 4 {
            0 if !used.is_empty() => used[self.next() as usize % used.len()].clone(),
            1 => (0..self.next() % 6)
                .map(|_| b"ab_01 ./"[self.next() as usize % 8] as char)
                .collect(),
            _ => usual[self.next() as usize % usual.len()].to_string(),
        }
    }

    fn dataset(&mut self, group: &hdf5::Group, name: &str) -> Option<()> {
        use hdf5::types::FixedAscii;
        let rank = self.next() % 5;
        let dims: Vec<usize> = (0..rank)
            .map(|_| match self.next() {
                b if b >= 0xf0 => 256 + self.next() as usize * 64,
                b => (b % 9) as usize,
            })
            .collect();
        let layout = self.next();
        match self.next() % 10 {
            0 => self.put(group, name, &dims, layout, |r| {
                f32::from_le_bytes(r.bytes())
            }),
            1 => self.put(group, name, &dims, layout, |r| {
                f64::from_le_bytes(r.bytes())
            }),
            2 => self.put(group, name, &dims, layout, |r| r.next() as i8),
            3 => self.put(group, name, &dims, layout, |r| r.next()),
            4 => self.put(group, name, &dims, layout, |r| {
                i16::from_le_bytes(r.bytes())
            }),
            5 => self.put(group, name, &dims, layout, |r| {
                i32::from_le_bytes(r.bytes())
            }),
            6 => self.put(group, name, &dims, layout, |r| {
                i64::from_le_bytes(r.bytes())
            }),
            7 => self.put(group, name, &dims, layout, |r| {
                u64::from_le_bytes(r.bytes())
            }),
            8 => self.put(group, name, &dims, layout, |r| r.next() % 2 == 1),
            _ => self.put(group, name, &dims, layout, |r| {
                FixedAscii::<4>::from_ascii(&r.bytes::<4>().map(|b| b % 128)).unwrap_or_default()
            }),
        }
    }

    fn put<T: hdf5::H5Type>(
        &mut self,
        group: &hdf5::Group,
        name: &str,
        dims: &[usize],
        layout: u8,
        mut value: impl FnMut(&mut Self) -> T,
    ) -> Option<()> {
        let n: usize = dims.iter().product();
        if n > 4096 {
            group.new_dataset::<T>().shape(dims).create(name).ok()?;
            return Some(());
        }
        let values: Vec<T> = (0..n).map(|_| value(self)).collect();
        let data = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(dims), values).ok()?;
        let mut builder = group.new_dataset_builder().with_data(&data);
        if layout % 4 != 0 && !dims.is_empty() {
            let chunk: Vec<usize> = dims.iter().map(|&d| d.clamp(1, 4)).collect();
            // liblzf reads 2 bytes of any chunk: a 1-byte chunk is read past its end (found
            // by fuzzing this builder; the writers' chunks are never that small).
            let bytes = chunk.iter().product::<usize>() * std::mem::size_of::<T>();
            builder = match layout % 4 {
                2 => builder.deflate(4),
                3 if bytes >= 2 => builder.lzf(),
                _ => builder,
            };
            builder = builder.chunk(chunk);
        }
        builder.create(name).ok()?;
        Some(())
    }
}
