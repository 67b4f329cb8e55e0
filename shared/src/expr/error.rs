//! Compile-time and evaluation errors. Messages are Mixer's exact texts; positions are extra.

use std::fmt;

/// An expression that failed to parse, type-check or compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError {
    /// Mixer's message, e.g. `unknown attribute source.nam`.
    pub message: String,
    /// Byte offset in the expression of the construct at fault, when known.
    pub pos: Option<usize>,
}

impl CompileError {
    pub(crate) fn at(pos: usize, message: impl Into<String>) -> CompileError {
        CompileError { message: message.into(), pos: Some(pos) }
    }

    /// 1-based column (in characters) of the error, for messages such as `position 14`.
    pub fn column(&self, src: &str) -> Option<usize> {
        self.pos.map(|p| src.get(..p).map_or(p, |s| s.chars().count()) + 1)
    }

    /// The expression on one line and a caret under the position, for terminals.
    pub fn caret(&self, src: &str) -> String {
        let col = self.column(src).unwrap_or(1);
        let line: String = src.chars().map(|c| if c == '\n' { ' ' } else { c }).collect();
        format!("  {line}\n  {}^", " ".repeat(col.saturating_sub(1)))
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CompileError {}

/// A runtime evaluation failure. The common case (an absent attribute) borrows the attribute's
/// name from the program, so failing a rule on every request costs no allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EvalError<'a> {
    /// `lookup failed: '<name>'`: an attribute is absent where a value is required.
    LookupFailed(&'a str),
    /// Any other runtime error, with Mixer's text.
    Other(String),
}

impl EvalError<'_> {
    /// Detaches the error from the program it borrows from.
    pub fn into_owned(self) -> EvalError<'static> {
        match self {
            EvalError::LookupFailed(name) => EvalError::Other(format!("lookup failed: '{name}'")),
            EvalError::Other(msg) => EvalError::Other(msg),
        }
    }
}

impl fmt::Display for EvalError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::LookupFailed(name) => write!(f, "lookup failed: '{name}'"),
            EvalError::Other(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for EvalError<'_> {}
