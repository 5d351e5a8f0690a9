//! Back ends.
pub mod rust;
mod split;
