//! SExtractor and PSFEx split the values of their command line on spaces, commas and `=`,
//! and SExtractor reads `image.fits[1]` as an extension: a file whose name holds such a
//! character is handed to them under a safe alias (a link), and what they write under an
//! alias is renamed back to the name it was asked for.

use crate::error::{AtPath, Error, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Whether the tools take `s` literally as a file name.
pub(crate) fn is_safe(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/-+".contains(&b))
}

/// `name` with every character the tools would not take literally replaced by `_`.
pub(crate) fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            c if c.is_ascii_alphanumeric() || "._-+".contains(c) => c,
            _ => '_',
        })
        .collect()
}

/// A tool's command line with every unsafe file name replaced by an alias. Dropped, it
/// removes the link it may have made outside the scratch folder.
#[derive(Debug)]
pub(crate) struct Aliased {
    /// The command line to run.
    pub args: Vec<OsString>,
    /// (written under, asked for): outputs to rename back after the run.
    outputs: Vec<(PathBuf, PathBuf)>,
    /// A link in the temporary folder to the scratch folder, when its own path is unsafe.
    outside: Option<PathBuf>,
}

impl Aliased {
    /// Says that the tool will write `real` as `written_as` (a name it derives from an
    /// aliased input), for [`Aliased::restore`] to rename.
    pub fn expect(&mut self, written_as: PathBuf, real: PathBuf) {
        if written_as != real {
            self.outputs.push((written_as, real));
        }
    }

    /// Renames what the tool wrote under an alias to the name it was asked for.
    pub fn restore(&self) -> Result<()> {
        for (alias, real) in &self.outputs {
            if alias.exists() {
                std::fs::rename(alias, real).at(real)?;
            }
        }
        Ok(())
    }
}

impl Drop for Aliased {
    fn drop(&mut self) {
        if let Some(link) = &self.outside {
            let _ = std::fs::remove_file(link);
        }
    }
}

/// Rewrites `args` of a tool writing into `scratch` (an absolute folder, removed after the
/// run): each comma-separated value that is an existing file, or a path in `scratch`, and
/// is not safe (see [`is_safe`]) is replaced: an input by a link `scratch/inK/NAME` with
/// the unsafe characters of NAME replaced by `_`, an output by such a name in `scratch`
/// (see [`Aliased::restore`]). Where `scratch`'s own path is unsafe, it is reached through
/// a link in the temporary folder. Arguments holding no such path are left as they are.
pub(crate) fn alias_args(args: &[OsString], scratch: &Path) -> Result<Aliased> {
    let mut out = Aliased {
        args: Vec::with_capacity(args.len()),
        outputs: Vec::new(),
        outside: None,
    };
    let scratch_s = scratch.to_string_lossy().into_owned();
    let mut inputs = 0;
    for arg in args {
        let Some(a) = arg.to_str() else {
            out.args.push(arg.clone());
            continue;
        };
        if is_safe(a) {
            out.args.push(arg.clone());
            continue;
        }
        let in_scratch = |p: &str| p == scratch_s || p.starts_with(&format!("{scratch_s}/"));
        let is_path = |p: &str| in_scratch(p) || Path::new(p).is_file();
        // A list of paths (SExtractor's CHECKIMAGE_NAME) is split on commas; a name holding
        // a comma is taken whole only when it is an existing file or the scratch folder.
        let parts: Vec<&str> = if a == scratch_s || Path::new(a).is_file() {
            vec![a]
        } else {
            a.split(',').collect()
        };
        if !parts.iter().any(|p| is_path(p)) {
            out.args.push(arg.clone());
            continue;
        }
        let mut new = Vec::with_capacity(parts.len());
        for part in parts {
            if is_safe(part) || !is_path(part) {
                new.push(part.to_string());
                continue;
            }
            let base = out.base(scratch, &scratch_s)?;
            let rel = part
                .strip_prefix(&scratch_s)
                .map(|r| r.trim_start_matches('/'));
            let alias = match rel {
                Some("") => base,
                Some(r) if is_safe(r) => base.join(r),
                Some(r) if Path::new(part).exists() => {
                    // A file of the scratch folder itself (a configuration written there).
                    let name = format!("in{inputs}_{}", safe_name(r));
                    inputs += 1;
                    link(Path::new(part), &scratch.join(&name))?;
                    base.join(name)
                }
                Some(r) => {
                    let name = format!("out{}_{}", out.outputs.len(), safe_name(r));
                    out.outputs.push((scratch.join(&name), PathBuf::from(part)));
                    base.join(name)
                }
                None => {
                    let dir = format!("in{inputs}");
                    inputs += 1;
                    std::fs::create_dir(scratch.join(&dir)).at(scratch)?;
                    let file = Path::new(part);
                    let name = safe_name(&file.file_name().unwrap_or_default().to_string_lossy());
                    link(file, &scratch.join(&dir).join(&name))?;
                    base.join(dir).join(name)
                }
            };
            new.push(alias.to_string_lossy().into_owned());
        }
        out.args.push(new.join(",").into());
    }
    Ok(out)
}

impl Aliased {
    /// The scratch folder under a safe path: itself, or a link to it in the temporary folder.
    fn base(&mut self, scratch: &Path, scratch_s: &str) -> Result<PathBuf> {
        if is_safe(scratch_s) {
            return Ok(scratch.to_path_buf());
        }
        if let Some(l) = &self.outside {
            return Ok(l.clone());
        }
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let tmp = std::env::temp_dir();
        let l = tmp.join(format!(
            ".dre-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        if !is_safe(&l.to_string_lossy()) {
            return Err(Error::file(
                scratch,
                format!(
                    "SExtractor and PSFEx cannot be given this folder's name, nor a link to it in {} \
                     (set TMPDIR to a folder whose path has no spaces, commas or brackets)",
                    tmp.display()
                ),
            ));
        }
        let _ = std::fs::remove_file(&l);
        link(scratch, &l)?;
        self.outside = Some(l.clone());
        Ok(l)
    }
}

fn link(target: &Path, link: &Path) -> Result<()> {
    let target = std::path::absolute(target).at(target)?;
    std::os::unix::fs::symlink(&target, link).at(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_names_are_aliased_and_outputs_renamed_back() {
        let dir = tempfile::tempdir().unwrap();
        let d = std::path::absolute(dir.path()).unwrap();
        let image = d.join("tile[1] a.fits");
        std::fs::write(&image, "image").unwrap();
        let plain = d.join("plain.fits");
        std::fs::write(&plain, "plain").unwrap();
        let scratch = d.join(".t 1.tmp");
        std::fs::create_dir(&scratch).unwrap();
        let cat = scratch.join("tile[1] a_cat.fits");
        let args: Vec<OsString> = vec![
            image.clone().into(),
            "-c".into(),
            plain.clone().into(),
            "-CATALOG_NAME".into(),
            cat.clone().into(),
            "-CHECKIMAGE_NAME".into(),
            format!("{0}/a b.fits,{0}/c.fits", scratch.display()).into(),
            "-CHECKIMAGE_TYPE".into(),
            "-BACKGROUND,SEGMENTATION".into(),
            "-PSF_DIR".into(),
            scratch.clone().into(),
            "-NAME".into(),
            "a b".into(),
        ];
        let a = alias_args(&args, &scratch).unwrap();
        let s: Vec<String> = a.args.iter().map(|x| x.to_string_lossy().into()).collect();
        let untouched = ["a b", "-BACKGROUND,SEGMENTATION"];
        assert!(
            s.iter()
                .all(|x| untouched.contains(&x.as_str()) || x.split(',').all(is_safe)),
            "{s:?}"
        );
        assert_eq!(s[1..4], ["-c", plain.to_str().unwrap(), "-CATALOG_NAME"]);
        let link = PathBuf::from(&s[10]);
        assert_eq!(
            s[6],
            format!("{0}/out1_a_b.fits,{0}/c.fits", link.display())
        );
        assert_eq!(s[7..9], ["-CHECKIMAGE_TYPE", "-BACKGROUND,SEGMENTATION"]);
        assert_eq!(std::fs::read_to_string(&s[0]).unwrap(), "image");
        assert!(s[0].ends_with("/in0/tile_1__a.fits"), "{}", s[0]);
        assert_eq!(
            std::fs::canonicalize(&link).unwrap(),
            std::fs::canonicalize(&scratch).unwrap()
        );
        // The tool writes under the alias; the output gets its name back.
        std::fs::write(&s[4], "catalogue").unwrap();
        std::fs::write(s[6].split(',').next().unwrap(), "background").unwrap();
        a.restore().unwrap();
        assert_eq!(std::fs::read_to_string(&cat).unwrap(), "catalogue");
        let back = std::fs::read_to_string(scratch.join("a b.fits")).unwrap();
        assert_eq!(back, "background");
        drop(a);
        assert!(!link.exists() && link.symlink_metadata().is_err());
    }

    #[test]
    fn safe_command_lines_are_left_alone() {
        let args: Vec<OsString> = vec!["/a/b.fits".into(), "-X".into(), "1,2".into()];
        let a = alias_args(&args, Path::new("/tmp/s")).unwrap();
        assert_eq!(a.args, args);
    }
}
