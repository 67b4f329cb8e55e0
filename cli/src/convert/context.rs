//! What every part of the converter shares: the inputs and settings, the objects read from
//! them, and the conversion's state ([`Ctx`]), which locates each problem in the user's file.

use serde_json::Value as Json;

use super::report::{Diagnostic, Location, Report, Severity};
use crate::mixer_yaml::Document;

/// One input text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// How messages name it: the path as given, or `<stdin>`.
    pub name: String,
    pub text: String,
}

/// Which deployment artefacts to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    WasmPlugin,
    Envoy,
    Both,
}

impl Format {
    pub fn istio(self) -> bool {
        matches!(self, Format::WasmPlugin | Format::Both)
    }

    pub fn envoy(self) -> bool {
        matches!(self, Format::Envoy | Format::Both)
    }
}

/// Conversion settings.
#[derive(Clone, Debug)]
pub struct Options {
    pub format: Format,
    /// Namespace of resources that name none (`kubectl apply -n`).
    pub namespace: String,
    /// Mixer's config namespace, also Istio's root namespace (where mesh-wide resources go).
    pub config_namespace: String,
    /// Where the filters' Wasm modules are (`--wasm-url`): `{filter}` is replaced by the filter
    /// name. Envoy fragments default to [`DEFAULT_WASM_URL`]; WasmPlugins have no default (see
    /// [`WASM_URL_ADVICE`]).
    pub wasm_url: Option<String>,
    /// `wasmixer validate`: nothing is written, so nothing is said about module URLs.
    pub validate_only: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            format: Format::Both,
            namespace: "default".to_string(),
            config_namespace: "istio-system".to_string(),
            wasm_url: None,
            validate_only: false,
        }
    }
}

/// Where Envoy bootstrap fragments load the modules from unless `--wasm-url` says otherwise: a
/// path on the proxy's own file system, which a stock-Envoy deployment controls.
pub const DEFAULT_WASM_URL: &str = "file:///etc/wasmixer/{filter}.wasm";

/// How to deliver the modules to Istio's proxies, for the report. There is no default URL for
/// WasmPlugins: a `file://` path must exist inside every `istio-proxy` container, and a
/// mesh-wide `FAIL_CLOSE` plugin whose module cannot be loaded refuses that sidecar's traffic.
pub const WASM_URL_ADVICE: &str = "deliver the modules and name them with --wasm-url: push the images `make oci` builds (dist/oci/) to a registry the cluster can pull from and pass --wasm-url 'oci://REGISTRY/wasmixer/{filter}:VERSION', or mount the .wasm files into each proxy container (pod annotations sidecar.istio.io/userVolume and sidecar.istio.io/userVolumeMount) and pass --wasm-url 'file:///MOUNT/{filter}.wasm'";

/// Where an object came from: input, document (index into [`Ctx::docs`], and its number in the
/// input) and, for items of a `kind: List`, the path prefix (`items[2]`).
#[derive(Clone, Debug)]
pub struct SourceRef {
    pub input: usize,
    pub doc: usize,
    pub number: usize,
    pub base: String,
}

/// A Kubernetes-shaped object from the input.
#[derive(Clone, Debug)]
pub struct Object {
    pub src: SourceRef,
    pub api_version: Option<String>,
    /// The API group (`config.istio.io`), empty for the core group.
    pub group: String,
    pub kind: String,
    pub name: String,
    /// As written; see [`Ctx::namespace_of`].
    pub namespace: Option<String>,
    pub value: Json,
}

impl Object {
    pub fn spec(&self) -> &Json {
        self.value.get("spec").unwrap_or(&Json::Null)
    }
}

/// The state of one conversion: inputs, documents, options and what was found.
pub struct Ctx<'a> {
    pub inputs: &'a [Input],
    pub docs: Vec<(usize, Document)>,
    pub report: Report,
    pub opts: &'a Options,
}

impl Ctx<'_> {
    pub fn namespace_of(&self, obj: &Object) -> String {
        obj.namespace.clone().unwrap_or_else(|| self.opts.namespace.clone())
    }

    pub(super) fn full_path(src: &SourceRef, field: &str) -> String {
        match (src.base.is_empty(), field.is_empty()) {
            (true, _) => field.to_string(),
            (false, true) => src.base.clone(),
            (false, false) => format!("{}.{field}", src.base),
        }
    }

    fn document(&self, src: &SourceRef) -> Option<&Document> {
        self.docs.get(src.doc).map(|(_, d)| d)
    }

    fn input_name(&self, src: &SourceRef) -> Option<String> {
        self.inputs.get(src.input).map(|i| i.name.clone())
    }

    /// `file:line (document n)` of an object, for "also declared at" messages.
    pub fn describe(&self, obj: &Object) -> String {
        let pos = self.document(&obj.src).map(|d| d.locate(&obj.src.base)).unwrap_or_default();
        let doc = self.document(&obj.src).map_or(0, |d| d.number);
        format!("{}:{}:{} (document {doc})", self.input_name(&obj.src).unwrap_or_default(), pos.line, pos.col)
    }

    /// The text of the scalar at `field` of `obj`, as written.
    pub fn scalar_text(&self, obj: &Object, field: &str) -> Option<String> {
        self.document(&obj.src)?.span(&Self::full_path(&obj.src, field))?.text.clone()
    }

    fn location(&self, obj: &Object, resource: Option<&str>, field: Option<&str>) -> Location {
        let path = Self::full_path(&obj.src, field.unwrap_or(""));
        let doc = self.document(&obj.src);
        Location {
            file: self.input_name(&obj.src),
            pos: doc.map(|d| d.locate(&path)),
            document: doc.map(|d| d.number),
            resource: resource.map(str::to_string),
            field: field.map(str::to_string),
            position: None,
        }
    }

    /// Reports a problem with `obj` (and, optionally, one of its fields).
    pub fn at(
        &mut self,
        severity: Severity,
        obj: &Object,
        resource: Option<&str>,
        field: Option<&str>,
        message: impl Into<String>,
    ) {
        let location = self.location(obj, resource, field);
        self.report.push(Diagnostic::new(severity, location, message));
    }

    /// Reports a problem at character `position` of the expression in `field`.
    #[allow(clippy::too_many_arguments)]
    pub fn expr_at(
        &mut self,
        severity: Severity,
        obj: &Object,
        resource: &str,
        field: &str,
        position: usize,
        expression: &str,
        message: String,
    ) {
        let mut location = self.location(obj, Some(resource), Some(field));
        location.position = Some(position);
        let path = Self::full_path(&obj.src, field);
        if let (Some(doc), Some(input)) = (self.document(&obj.src), self.inputs.get(obj.src.input)) {
            location.pos = Some(doc.locate_in_scalar(&path, position, &input.text));
        }
        let mut d = Diagnostic::new(severity, location, message);
        d.expression = Some(expression.to_string());
        self.report.push(d);
    }

    /// Reports something that belongs to no single document.
    pub fn global(&mut self, severity: Severity, message: impl Into<String>) {
        self.report.push(Diagnostic::new(severity, Location::default(), message));
    }
}

const MIXER_GROUP: &str = "config.istio.io";

/// Which part of the converter an object goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    /// Mixer configuration (`config.istio.io`, or a Mixer kind without `apiVersion`).
    Mixer,
    /// The mTLS resources of Istio 1.4 (`Policy`, `MeshPolicy`, `DestinationRule`).
    Mtls,
    /// Anything else: reported (ignored or unsupported), not converted.
    Other,
}

impl Object {
    pub fn category(&self) -> Category {
        let mixer_kind = wasmixer_engine::config::resource::classify(&self.kind).is_some();
        match (self.group.as_str(), self.kind.as_str()) {
            (MIXER_GROUP, _) => Category::Mixer,
            ("", _) if self.api_version.is_none() && mixer_kind => Category::Mixer,
            ("authentication.istio.io", "Policy" | "MeshPolicy") | ("networking.istio.io", "DestinationRule") => {
                Category::Mtls
            }
            _ => Category::Other,
        }
    }
}
