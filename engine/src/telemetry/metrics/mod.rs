//! Metrics: Mixer's `metric` instances sent to `prometheus` handlers, compiled into a
//! [`plan::MetricPlan`] the metrics filter runs once per request, and what Envoy needs to keep
//! the series (label text, stat names, the series table, the bootstrap's `stats_config`).

mod define;
pub mod params;
pub mod plan;
pub mod prometheus;
pub mod record;
pub mod series_table;
pub mod stat_name;
pub mod stats_config;
pub mod stringify;
pub mod tcp_traffic;
pub mod tuple_index;

#[cfg(test)]
mod test_support;
