//! Mixer's report path, evaluated locally, in two groups that share nothing: [`metrics`] (the
//! prometheus adapter's plan, naming, values and buckets, the series table and Istio's
//! tag-in-stat-name encoding for Envoy) and [`logs`] (the stdio adapter's plan, zap's JSON and
//! console lines, the collector batches).

pub mod logs;
pub mod metrics;

#[cfg(test)]
mod test_support;
