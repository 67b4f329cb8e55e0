//! Telemetry encoders shared by the metrics and access-log filters.
