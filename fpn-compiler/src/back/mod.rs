//! Back ends.
pub mod rust;
