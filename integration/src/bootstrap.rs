//! Bootstrap templates: YAML with `{{name}}` placeholders, and helpers that write the one-line
//! JSON (valid YAML flow style, so indentation never matters) for HTTP filter chains.
//!
//! ```ignore
//! let filters = http_filters(&[wasm_filter("deny", &wasm_path("deny")?, "{}")]);
//! let yaml = render(&read_workspace_file("integration/testdata/single-hop.yaml")?, &[
//!     ("listener_port", "0".into()),
//!     ("backend_port", backend.port().to_string()),
//!     ("http_filters", filters),
//! ])?;
//! ```

use std::path::Path;

use crate::HarnessError;

/// Replaces every `{{name}}` in `template` with its value. Fails if a placeholder is left
/// without a value, or a value is given for a placeholder the template lacks.
pub fn render(template: &str, vars: &[(&str, String)]) -> Result<String, HarnessError> {
    let mut out = template.to_string();
    for (name, value) in vars {
        let placeholder = format!("{{{{{name}}}}}");
        if !out.contains(&placeholder) {
            return Err(HarnessError::Template(format!("no {placeholder} in the template")));
        }
        out = out.replace(&placeholder, value);
    }
    if let Some(start) = out.find("{{") {
        let rest = &out[start..];
        let end = rest.find("}}").map_or(rest.len().min(40), |e| e + 2);
        return Err(HarnessError::Template(format!("placeholder {} has no value", &rest[..end])));
    }
    Ok(out)
}

/// `s` as a JSON string literal (quotes included).
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An `envoy.filters.http.wasm` entry (one-line JSON) running `wasm` in V8, with
/// `configuration` (usually JSON text) passed to the filter as a `StringValue`. The plugin
/// name and VM id are `wasmixer-<filter>`.
pub fn wasm_filter(filter: &str, wasm: &Path, configuration: &str) -> String {
    let name = format!("wasmixer-{filter}");
    wasm_entry("http", &name, &name, wasm, configuration)
}

/// An `envoy.filters.network.wasm` entry (one-line JSON): plugin name and root id `root_id`,
/// VM id `vm_id`, otherwise as [`wasm_filter`].
pub fn network_wasm_filter(root_id: &str, vm_id: &str, wasm: &Path, configuration: &str) -> String {
    wasm_entry("network", root_id, vm_id, wasm, configuration)
}

/// An `envoy.filters.<kind>.wasm` entry.
fn wasm_entry(kind: &str, root_id: &str, vm_id: &str, wasm: &Path, configuration: &str) -> String {
    format!(
        concat!(
            r#"{{"name":"envoy.filters.{kind}.wasm","typed_config":{{"#,
            r#""@type":"type.googleapis.com/envoy.extensions.filters.{kind}.wasm.v3.Wasm","#,
            r#""config":{{"name":{root},"root_id":{root},"#,
            r#""configuration":{{"@type":"type.googleapis.com/google.protobuf.StringValue","value":{cfg}}},"#,
            r#""vm_config":{{"vm_id":{vm},"runtime":"envoy.wasm.runtime.v8","#,
            r#""code":{{"local":{{"filename":{file}}}}}}}}}}}}}"#
        ),
        kind = kind,
        root = json_string(root_id),
        vm = json_string(vm_id),
        cfg = json_string(configuration),
        file = json_string(&wasm.to_string_lossy()),
    )
}

/// The router filter entry (one-line JSON); [`http_filters`] appends it.
pub const ROUTER_FILTER: &str = r#"{"name":"envoy.filters.http.router","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}"#;

/// A complete `http_filters` value (a one-line JSON array): `filters` in order, then the router.
pub fn http_filters(filters: &[String]) -> String {
    let mut all: Vec<&str> = filters.iter().map(String::as_str).collect();
    all.push(ROUTER_FILTER);
    format!("[{}]", all.join(","))
}

/// One Envoy (`integration/testdata/single-hop.yaml`, listener `ingress` on a free port) with
/// `filters` (each a `(filter, configuration)` pair, in chain order) in front of `backend`.
pub fn single_hop(
    name: &str,
    filters: &[(&str, &str)],
    backend: &crate::Backend,
) -> Result<crate::EnvoyProcess, HarnessError> {
    let entries = filters
        .iter()
        .map(|(filter, config)| Ok(wasm_filter(filter, &crate::wasm_path(filter)?, config)))
        .collect::<Result<Vec<_>, HarnessError>>()?;
    let yaml = render(
        &crate::dist::read_workspace_file("integration/testdata/single-hop.yaml")?,
        &[
            ("listener_port", "0".to_string()),
            ("backend_port", backend.port().to_string()),
            ("http_filters", http_filters(&entries)),
        ],
    )?;
    crate::EnvoyProcess::start(&yaml, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_fills_and_checks() -> Result<(), HarnessError> {
        let t = "a: {{x}}\nb: {{y}} {{x}}\n";
        assert_eq!(render(t, &[("x", "1".into()), ("y", "2".into())])?, "a: 1\nb: 2 1\n");
        assert!(render(t, &[("x", "1".into())]).is_err());
        assert!(render(t, &[("x", "1".into()), ("y", "2".into()), ("z", "3".into())]).is_err());
        Ok(())
    }

    #[test]
    fn json_escapes() {
        assert_eq!(json_string("a\"b\\c\nd\u{1}"), r#""a\"b\\c\nd\u0001""#);
    }

    #[test]
    fn filter_json_is_balanced() {
        let f = http_filters(&[wasm_filter("deny", Path::new("/x/deny.wasm"), r#"{"k":"v"}"#)]);
        let opens = f.matches('{').count() + f.matches('[').count();
        let closes = f.matches('}').count() + f.matches(']').count();
        assert_eq!(opens, closes, "{f}");
        assert!(f.contains(r#""filename":"/x/deny.wasm""#), "{f}");
        assert!(f.contains(r#""value":"{\"k\":\"v\"}""#), "{f}");
        assert!(f.ends_with(&format!("{ROUTER_FILTER}]")), "{f}");
    }
}
