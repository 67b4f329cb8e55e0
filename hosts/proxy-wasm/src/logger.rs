//! The `log` crate's records written to Envoy's log through the ABI, for a filter with its own
//! entry points (the SDK installs the same for filters on its dispatcher).

use crate::abi::{self, LogLevel};

struct EnvoyLog;

static ENVOY_LOG: EnvoyLog = EnvoyLog;

impl log::Log for EnvoyLog {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Trace => LogLevel::Trace,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Info => LogLevel::Info,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Error => LogLevel::Error,
        };
        // A record whose arguments are a plain string is written without formatting.
        match record.args().as_str() {
            Some(text) => abi::log(level, text),
            None => abi::log(level, &record.args().to_string()),
        };
    }

    fn flush(&self) {}
}

/// Routes `log` records up to `max` to Envoy. Idempotent: a second call only changes the level.
pub fn install(max: log::LevelFilter) {
    // Fails only if a logger is already set, which is then this one.
    let _ = log::set_logger(&ENVOY_LOG);
    log::set_max_level(max);
}
