//! DRE (Discrete Radius Ellipticals): fits Sérsic models to galaxies by brute force over a
//! grid of PSF-convolved model images.
//!
//! The pipeline, and this API, in the order the data flows:
//!
//! 1. **Preprocessing** (`sex_dre`, `psfex_dre`, `make_cuts`): SExtractor catalogues and
//!    check images, PSFEx PSFs, then one cut file per tile ([`cut_tile`]).
//! 2. **Models**: a [`ModelCube`] on a [`Grid`], read from a file ([`read_cube`]) or
//!    rendered ([`render_cube`], [`default_cube`]).
//! 3. **Fit**: a [`Fitter`] backend holds the cube, convolves it with a tile's [`Psf`] and
//!    fits batches of [`Prepared`] objects, giving one chi cube per object; [`parameters`]
//!    reads the best model and the radius estimates off a chi cube.
//! 4. **Outputs**: chi files ([`ChiWriter`]), the Summary table ([`summary_table`]) and the
//!    mosaics ([`mosaic`]) and their PNG pictures ([`mosaic_png`]). [`run`] does steps 3
//!    and 4 over a folder of cut files.
//! 5. **Simulation**: tiles with known truth ([`simulate`]), the score of a fit against
//!    it ([`score`]) and its picture ([`score_plot`]).
//! 6. **Surveys**: every tile of a folder through the four stages, in tasks run on this
//!    machine or as a Slurm job array ([`plan_run`], [`run_local`], [`submit_slurm`],
//!    [`run_survey_task`], [`survey_status`]); any tool on named tiles only
//!    ([`TileSelection`]).
//!
//! The conventions every stage shares (stamp centre, angles, FITS positions, object names,
//! twin models) are in [`conventions`]; the working-directory layout is in [`layout`].
//! Every fallible call returns [`Result`], whose [`Error`] renders as one line naming the
//! file (and object) it is about.
//!
//! Defaults are the original Python DRE's unless the item says otherwise.

#![warn(missing_docs)]

pub mod conventions;
mod error;
mod fit;
#[doc(hidden)]
pub mod fuzzing;
mod io;
pub mod layout;
mod model;
mod output;
mod pipeline;
mod prep;
mod sim;
mod survey;

pub use error::{Error, Result};

// ---- Files ----------------------------------------------------------------------------
pub use io::chi::{read_chi, ChiWriter};
pub use io::compression::Compression;
pub use io::cube_file::{read_cube, read_grid, write_cube, write_models};
pub use io::cuts::{Cut, CutReader, CutWriter};
pub use io::fits::{init_cfitsio, Card};
pub use io::psf::{read_psf, Psf};
pub use io::table::{read_catalog, write_table, Column, ColumnData, Table};

// ---- Preprocessing --------------------------------------------------------------------
pub use prep::centroid::CentroidMode;
pub use prep::external::find_on_path;
pub use prep::make_cuts::{
    cut_tile, cuts_up_to_date, list_tile_images, CutOptions, CutReport, Filter, Skipped, TileInputs,
};
pub use prep::psfex::{list_catalogs, CatalogFile, PsfReport, Psfex, DEFAULT_PSFEX};
pub use prep::sextractor::config::{SexConfig, DEFAULT_PARAM, DEFAULT_SEX};
pub use prep::sextractor::gain::{GainKey, GainMode};
pub use prep::sextractor::pairing::{pair_images, ImagePair, Pairing};
pub use prep::sextractor::{SexOptions, SexReport, Sextractor};

// ---- Models ---------------------------------------------------------------------------
pub use model::cube::{Axis, Grid, ModelCube};
pub use model::default_cube::{default_cache_dir, default_cube, default_grid, load_default_cube};
pub use model::render::{
    index_axis, make_cube, render_at, render_cube, render_stamp, RadiusConvention, Stamp,
    StampParams,
};

// ---- Fit ------------------------------------------------------------------------------
pub use fit::backend::{load_fitter, open_fitter, CpuFitter, Device, Fitter, CUDA_NOT_BUILT};
#[cfg(feature = "cuda")]
pub use fit::gpu::GpuFitter;
pub use fit::kernel::Prepared;
pub use fit::params::{
    batch_parameters, fit_parameters, nan_argmin, parameters, Params, SYSTEMATIC_FLOOR,
};
pub use fit::refine::{
    refine, refine_window, Refined, DRE_FLAG_BITS, FLAG_FEW_PIXELS, FLAG_LOGR_EDGE, FLAG_N_EDGE,
    FLAG_Q_EDGE, FLAG_REFINE_FAILED, FLAG_SECOND_MINIMUM, FLAG_SEGMENT_AT_EDGE, MIN_PIXELS,
};
pub use fit::statistics::{cube_gradient, cube_hessian, gradient_norm, params_std};

// ---- Outputs --------------------------------------------------------------------------
pub use output::mosaic::{mosaic, write_mosaic};
pub use output::mosaic_png::{mosaic_png, mosaic_png_size, mosaic_title, write_mosaic_png};
pub use output::summary::{summary_table, FitRow};

// ---- A whole run ----------------------------------------------------------------------
pub use pipeline::run::{run, run_tiles, Observer, PsfSource, RunConfig, RunReport};
pub use pipeline::tile::{fit_tile, TilePaths, TileReport};

// ---- Runs that survive faults: locks, resumable runs, stopping on a signal ------------
pub use io::lock::{lock_output_dir, OutputLock, LOCK_FILE};
pub use pipeline::resume::record_file;
pub use pipeline::stop::{clean_up_for_exit, Cleanup};

// ---- Simulation and scoring -----------------------------------------------------------
pub use sim::plot::{score_plot, write_score_plot, SCORE_PLOT_SIZE};
pub use sim::score::{fitted_from_summary, read_truth, score, Score, Steps, SNR_EDGES};
pub use sim::simulate::{simulate, write_simulation, Galaxy, SimConfig, Simulation, Star};

// ---- Surveys: every tile through the four stages, locally or as a Slurm job array -----
pub use io::lock::share_output_locks;
pub use pipeline::run::tile_up_to_date;
pub use survey::config::{
    CubeSettings, DeviceName, DreOptions, ExecutorKind, MakeCutsOptions, PsfexDreOptions,
    RunSettings, SexDreOptions, SlurmSettings, SurveyConfig, CONFIG_FILE as SURVEY_CONFIG_FILE,
    TEMPLATE as SURVEY_TEMPLATE,
};
pub use survey::executor::{
    array_tasks, batch_script, ensure_cube, plan_run, run_local, run_progress, submit_slurm,
    wait_slurm, RunObserver, RunRequest, SurveyProgress, SLURM_NOT_FOUND,
};
pub use survey::resume::DoneCheck;
pub use survey::select::TileSelection;
pub use survey::status::{survey_status, RunSummary, SurveyStatus, TileStatus};
pub use survey::task::{
    run_task as run_survey_task, signal_name, stage_args, StagePrograms, TaskIds, TaskObserver,
    TaskReport,
};
pub use survey::tasks::{
    format_time, split_tasks, RunPlan, Stage, StageRecord, Survey, TileRecord, TileState,
    SURVEY_DIR,
};
