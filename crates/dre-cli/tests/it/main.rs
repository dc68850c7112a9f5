//! Every integration test of the command-line tools, in one test binary (built once): one
//! module per group of tests, and the helpers they share.

mod common;
mod preprocess;

mod bad_science;
mod dre_errors;
mod dre_golden;
mod faults_io;
mod faults_runs;
mod gpu;
mod make_cube;
mod make_cuts_cli;
mod multi_extension;
mod parallel_tiles;
mod pictures;
mod pipeline;
mod preprocess_errors;
mod preprocess_golden;
mod preprocess_pairing;
mod refine_flags;
mod survey;
mod survey_slurm;
