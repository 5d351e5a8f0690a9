//! Back ends: Rust code, ONNX, PyTorch code, and pictures (SVG, DOT).
pub mod onnx;
pub mod picture;
pub mod rust;
mod split;
pub mod torch;
