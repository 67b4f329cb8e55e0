//! Where the built filters are: `dist/<filter>.wasm` under the workspace root (`make wasm`
//! puts them there).

use std::path::PathBuf;

use crate::HarnessError;

/// The three core filters (Mixer's policy and telemetry), by `filters/` directory name.
/// [`filter_dirs`] lists every filter crate, later ones included.
pub const FILTERS: &[&str] = &["deny", "metrics", "access-log"];

/// Every filter crate's directory name under `filters/` (what `make wasm` builds into
/// `dist/<name>.wasm`), sorted.
pub fn filter_dirs() -> Result<Vec<String>, HarnessError> {
    let dir = workspace_root().join("filters");
    let entries = std::fs::read_dir(&dir).map_err(|e| HarnessError::io(format!("listing {}", dir.display()), e))?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

/// The workspace root: the directory above this crate.
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// The `dist/` directory, or `WASMIXER_DIST` when set.
pub fn dist_dir() -> PathBuf {
    match std::env::var_os("WASMIXER_DIST") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("dist"),
    }
}

/// The absolute path of `dist/<filter>.wasm` (e.g. `wasm_path("deny")`), or an error telling the
/// user to run `make wasm` when it is missing.
pub fn wasm_path(filter: &str) -> Result<PathBuf, HarnessError> {
    built(dist_dir().join(format!("{filter}.wasm")), "make wasm")
}

/// `path` if it exists, else an error naming the make verb that builds it.
fn built(path: PathBuf, verb: &str) -> Result<PathBuf, HarnessError> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(HarnessError::MissingWasm(format!(
            "{} is missing: run `{verb}` first (or `make test-integration`, which builds it)",
            path.display()
        )))
    }
}

/// Where `make test-wasm-modules` puts the test-only Wasm modules (`integration/<module>/`, never
/// in `dist/`): `WASMIXER_TEST_WASM` when set, else `test-wasm/` in cargo's target directory
/// (`CARGO_TARGET_DIR` now, else as it was when this crate was built, else `target/`).
pub fn test_wasm_dir() -> PathBuf {
    let set = |v: Option<std::ffi::OsString>| v.filter(|d| !d.is_empty()).map(PathBuf::from);
    if let Some(dir) = set(std::env::var_os("WASMIXER_TEST_WASM")) {
        return dir;
    }
    let target = set(std::env::var_os("CARGO_TARGET_DIR"))
        .or_else(|| set(option_env!("CARGO_TARGET_DIR").map(Into::into)))
        .unwrap_or_else(|| PathBuf::from("target"));
    workspace_root().join(target).join("test-wasm")
}

/// The absolute path of a test-only module (e.g. `test_wasm_path("istio-state-emulator")`), or
/// an error telling the user to run `make test-wasm-modules` when it is missing.
pub fn test_wasm_path(module: &str) -> Result<PathBuf, HarnessError> {
    built(test_wasm_dir().join(format!("{module}.wasm")), "make test-wasm-modules")
}

/// A file under the workspace root, e.g. `workspace_file("integration/testdata/single-hop.yaml")`.
pub fn workspace_file(relative: &str) -> PathBuf {
    workspace_root().join(relative)
}

/// Reads a file under the workspace root as text.
pub fn read_workspace_file(relative: &str) -> Result<String, HarnessError> {
    let path = workspace_file(relative);
    std::fs::read_to_string(&path).map_err(|e| HarnessError::io(format!("reading {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_has_the_workspace_manifest() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("integration").is_dir());
    }

    #[test]
    fn core_filters_are_filter_crates() -> Result<(), HarnessError> {
        let dirs = filter_dirs()?;
        for f in FILTERS {
            assert!(dirs.iter().any(|d| d == f), "{f} not in {dirs:?}");
        }
        Ok(())
    }

    #[test]
    fn missing_filter_says_make_wasm() -> Result<(), String> {
        let Err(e) = wasm_path("no-such-filter") else {
            return Err("found a filter that does not exist".to_string());
        };
        assert!(e.to_string().contains("make wasm"), "{e}");
        Ok(())
    }
}
