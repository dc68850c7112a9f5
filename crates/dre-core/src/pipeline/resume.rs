//! Resumable runs: beside each tile's outputs a small record says what they were made
//! from: the tool and its version, the options that change the outputs, every input file
//! (size and modification time) and every output file (the same). It is written
//! atomically after the outputs, so a record exists only for complete outputs; with
//! `--resume` a tile whose record matches the inputs and options of this run, and whose
//! outputs are still those recorded, is skipped.
//!
//! The record is a text file, one fact per line (`option`, `input`, `output`); file names
//! are stored with `%`, control characters and DEL escaped as `%XX`.

use crate::error::Result;
use crate::io::atomic::write_file;
use std::ffi::OsString;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// The record of tile `name` made by `tool`, in folder `dir`: `dir/.NAME.TOOL.record`.
pub fn record_file(dir: &Path, name: &str, tool: &str) -> PathBuf {
    dir.join(format!(".{name}.{tool}.record"))
}

/// What a tile's outputs are made from, to compare with (or write as) its record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provenance {
    lines: Vec<Vec<u8>>,
    /// False when something the outputs depend on could not be identified: never matches.
    known: bool,
}

impl Provenance {
    /// The provenance of outputs made by `tool` of this version of DRE.
    pub fn new(tool: &str) -> Self {
        let head = format!("dre-record 1 {tool} {}", env!("CARGO_PKG_VERSION"));
        Provenance {
            lines: vec![head.into_bytes()],
            known: true,
        }
    }

    /// An option that changes the outputs (or names them).
    pub fn option(&mut self, name: &str, value: impl Display) -> &mut Self {
        let line = format!("option {name}={}", value.to_string().escape_debug());
        self.lines.push(line.into_bytes());
        self
    }

    /// An input file, by its size and modification time (a missing file is recorded as
    /// missing: its appearance later changes the provenance).
    pub fn input(&mut self, path: &Path) -> &mut Self {
        let line = match stamp(path) {
            Some((size, mtime)) => format!("input {size} {mtime} "),
            None => "input missing ".to_string(),
        };
        let mut line = line.into_bytes();
        line.extend(escape(path));
        self.lines.push(line);
        self
    }

    /// Something the outputs depend on that cannot be identified (a cube given in memory):
    /// the provenance then never matches a record.
    pub fn unknown(&mut self) -> &mut Self {
        self.known = false;
        self
    }

    /// An external program's command line: the program (as an input file), each argument
    /// (paths under `scratch`, this run's own scratch folder, as `<scratch>`), and every
    /// existing file an argument names (comma-separated lists too, relative to the working
    /// directory) as an input.
    pub fn command(&mut self, program: &Path, args: &[OsString], scratch: &Path) -> &mut Self {
        self.input(program);
        let scratch = scratch.to_string_lossy().into_owned();
        for a in args {
            let a = a.to_string_lossy();
            let normal = if scratch.is_empty() {
                a.to_string()
            } else {
                a.replace(&scratch, "<scratch>")
            };
            self.option("arg", &normal);
            for part in normal.split(',') {
                let p = Path::new(part);
                if !part.is_empty() && !part.contains("<scratch>") && p.is_file() {
                    self.input(p);
                }
            }
        }
        self
    }

    /// Whether `record` says the outputs were made from exactly this and are still there,
    /// unchanged since.
    pub fn matches(&self, record: &Path) -> bool {
        if !self.known {
            return false;
        }
        let Ok(text) = std::fs::read(record) else {
            return false;
        };
        let mut lines = text.split(|&b| b == b'\n').filter(|l| !l.is_empty());
        for want in &self.lines {
            if lines.next() != Some(want.as_slice()) {
                return false;
            }
        }
        let mut outputs = 0;
        for line in lines {
            let Some(rest) = line.strip_prefix(b"output ") else {
                return false;
            };
            let mut f = rest.splitn(3, |&b| b == b' ');
            let (Some(size), Some(mtime), Some(path)) = (f.next(), f.next(), f.next()) else {
                return false;
            };
            let Some(path) = unescape(path) else {
                return false;
            };
            let now = stamp(&path).map(|(s, m)| (s.to_string(), m.to_string()));
            if now.as_ref().map(|(s, m)| (s.as_bytes(), m.as_bytes())) != Some((size, mtime)) {
                return false;
            }
            outputs += 1;
        }
        outputs > 0
    }

    /// Writes `record` (atomically) for the finished `outputs`. Call it after every output
    /// is in place.
    pub fn write(&self, record: &Path, outputs: &[PathBuf]) -> Result<()> {
        let mut text = Vec::new();
        for l in &self.lines {
            text.extend_from_slice(l);
            text.push(b'\n');
        }
        for out in outputs {
            let (size, mtime) = stamp(out)
                .ok_or_else(|| crate::Error::file(out, "output missing after it was written"))?;
            text.extend(format!("output {size} {mtime} ").into_bytes());
            text.extend(escape(out));
            text.push(b'\n');
        }
        write_file(record, &text)
    }
}

/// Removes `record`: the tile's outputs are about to be replaced.
pub fn forget_record(record: &Path) -> Result<()> {
    match std::fs::remove_file(record) {
        Err(e)
            if !matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Err(crate::Error::file(record, e))
        }
        _ => Ok(()),
    }
}

/// Size and modification time (nanoseconds since 1970) of a file.
fn stamp(path: &Path) -> Option<(u64, u128)> {
    let m = std::fs::metadata(path).ok()?;
    if !m.is_file() {
        return None;
    }
    let mtime = m
        .modified()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_nanos();
    Some((m.len(), mtime))
}

fn path_bytes(path: &Path) -> Vec<u8> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    }
    #[cfg(not(unix))]
    {
        path.to_string_lossy().as_bytes().to_vec()
    }
}

fn escape(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for b in path_bytes(path) {
        if b == b'%' || b < 0x20 || b == 0x7f {
            out.extend(format!("%{b:02X}").into_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

fn unescape(text: &[u8]) -> Option<PathBuf> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'%' {
            let hex = std::str::from_utf8(text.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        Some(PathBuf::from(OsString::from_vec(out)))
    }
    #[cfg(not(unix))]
    {
        Some(PathBuf::from(String::from_utf8(out).ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn a_record_matches_the_same_inputs_and_unchanged_outputs_only() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (input, out) = (d.join("in 100%\n.fits"), d.join("out.h5"));
        touch(&input, "data");
        touch(&out, "result");
        let record = record_file(d, "t", "make_cuts");
        let prov = |margin: f64| {
            let mut p = Provenance::new("make_cuts");
            p.option("margin", margin)
                .input(&input)
                .input(&d.join("none"));
            p
        };
        assert!(!prov(80.0).matches(&record), "no record yet");
        prov(80.0)
            .write(&record, std::slice::from_ref(&out))
            .unwrap();
        assert!(prov(80.0).matches(&record));
        assert!(!prov(70.0).matches(&record), "another option");
        // Another tool's record never matches.
        let mut other = Provenance::new("dre");
        other
            .option("margin", 80.0)
            .input(&input)
            .input(&d.join("none"));
        assert!(!other.matches(&record));
        // An input that appears, or changes.
        touch(&d.join("none"), "");
        assert!(!prov(80.0).matches(&record));
        std::fs::remove_file(d.join("none")).unwrap();
        assert!(prov(80.0).matches(&record));
        touch(&input, "longer data");
        assert!(!prov(80.0).matches(&record));
        prov(80.0)
            .write(&record, std::slice::from_ref(&out))
            .unwrap();
        assert!(prov(80.0).matches(&record));
        // An output replaced or removed since.
        touch(&out, "other!");
        assert!(!prov(80.0).matches(&record));
        std::fs::remove_file(&out).unwrap();
        assert!(!prov(80.0).matches(&record));
        forget_record(&record).unwrap();
        forget_record(&record).unwrap();
        assert!(!record.exists());
    }

    #[test]
    fn unknown_inputs_never_match_and_names_survive_escaping() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("o");
        touch(&out, "x");
        let record = dir.path().join("r");
        let mut p = Provenance::new("dre");
        p.unknown();
        p.write(&record, std::slice::from_ref(&out)).unwrap();
        assert!(!p.matches(&record));
        for name in ["a b", "a%41", "tab\there", "new\nline", "t[1](2).fits"] {
            let path = PathBuf::from(name);
            assert_eq!(unescape(&escape(&path)), Some(path));
        }
    }

    #[test]
    fn command_lines_name_their_inputs_and_hide_the_scratch_folder() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (img, conf) = (d.join("img.fits"), d.join("c.sex"));
        touch(&img, "img");
        touch(&conf, "conf");
        let args = |scratch: &Path| -> Vec<OsString> {
            vec![
                img.clone().into(),
                "-c".into(),
                conf.clone().into(),
                "-CATALOG_NAME".into(),
                scratch.join("a_cat.fits").into(),
                "-WEIGHT_IMAGE".into(),
                format!("{},{}", img.display(), conf.display()).into(),
            ]
        };
        let (s1, s2) = (d.join(".a.1.tmp"), d.join(".a.2.tmp"));
        let mut p1 = Provenance::new("sex_dre");
        p1.command(&img, &args(&s1), &s1);
        let mut p2 = Provenance::new("sex_dre");
        p2.command(&img, &args(&s2), &s2);
        assert_eq!(p1, p2);
        let text: Vec<String> = p1
            .lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        assert!(text.iter().any(|l| l == "option arg=<scratch>/a_cat.fits"));
        // The program, the image and the configuration, then both again from the list.
        assert_eq!(text.iter().filter(|l| l.starts_with("input ")).count(), 5);
    }
}
