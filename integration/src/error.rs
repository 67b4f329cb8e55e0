//! The one error type of the harness.

use std::fmt;

/// Everything that can go wrong while driving Envoy, a backend or an HTTP exchange.
///
/// `Debug` prints the same text as `Display`, so a test returning `Result<(), HarnessError>`
/// fails with a readable message (and Envoy's log, where one is attached) rather than an escaped
/// one-line dump.
pub enum HarnessError {
    /// No Envoy binary: neither `ENVOY_BIN` nor `envoy` on `PATH`.
    EnvoyNotFound(String),
    /// Envoy exited, or never became ready; carries its log.
    Envoy {
        /// What went wrong.
        message: String,
        /// Envoy's log up to that point.
        log: String,
    },
    /// A built filter is missing from `dist/`.
    MissingWasm(String),
    /// An I/O error, with what the harness was doing.
    Io {
        /// What the harness was doing.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A malformed HTTP message, or an HTTP exchange that did not go as required.
    Http(String),
    /// A bootstrap template with a placeholder left unfilled, or a bad value for one.
    Template(String),
    /// A condition a test waited for did not happen in time.
    Timeout(String),
    /// A test's own check failed (for `Result`-returning tests).
    Check(String),
}

impl HarnessError {
    /// Wraps an I/O error with what the harness was doing.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        HarnessError::Io { context: context.into(), source }
    }

    /// A failed check in a test that returns `Result`.
    pub fn check(message: impl Into<String>) -> Self {
        HarnessError::Check(message.into())
    }
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HarnessError::EnvoyNotFound(m) => write!(f, "envoy not found: {m}"),
            HarnessError::Envoy { message, log } => {
                write!(f, "{message}\n----- envoy log -----\n{log}\n----- end of envoy log -----")
            }
            HarnessError::MissingWasm(m) => write!(f, "{m}"),
            HarnessError::Io { context, source } => write!(f, "{context}: {source}"),
            HarnessError::Http(m) => write!(f, "http: {m}"),
            HarnessError::Template(m) => write!(f, "bootstrap template: {m}"),
            HarnessError::Timeout(m) => write!(f, "timed out: {m}"),
            HarnessError::Check(m) => write!(f, "check failed: {m}"),
        }
    }
}

impl fmt::Debug for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for HarnessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HarnessError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Fails a `Result`-returning test with a [`HarnessError::Check`] unless `cond` holds.
///
/// ```ignore
/// ensure!(resp.status == 200, "status {} body {}", resp.status, resp.body_text());
/// ```
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err($crate::HarnessError::check(format!($($arg)+)));
        }
    };
}
