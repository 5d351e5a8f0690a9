//! fpn-runtime's integration tests, one module per former `tests/*.rs` file, in one test binary
//! (each binary links every dependency: one link instead of five). A new test file goes in this
//! directory with its `mod` line below.

mod act;
mod fixtures;
mod props;
mod weights;
mod winograd_accuracy;
