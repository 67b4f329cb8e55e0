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

    /// The expression on one line and a caret under the position, for terminals: a window of
    /// at most [`EXCERPT_CHARS`] characters around the position (see [`excerpt`]).
    pub fn caret(&self, src: &str) -> String {
        let (line, col) = excerpt(src, self.column(src).unwrap_or(1));
        format!("  {line}\n  {}^", " ".repeat(col.saturating_sub(1)))
    }
}

/// The most characters of an expression a message quotes. Messages quoted whole expressions,
/// so a 50,000-parenthesis rule made a 200 KB Envoy log line and a million-term one 62 MB of
/// `wasmixer validate` output; a window around the position at fault says as much.
pub const EXCERPT_CHARS: usize = 120;

/// At most [`EXCERPT_CHARS`] characters of `src` around character `col` (1-based), on one line
/// (newlines shown as spaces), with `…` where the expression was cut; and `col`'s column in
/// that text. An expression that fits is returned whole.
pub fn excerpt(src: &str, col: usize) -> (String, usize) {
    let total = src.chars().count();
    let index = col.saturating_sub(1).min(total);
    // The window starts half a window before the position, and ends no later than the text.
    let start =
        if total <= EXCERPT_CHARS { 0 } else { index.saturating_sub(EXCERPT_CHARS / 2).min(total - EXCERPT_CHARS) };
    let end = total.min(start + EXCERPT_CHARS);
    let mut text = String::new();
    if start > 0 {
        text.push('…');
    }
    text.extend(src.chars().skip(start).take(end - start).map(|c| if c == '\n' { ' ' } else { c }));
    if end < total {
        text.push('…');
    }
    (text, index - start + 1 + usize::from(start > 0))
}

/// `text` whole when it has at most [`EXCERPT_CHARS`] characters, else its beginning and `…`:
/// for texts a message quotes without a position (a sub-expression, a name).
pub fn bounded(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(EXCERPT_CHARS) {
        None => std::borrow::Cow::Borrowed(text),
        Some((cut, _)) => std::borrow::Cow::Owned(format!("{}…", text.get(..cut).unwrap_or_default())),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_expressions_are_quoted_whole() {
        assert_eq!(excerpt("a ==\nb", 4), ("a == b".to_string(), 4));
        assert_eq!(excerpt("", 1), (String::new(), 1));
        assert_eq!(bounded("abc"), "abc");
    }

    #[test]
    fn long_expressions_are_quoted_around_the_position() {
        let src = format!("{}x{}", "(".repeat(50_000), ")".repeat(50_000));
        let (text, col) = excerpt(&src, 50_001);
        assert_eq!(text.chars().count(), EXCERPT_CHARS + 2);
        assert!(text.starts_with("…(((") && text.ends_with(")))…"), "{text}");
        assert_eq!(text.chars().nth(col - 1), Some('x'));
        // At either end, one ellipsis.
        let (head, col) = excerpt(&src, 1);
        assert_eq!((head.chars().count(), col), (EXCERPT_CHARS + 1, 1));
        assert!(head.ends_with('…') && !head.starts_with('…'));
        let (tail, col) = excerpt(&src, 100_001);
        assert_eq!((tail.chars().count(), tail.chars().nth(col - 1)), (EXCERPT_CHARS + 1, Some(')')));
        assert!(tail.starts_with('…') && !tail.ends_with('…'));
        // Past the end (an error at the end of the text): the caret just after the last one.
        let (_, col) = excerpt(&src, 100_002);
        assert_eq!(col, EXCERPT_CHARS + 2);
        let long = "é".repeat(500);
        assert_eq!(bounded(&long).chars().count(), EXCERPT_CHARS + 1);
    }

    #[test]
    fn the_caret_points_into_the_window() {
        let src = format!("{} == 1", "a + ".repeat(1_000) + "b");
        let err = CompileError::at(src.len() - 1, "boom");
        let caret = err.caret(&src);
        let (line, marker) = caret.split_once('\n').unwrap_or_default();
        assert!(line.chars().count() < EXCERPT_CHARS + 4, "{line}");
        assert_eq!(line.chars().nth(marker.chars().count() - 1), Some('1'));
    }
}
