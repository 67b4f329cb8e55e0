//! Mixer's check path: denier and listchecker handlers, rule evaluation, status combination,
//! the proxy's reply format and header operations.

pub mod deny;
pub mod header_ops;
pub mod listchecker;
pub mod peer_identity;
pub mod status;

pub use deny::{CheckObserver, CheckResult, DenyPlan, RuleOutcome};
pub use status::Status;
