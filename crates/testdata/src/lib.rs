//! The golden data (outputs of the original Python DRE on a simulated tile) live in
//! `tests/golden/`, the large files xz-compressed to keep the repository small. This crate
//! hands the tests a folder with everything unpacked, under `target/golden/`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The unpacked golden folder, laid out as the original's working directory
/// (`Cuts/`, `Chi/`, `Summary/`, `PSF/`, `Sextracted/`, `Tiles/`, `cube_small.fits`, ...).
pub fn golden() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let src = workspace().join("tests/golden");
        let dst = workspace().join("target/golden");
        unpack(&src, &dst);
        dst
    })
    .clone()
}

fn unpack(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("create target/golden");
    for entry in std::fs::read_dir(src).expect("tests/golden is missing") {
        let entry = entry.unwrap();
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            unpack(&path, &dst.join(&name));
            continue;
        }
        let (out, xz) = match name.strip_suffix(".xz") {
            Some(stem) => (dst.join(stem), true),
            None => (dst.join(&name), false),
        };
        let fresh = out.metadata().and_then(|m| m.modified()).ok();
        let source_time = path.metadata().and_then(|m| m.modified()).ok();
        if fresh.is_some() && fresh >= source_time {
            continue;
        }
        // Unpack beside the destination and rename, so parallel test processes never read a
        // half-written file.
        let tmp = dst.join(format!(".{name}.{}.tmp", std::process::id()));
        if xz {
            let mut input = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
            let mut output = std::io::BufWriter::new(std::fs::File::create(&tmp).unwrap());
            lzma_rs::xz_decompress(&mut input, &mut output).expect("corrupt .xz in tests/golden");
            drop(output);
        } else {
            std::fs::copy(&path, &tmp).unwrap();
        }
        std::fs::rename(&tmp, &out).unwrap();
    }
}
