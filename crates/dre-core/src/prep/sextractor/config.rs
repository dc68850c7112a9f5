//! The SExtractor configuration: a user's file (`-c`), `default.sex` of the working
//! directory (the original's default), or the one shipped with DRE; and the files it names
//! (PARAMETERS_NAME, FILTER_NAME, STARNNW_NAME) found where a user would expect them.

use crate::error::{AtPath, Error, Result};
use std::path::{Path, PathBuf};

/// SExtractor configuration shipped with DRE.
pub const DEFAULT_SEX: &str = include_str!("../../../data/default.sex");
/// Catalogue parameters shipped with DRE: what make_cuts, dre's Summary and PSFEx need.
pub const DEFAULT_PARAM: &str = include_str!("../../../data/default.param");

/// Where SExtractor's own data files (filters, default.nnw) are installed.
const SHARE_DIRS: [&str; 5] = [
    "/usr/share/source-extractor",
    "/usr/share/sextractor",
    "/usr/local/share/source-extractor",
    "/usr/local/share/sextractor",
    "/opt/homebrew/share/sextractor",
];
const DEFAULT_FILTER: &str = "gauss_3.0_5x5.conv";
const DEFAULT_NNW: &str = "default.nnw";

/// The configuration a run uses.
#[derive(Clone, Debug)]
pub struct SexConfig {
    /// None: the shipped configuration (written beside each run's outputs).
    pub file: Option<PathBuf>,
    entries: Vec<(String, String)>,
}

/// Files named by the configuration, resolved to paths SExtractor can open from anywhere.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResolvedFiles {
    /// None: use the shipped parameter list.
    pub parameters: Option<PathBuf>,
    pub filter: Option<PathBuf>,
    pub starnnw: Option<PathBuf>,
    /// What the user should know (a parameter file that was not found, ...).
    pub notes: Vec<String>,
}

impl SexConfig {
    /// `-c FILE` if given, else `default.sex` of the working directory if there is one,
    /// else the shipped configuration.
    pub fn choose(explicit: Option<&Path>) -> Result<SexConfig> {
        match explicit {
            Some(p) if !p.is_file() => Err(Error::file(p, "no such SExtractor configuration file")),
            Some(p) => Self::from_file(p),
            None if Path::new("default.sex").is_file() => Self::from_file(Path::new("default.sex")),
            None => Ok(SexConfig {
                file: None,
                entries: parse(DEFAULT_SEX),
            }),
        }
    }

    fn from_file(path: &Path) -> Result<SexConfig> {
        let text = std::fs::read_to_string(path).at(path)?;
        let path = std::path::absolute(path).at(path)?;
        Ok(SexConfig {
            file: Some(path),
            entries: parse(&text),
        })
    }

    /// A key's value as the file sets it (the last setting wins, as in SExtractor).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// Finds the configuration's files. A relative name is looked up in the working
    /// directory (where the original ran SExtractor), then beside the configuration file,
    /// and filters and networks also in SExtractor's installed data folder. Unset keys
    /// take SExtractor's defaults; the shipped configuration uses SExtractor's
    /// gauss_3.0_5x5.conv and default.nnw.
    pub fn resolve_files(&self) -> ResolvedFiles {
        let mut r = ResolvedFiles::default();
        if self.file.is_none() {
            r.filter = find_in_share(DEFAULT_FILTER);
            r.starnnw = find_in_share(DEFAULT_NNW);
            for (name, found) in [(DEFAULT_FILTER, &r.filter), (DEFAULT_NNW, &r.starnnw)] {
                if found.is_none() {
                    r.notes.push(format!(
                        "SExtractor's {name} is not in {}: give a configuration with -c",
                        SHARE_DIRS.join(", ")
                    ));
                }
            }
            return r;
        }
        let param = self.get("PARAMETERS_NAME").unwrap_or("default.param");
        r.parameters = self.find(param, false);
        if r.parameters.is_none() {
            r.notes.push(format!(
                "parameter file {param} not found: using the list shipped with DRE"
            ));
        }
        r.filter = self.find(self.get("FILTER_NAME").unwrap_or("default.conv"), true);
        r.starnnw = self.find(self.get("STARNNW_NAME").unwrap_or("default.nnw"), true);
        r
    }

    fn find(&self, name: &str, in_share: bool) -> Option<PathBuf> {
        let name = Path::new(name);
        if name.is_absolute() {
            return name.is_file().then(|| name.to_path_buf());
        }
        let beside = self
            .file
            .as_ref()
            .and_then(|f| f.parent())
            .map(|d| d.join(name));
        let found = [std::path::absolute(name).ok(), beside]
            .into_iter()
            .flatten()
            .find(|p| p.is_file());
        found.or_else(|| {
            in_share
                .then(|| {
                    name.file_name()
                        .and_then(|n| find_in_share(&n.to_string_lossy()))
                })
                .flatten()
        })
    }
}

fn find_in_share(name: &str) -> Option<PathBuf> {
    SHARE_DIRS
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// `KEY value  # comment` lines; blank and comment lines skipped.
fn parse(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((k, v)) => (k.to_string(), v.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys_values_and_comments() {
        let e = parse(
            "# head\nFILTER_NAME  gauss.conv  # the filter\n\nPHOT_AUTOPARAMS 2.5, 3.5\nEMPTY\n",
        );
        assert_eq!(
            e,
            [
                ("FILTER_NAME".into(), "gauss.conv".into()),
                ("PHOT_AUTOPARAMS".into(), "2.5, 3.5".into()),
                ("EMPTY".into(), String::new())
            ]
        );
    }

    #[test]
    fn files_beside_the_config_are_found_and_missing_params_fall_back() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("my.sex");
        std::fs::write(&cfg, "PARAMETERS_NAME my.param\nFILTER_NAME my.conv\n").unwrap();
        std::fs::write(d.path().join("my.conv"), "CONV NORM\n1\n").unwrap();
        let c = SexConfig::choose(Some(&cfg)).unwrap();
        let r = c.resolve_files();
        assert_eq!(r.filter, Some(d.path().join("my.conv")));
        assert_eq!(r.parameters, None);
        assert_eq!(
            r.notes,
            ["parameter file my.param not found: using the list shipped with DRE"]
        );
        std::fs::write(d.path().join("my.param"), "NUMBER\n").unwrap();
        assert_eq!(
            c.resolve_files().parameters,
            Some(d.path().join("my.param"))
        );
    }

    #[test]
    fn a_missing_config_is_named() {
        let e = SexConfig::choose(Some(Path::new("/no/such.sex"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/no/such.sex: no such SExtractor configuration file"
        );
    }

    #[test]
    fn the_shipped_param_list_has_what_dre_needs() {
        for p in [
            "NUMBER",
            "X_IMAGE",
            "Y_IMAGE",
            "CLASS_STAR",
            "VIGNET(35,35)",
            "FLUX_APER(1)",
        ] {
            assert!(DEFAULT_PARAM.lines().any(|l| l == p), "{p}");
        }
    }
}
