//! Back ends: Rust code, and pictures (SVG, DOT).
pub mod picture;
pub mod rust;
mod split;
