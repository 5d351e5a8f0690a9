//! fpn-compiler's integration tests, one module per former `tests/*.rs` file, in one test binary
//! (each binary links every dependency: one link instead of fourteen). A new test file goes in
//! this directory with its `mod` line below. `codegen_golden.rs` stays its own binary (see there).

#[path = "../codegen_support/mod.rs"]
mod codegen_support;
mod common;
#[path = "../op_common/mod.rs"]
mod op_common;

mod bad_input;
mod builder;
mod codegen_interp;
mod codegen_run;
mod codegen_rust;
mod codegen_specs;
mod diag_codes;
mod family;
mod front_dsl;
mod front_yaml;
mod golden;
mod graph_blocks;
mod naming;
mod onnx;
mod op_fixtures;
mod op_props;
mod reach_ops;
mod render_limits;
mod sizes_exprs;
mod sizes_prop;
mod snapshots_gen;
mod suggestions;
mod torch_gen;
mod torch_shapes;
