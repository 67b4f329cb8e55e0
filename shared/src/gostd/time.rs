//! Go `time.Time` as Mixer used it: RFC 3339 parsing, 6-digit UTC text, comparisons.

/// An instant plus the zone offset it was written with (Go keeps both; `<=` depends on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Timestamp {
    /// Seconds since the Unix epoch (UTC).
    pub secs: i64,
    /// Nanoseconds within the second, 0..1e9.
    pub nanos: u32,
    /// Zone offset east of UTC in seconds (0 for `Z`).
    pub offset_secs: i32,
}
