//! Diagnostics that never flood: a log line per reason at most once per interval, with the
//! number of suppressed repeats reported on the next line.

use std::cell::Cell;

/// A rate limiter for one kind of log line.
#[derive(Debug, Default)]
pub struct LogLimiter {
    last_ns: Cell<Option<i64>>,
    suppressed: Cell<u64>,
}

/// Default interval between two lines of the same kind: 10 s.
pub const DEFAULT_INTERVAL_NS: i64 = 10_000_000_000;

impl LogLimiter {
    pub const fn new() -> LogLimiter {
        LogLimiter { last_ns: Cell::new(None), suppressed: Cell::new(0) }
    }

    /// Returns `Some(suppressed_since_last)` when a line may be logged now, `None` otherwise.
    pub fn admit(&self, now_ns: i64, interval_ns: i64) -> Option<u64> {
        match self.last_ns.get() {
            Some(last) if now_ns.saturating_sub(last) < interval_ns => {
                self.suppressed.set(self.suppressed.get().saturating_add(1));
                None
            }
            _ => {
                self.last_ns.set(Some(now_ns));
                Some(self.suppressed.replace(0))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_interval_with_suppressed_count() {
        let l = LogLimiter::new();
        assert_eq!(l.admit(0, 10), Some(0));
        assert_eq!(l.admit(5, 10), None);
        assert_eq!(l.admit(9, 10), None);
        assert_eq!(l.admit(10, 10), Some(2));
    }
}
