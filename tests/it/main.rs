//! The facade's integration tests in one test binary (each binary links every dependency). A new
//! test file goes in this directory with its `mod` line below.

mod parity;
mod ui;
mod ui_pass;
