//! Back ends: Rust code, and pictures (SVG, DOT).
pub mod rust;
pub mod picture;
