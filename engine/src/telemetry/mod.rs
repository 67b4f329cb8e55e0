//! Telemetry encoders shared by the metrics and access-log filters: Mixer's label text
//! (`adapter.Stringify`), zap's JSON as the stdio adapter wrote it, the prometheus adapter's
//! naming, values and buckets, and Istio's tag-in-stat-name encoding for Envoy.

pub mod log_batch;
pub mod log_options;
pub mod log_plan;
pub mod log_text;
pub mod metric_params;
pub mod metric_plan;
pub mod prometheus;
pub mod series_table;
pub mod stat_name;
pub mod stdio;
pub mod stringify;
pub mod tcp_traffic;
pub mod tuple_index;
pub mod zap_json;
