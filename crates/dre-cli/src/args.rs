//! The flags several tools share (`-q/--quiet`, `--cpu N`, `--resume`, `--tiles`) and the
//! enumerated values of the tools' flags, as clap `ValueEnum`s mapped onto the library's
//! types (the library knows nothing of clap).

use clap::{Args, ValueEnum};

/// The options of the four pipeline tools (`sex_dre`, `psfex_dre`, `make_cuts`, `dre`):
/// `--cpu N`, `--resume`, `--tiles`/`--tile-list` and `-q`.
#[derive(Args, Clone, Debug, Default)]
pub struct PipelineOptions {
    #[command(flatten)]
    pub threads: Threads,

    #[command(flatten)]
    pub resume: Resume,

    #[command(flatten)]
    pub tiles: Tiles,

    #[command(flatten)]
    pub quiet: Quiet,
}

/// `-q/--quiet`, the same in every tool that reports progress.
#[derive(Args, Clone, Copy, Debug, Default)]
pub struct Quiet {
    /// Print nothing but errors and warnings
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// `--cpu N`, in every tool with threaded work.
#[derive(Args, Clone, Copy, Debug, Default)]
pub struct Threads {
    /// Number of threads (default: every core)
    #[arg(long, value_name = "N", value_parser = thread_count)]
    pub cpu: Option<usize>,
}

fn thread_count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// `--resume`, in the four pipeline tools.
#[derive(Args, Clone, Copy, Debug, Default)]
pub struct Resume {
    /// Skip the tiles whose outputs are complete and were made from the same inputs and
    /// options by this version (a hidden record beside the outputs says so); without it
    /// every tile is done again
    #[arg(long)]
    pub resume: bool,
}

/// `--tiles NAME...` and `--tile-list FILE`, in the four pipeline tools: work on those
/// tiles only (NAME: the image `Tiles/NAME.fits`), so that a script or an array task can
/// split a survey.
#[derive(Args, Clone, Debug, Default)]
pub struct Tiles {
    /// Work on these tiles only (NAME of Tiles/NAME.fits); takes every word after it, so
    /// put it last. A name with no input is an error
    #[arg(long, value_name = "NAME", num_args = 1..)]
    pub tiles: Vec<String>,

    /// Work on the tiles named in FILE only, one name per line (blank lines and lines
    /// starting with # left out); with --tiles, the tiles of either
    #[arg(long, value_name = "FILE")]
    pub tile_list: Option<std::path::PathBuf>,
}

impl Tiles {
    /// The tiles selected; a selection makes the output folders' locks shared, so that
    /// runs on other tiles may write beside this one.
    pub fn selection(&self) -> dre::Result<dre::TileSelection> {
        let s = dre::TileSelection::from_flags(&self.tiles, self.tile_list.as_deref())?;
        if !s.is_all() {
            dre::share_output_locks();
        }
        Ok(s)
    }
}

/// `--compression LEVEL`: of the cut files (make_cuts) and of the chi files (dre).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    None,
    Low,
    Medium,
    High,
}

impl From<CompressionArg> for dre::Compression {
    fn from(c: CompressionArg) -> Self {
        match c {
            CompressionArg::None => dre::Compression::None,
            CompressionArg::Low => dre::Compression::Low,
            CompressionArg::Medium => dre::Compression::Medium,
            CompressionArg::High => dre::Compression::High,
        }
    }
}

/// `make_cuts --centroids-mode MODE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CentroidModeArg {
    Com,
    #[value(name = "1dg")]
    Gauss1d,
    #[value(name = "2dg")]
    Gauss2d,
}

impl From<CentroidModeArg> for dre::CentroidMode {
    fn from(m: CentroidModeArg) -> Self {
        match m {
            CentroidModeArg::Com => dre::CentroidMode::Com,
            CentroidModeArg::Gauss1d => dre::CentroidMode::Gauss1d,
            CentroidModeArg::Gauss2d => dre::CentroidMode::Gauss2d,
        }
    }
}

/// `make_cube --radius major|circular`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RadiusArg {
    Major,
    Circular,
}

impl From<RadiusArg> for dre::RadiusConvention {
    fn from(r: RadiusArg) -> Self {
        match r {
            RadiusArg::Major => dre::RadiusConvention::Major,
            RadiusArg::Circular => dre::RadiusConvention::Circular,
        }
    }
}

/// `dre --device cpu|cuda` (cuda: device 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    Cpu,
    Cuda,
}

impl From<DeviceArg> for dre::Device {
    fn from(d: DeviceArg) -> Self {
        match d {
            DeviceArg::Cpu => dre::Device::Cpu,
            DeviceArg::Cuda => dre::Device::Cuda(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// Every value the CLI accepts is one the library parses to the same thing.
    #[test]
    fn value_enums_agree_with_the_library_names() {
        for c in CompressionArg::value_variants() {
            let name = c.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(dre::Compression::from_str(&name), Ok((*c).into()));
        }
        for m in CentroidModeArg::value_variants() {
            let name = m.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(dre::CentroidMode::from_str(&name), Ok((*m).into()));
        }
    }

    #[test]
    fn zero_threads_is_refused() {
        assert!(thread_count("0").is_err());
        assert!(thread_count("x").is_err());
        assert_eq!(thread_count("3"), Ok(3));
    }
}
