//! Configuration errors that name the resource, the field and the position in the expression.

use std::fmt;

use crate::expr::{excerpt, CompileError, EXCERPT_CHARS};

/// A configuration problem, found at configure time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The resource, Mixer-style: `rule denyreviewsv3.default`, `handler doublehandler.istio-system`.
    pub resource: String,
    /// The field within the resource: `match`, `params.dimensions.source`, `actions[0].handler`.
    pub field: String,
    /// 1-based character position in the field's expression, for expression errors.
    pub position: Option<usize>,
    pub message: String,
}

impl ConfigError {
    pub fn new(resource: impl Into<String>, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError { resource: resource.into(), field: field.into(), position: None, message: message.into() }
    }

    /// An expression that failed to compile, located in `source` at the compiler's position.
    /// The message quotes at most [`crate::expr::EXCERPT_CHARS`] characters of the expression
    /// around the position (see [`expression_suffix`]).
    pub fn expression(resource: &str, field: &str, source: &str, err: &CompileError) -> ConfigError {
        let position = err.column(source);
        ConfigError {
            resource: resource.to_string(),
            field: field.to_string(),
            position,
            message: format!("{}{}", bounded_message(&err.message), expression_suffix(source, position)),
        }
    }
}

/// A compiler's message, cut after four excerpts' worth of characters: the compilers' own texts
/// are shorter, but some quote a name or a sub-expression of the user's.
fn bounded_message(message: &str) -> &str {
    match message.char_indices().nth(4 * EXCERPT_CHARS) {
        Some((cut, _)) => message.get(..cut).unwrap_or(message),
        None => message,
    }
}

/// The end of an expression error's message: ` (expression: …)`, quoting the expression or,
/// when it is long, a window around `position` with `…` where it was cut.
pub fn expression_suffix(source: &str, position: Option<usize>) -> String {
    format!(" (expression: {})", excerpt(source, position.unwrap_or(1)).0)
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: field {}", self.resource, self.field)?;
        if let Some(p) = self.position {
            write!(f, ": position {p}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Several configuration problems; a configuration is accepted only when there are none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
