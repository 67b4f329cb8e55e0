//! Filter configuration: Mixer's resources (handler / instance / rule), resolved with Mixer's
//! naming and reference rules, and errors that say where a problem is.

pub mod error;
pub mod expressions;
pub mod filter_config;
pub mod json_text;
pub mod registry;
pub mod resource;
pub mod scope;
pub mod snapshot;

pub use error::{ConfigError, ConfigErrors};
pub use filter_config::{DenyOptions, FilterConfig};
pub use json_text::json_text;
pub use resource::{Resource, DEFAULT_CONFIG_NAMESPACE};
pub use snapshot::{Action, Handler, Instance, Rule, Snapshot};
