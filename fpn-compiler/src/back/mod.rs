//! Back ends.
pub mod onnx;
pub mod rust;
pub mod torch;
