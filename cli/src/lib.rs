//! The library behind the `wasmixer` command, so that other programs run the same code.
//!
//! `wasmixer convert` as calls: [`convert()`] turns YAML texts into the files the command writes,
//! in memory ([`Outcome::file`]: `filters/<filter>.json`, `mesh-settings.json`, `report.json`,
//! ...), with every problem in [`Outcome::report`]; [`ResourceSet`] keeps resources applied over
//! time as `kubectl apply` / `kubectl delete` do and converts the live ones (the mesh harness's
//! control plane). [`mixer_yaml`] is the YAML reader, with the position of every node.
//!
//! ```
//! use wasmixer_cli::{convert, Input, Options};
//!
//! let yaml = "apiVersion: authentication.istio.io/v1alpha1\nkind: MeshPolicy\nmetadata:\n  name: default\nspec:\n  peers:\n  - mtls: {}\n";
//! let outcome = convert(&[Input { name: "mesh.yaml".into(), text: yaml.into() }], &Options::default());
//! assert!(!outcome.report.has_errors());
//! assert!(outcome.file("mesh-settings.json").is_some_and(|s| s.contains("STRICT")));
//! ```

pub mod convert;
pub mod expr_cmd;
pub mod mixer_yaml;
mod resource_set;
pub mod stats_cmd;
mod typed_json;
pub mod validate;

pub use convert::context::{Category, Format, Input, Options};
pub use convert::report::{Diagnostic, Report, Severity};
pub use convert::{convert, Outcome};
pub use resource_set::{Change, ResourceKey, ResourceSet};
