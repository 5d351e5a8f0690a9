#!/usr/bin/env bash
# Issue 11 item 1: rustc's memory and time on the generated module of an N-conv spec.
#   tools/rustc_memory.sh [N...]        (default: 250 1000 5000)
# Writes a chain of N 1x1 convs (ReLU between), generates its module with the release `fpn`,
# and `cargo check`s it in a scratch crate depending on fpn-runtime by path; prints N, the
# peak RSS of rustc (GNU time's max resident set of the whole cargo run) and the wall time.
# The goal: linear, and a 5000-conv module checks in under 2 GB.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cargo build -q --release -p fpn-cli --manifest-path "$root/Cargo.toml"
fpn="$root/target/release/fpn"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src"
cat > "$work/Cargo.toml" <<TOML
[package]
name = "rustc_memory"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
fpn-runtime = { path = "$root/fpn-runtime" }
[workspace]
TOML
echo 'fn main() {}' > "$work/src/main.rs"
CARGO_TARGET_DIR="$work/target" cargo check -q --manifest-path "$work/Cargo.toml"  # dependencies once
printf '%8s %12s %10s\n' convs peak_rss_mb wall_s
for n in "${@:-250 1000 5000}"; do
  {
    echo "name: Chain"
    echo "inputs: {x: [4, 8, 8]}"
    echo "nodes:"
    echo "  c0: {from: x, conv: {out: 4, kernel: 1}}"
    for ((i = 1; i < n; i++)); do echo "  c$i: {conv: {out: 4, kernel: 1}}"; done
    echo "outputs: [c$((n - 1))]"
  } > "$work/chain.yaml"
  "$fpn" gen "$work/chain.yaml" -o "$work/src/chain.rs"
  printf '#[allow(dead_code)]\nmod chain;\nfn main() { let _ = chain::Chain::init(0); }\n' > "$work/src/main.rs"
  touch "$work/src/main.rs"
  /usr/bin/time -f '%M %e' -o "$work/time.txt" \
    env CARGO_TARGET_DIR="$work/target" cargo check -q --manifest-path "$work/Cargo.toml"
  read -r kb secs < "$work/time.txt"
  printf '%8d %12d %10s\n' "$n" "$((kb / 1024))" "$secs"
done
