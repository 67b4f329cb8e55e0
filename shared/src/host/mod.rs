//! The filters' side of the proxy: raw ABI calls that cannot trap, the [`AttributeSource`] of the attribute
//! layer over them, and metrics with tags encoded in their names.
//!
//! [`AttributeSource`]: crate::attr::source::AttributeSource

pub mod abi;
pub mod context_registry;
pub mod entry_points;
pub mod identity;
pub mod logger;
pub mod panic_hook;
pub mod plugin_configuration;
pub mod property_batch;
pub mod proxy_host;
pub mod request_carry;
pub mod tagged_metrics;
