//! Reading what Envoy's file access logger wrote (the filters' JSON lines, printed through
//! filter state by `sidecar::filter_state_access_log`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::HarnessError;

/// The first line of `path` as a JSON object, once it appears (Envoy flushes access logs on a
/// timer: start it with `--file-flush-interval-msec`).
pub fn first_json_line(path: &Path, timeout: Duration) -> Result<BTreeMap<String, Value>, HarnessError> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some(line) = std::fs::read_to_string(path).ok().and_then(|t| t.lines().next().map(str::to_string)) {
            return serde_json::from_str(&line).map_err(|e| HarnessError::check(format!("not JSON ({e}): {line}")));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(HarnessError::check(format!("no access-log line in {} within {timeout:?}", path.display())))
}
