//! A whole `dre` run over a folder of cut files, and the fit of one tile.

pub mod run;
pub mod tile;
