//! A survey on a cluster: every tile of a folder through `sex_dre`, `psfex_dre`,
//! `make_cuts` and `dre`, split into tasks of a few tiles that run on this machine or as
//! one Slurm job array, with a state record per tile and stage, and resumable.
//!
//! - [`config`]: `survey.toml`, every option of the four stages and of the executor;
//! - [`select`]: which tiles a tool works on (`--tiles`, `--tile-list`);
//! - [`tasks`]: the survey's folder, runs, plans and state records;
//! - [`task`]: one task, running the four programs on its tiles;
//! - [`executor`]: planning a run, running it locally or submitting it to Slurm;
//! - [`resume`]: which tiles are done, as the tools' own `--resume` decides;
//! - [`status`]: where the survey stands.

pub mod config;
pub mod executor;
pub mod resume;
pub mod select;
pub mod status;
pub mod task;
pub mod tasks;
