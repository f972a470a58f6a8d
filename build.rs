//! Builds the `delay` timing's shared library (`src/replay/delay_shim.c`),
//! which replay writes into each run's directory and loads with
//! `LD_PRELOAD`. The C compiler is the one the `cc` crate finds (`CC`, else
//! `cc`), which a Rust toolchain on Linux needs to link anyway.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = "src/replay/delay_shim.c";
    println!("cargo:rerun-if-changed={source}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("bugpack-delay.so");
    let compiler = cc::Build::new().opt_level(2).get_compiler();
    let mut cmd: Command = compiler.to_command();
    cmd.args(["-shared", "-fPIC", "-Wall", "-Wextra", "-o"])
        .arg(&out)
        .arg(source)
        .arg("-ldl");
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler for {source}: {e}"));
    assert!(status.success(), "the C compiler failed on {source}");
}
