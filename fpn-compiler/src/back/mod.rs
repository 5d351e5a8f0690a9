//! Back ends.
pub mod onnx;
pub mod rust;
