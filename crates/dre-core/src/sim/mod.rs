//! Simulated tiles with known truth, and the scoring of a fit against that truth.

pub mod plot;
pub mod score;
pub mod simulate;
