//! A whole `dre` run over a folder of cut files, the fit of one tile, the records that let
//! a run resume, and the clean-up of a run stopped by a signal.

pub mod resume;
pub mod run;
pub mod stop;
pub mod tile;
