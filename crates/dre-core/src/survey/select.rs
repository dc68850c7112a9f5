//! Which tiles a run works on: every tile of its input folder, or only those named
//! (`--tiles NAME...`, `--tile-list FILE`), so that a script or an array task can split a
//! survey between processes. A tile's name is its image's file name without `.fits`
//! (`Tiles/NAME.fits`), the NAME of every file the stages write for it.

use crate::error::{Error, Result};
use std::collections::BTreeSet;
use std::path::Path;

/// The tiles a run works on: all of them, or a set of names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TileSelection {
    /// None: every tile.
    names: Option<BTreeSet<String>>,
}

impl TileSelection {
    /// Every tile (what the tools do without `--tiles`).
    pub fn all() -> Self {
        TileSelection { names: None }
    }

    /// Only the tiles named.
    pub fn only<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        TileSelection {
            names: Some(names.into_iter().map(Into::into).collect()),
        }
    }

    /// The tiles named in `file`, one name per line; blank lines and lines starting with
    /// `#` are left out, and spaces around a name are not part of it.
    pub fn from_list_file(file: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Error::file(file, format!("cannot read the tile list: {e}")))?;
        Ok(Self::only(parse_list(&text)))
    }

    /// From the tools' flags: `--tiles` names and `--tile-list FILE`; both together select
    /// the tiles of either. Neither: every tile.
    pub fn from_flags(tiles: &[String], list: Option<&Path>) -> Result<Self> {
        if tiles.is_empty() && list.is_none() {
            return Ok(Self::all());
        }
        let mut names: BTreeSet<String> = tiles.iter().cloned().collect();
        if let Some(f) = list {
            names.extend(Self::from_list_file(f)?.names.unwrap_or_default());
        }
        Ok(TileSelection { names: Some(names) })
    }

    /// Whether every tile is selected.
    pub fn is_all(&self) -> bool {
        self.names.is_none()
    }

    /// Whether tile `name` is selected.
    pub fn contains(&self, name: &str) -> bool {
        self.names.as_ref().is_none_or(|n| n.contains(name))
    }

    /// The names selected (None: every tile).
    pub fn names(&self) -> Option<&BTreeSet<String>> {
        self.names.as_ref()
    }

    /// Keeps the items of `list` whose tile is selected, in their order; `name` gives an
    /// item's tile name.
    pub fn filter<T>(&self, list: Vec<T>, name: impl Fn(&T) -> &str) -> Vec<T> {
        if self.is_all() {
            return list;
        }
        list.into_iter()
            .filter(|t| self.contains(name(t)))
            .collect()
    }

    /// The tiles named but not among `found` (sorted): a name mistyped, or a tile whose
    /// input is missing. None when every tile is selected.
    pub fn missing<'a>(&self, found: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let Some(names) = &self.names else {
            return Vec::new();
        };
        let found: BTreeSet<&str> = found.into_iter().collect();
        names
            .iter()
            .filter(|n| !found.contains(n.as_str()))
            .cloned()
            .collect()
    }
}

/// The names of a tile list: one a line, blank lines and `#` comments left out.
fn parse_list(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_selects_everything_and_names_only_themselves() {
        let all = TileSelection::all();
        assert!(all.is_all() && all.contains("x"));
        assert!(all.missing(["a"]).is_empty());
        let some = TileSelection::only(["b", "a"]);
        assert!(some.contains("a") && !some.contains("c"));
        assert_eq!(
            some.filter(vec!["c", "b", "a"], |s| s),
            vec!["b", "a"],
            "the list's order is kept"
        );
        assert_eq!(some.missing(["a", "z"]), vec!["b".to_string()]);
    }

    #[test]
    fn flags_and_list_files_add_up() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("tiles.txt");
        std::fs::write(&list, "# night 1\n  t01  \n\nt02\n").unwrap();
        let s = TileSelection::from_flags(&["t03".into(), "t0,4".into()], Some(&list)).unwrap();
        let names: Vec<&str> = s.names().unwrap().iter().map(String::as_str).collect();
        assert_eq!(
            names,
            ["t0,4", "t01", "t02", "t03"],
            "names are taken whole"
        );
        assert!(TileSelection::from_flags(&[], None).unwrap().is_all());
        // An empty list selects nothing (not everything).
        std::fs::write(&list, "# nothing\n").unwrap();
        let none = TileSelection::from_flags(&[], Some(&list)).unwrap();
        assert!(!none.is_all() && !none.contains("t01"));
        let e = TileSelection::from_list_file(&dir.path().join("nope")).unwrap_err();
        assert!(
            e.to_string().contains("nope: cannot read the tile list"),
            "{e}"
        );
    }
}
