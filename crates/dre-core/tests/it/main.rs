//! The integration tests of the `dre` library, in one test binary (one link of HDF5 and
//! CFITSIO): golden comparisons against the original Python DRE and the renderer's
//! properties.

mod cutting_golden;
mod faults_io;
mod fuzz_corpus;
mod golden_io;
mod render_golden;
mod render_props;
