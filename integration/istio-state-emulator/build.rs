//! Builds the binary schema of `flat_node.fbs` (`flatc -b --schema`, Debian package
//! `flatbuffers-compiler`; `FLATC` names another binary) into `OUT_DIR/flat_node.bfbs`. Without
//! `flatc` the file is left empty and the emulator refuses the `flatnode` format when configured,
//! so that only the FlatBuffers case of the end-to-end test fails, saying why.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=flat_node.fbs");
    println!("cargo:rerun-if-env-changed=FLATC");
    let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        println!("cargo:warning=OUT_DIR is not set");
        return;
    };
    let flatc = std::env::var_os("FLATC").unwrap_or_else(|| "flatc".into());
    let built = Command::new(&flatc)
        .args(["-b", "--schema", "-o"])
        .arg(&out)
        .arg("flat_node.fbs")
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !built {
        println!("cargo:warning=flatc failed or is missing (install flatbuffers-compiler): the emulator's flatnode format is disabled");
        if let Err(e) = std::fs::write(out.join("flat_node.bfbs"), b"") {
            println!("cargo:warning=writing an empty flat_node.bfbs: {e}");
        }
    }
}
