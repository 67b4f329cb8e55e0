//! Logs: Mixer's `logentry` instances sent to `stdio` handlers, compiled into a
//! [`plan::LogPlan`] the access-log filter runs once per request, and how the lines are written
//! (zap's JSON and console encoders) and delivered (stdout, or batches to a collector).

pub mod batch;
pub mod handler;
pub mod instance;
pub mod options;
pub mod plan;
pub mod render;
pub mod stdio;
pub mod text;
pub mod zap_json;

#[cfg(test)]
mod test_support;
