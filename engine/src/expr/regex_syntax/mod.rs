//! Regular expressions as Mixer ran them: Go's `regexp` (RE2 syntax and semantics), on the
//! `regex` crate's parser and engine (`regex-syntax`, and `regex-automata`'s PikeVM alone).
//! `translate` reads a pattern as Go's parser does and writes it in the crate's syntax (see
//! there for what differs); the crate then matches as RE2 does, with simple case folding. Go's
//! Unicode classes are written out as ranges (`class.rs`: the crate's sets, taken from its
//! tables at build time), and Go's `\d \w \s \b` are ASCII and stay ASCII.
//!
//! Errors read as Go's: ``error parsing regexp: <what>: `<offending text>` ``. A pattern Go
//! accepts that the crate cannot run (its compiled form too large, nested too deeply) is
//! rejected with a message that says so.

mod class;
mod go_names;
mod names;
mod translate;

#[cfg(test)]
mod go_tests;

use std::cell::RefCell;

use regex_automata::nfa::thompson::{self, pikevm};
use regex_automata::util::syntax;

/// The compiled form's size limit, the `regex` crate's default (`RegexBuilder::size_limit`).
const SIZE_LIMIT: usize = 10 * (1 << 20);

/// A compiled Go regular expression. It only answers whether it matches (all CEXL asks), on
/// `regex-automata`'s PikeVM, the engine the `regex` crate runs when built without its
/// optimisations; it keeps the search's scratch space with it, so it is not `Sync`. Boxed: the
/// expression trees that hold one stay small.
#[derive(Clone, Debug)]
pub struct Regex(Box<Compiled>);

#[derive(Clone, Debug)]
struct Compiled {
    vm: pikevm::PikeVM,
    cache: RefCell<pikevm::Cache>,
}

impl Regex {
    /// Whether the expression matches anywhere in `haystack`.
    pub fn is_match(&self, haystack: &str) -> bool {
        let Compiled { vm, cache } = self.0.as_ref();
        match cache.try_borrow_mut() {
            Ok(mut cache) => vm.is_match(&mut cache, haystack),
            // Only a search that re-entered this one could hold the cache.
            Err(_) => vm.is_match(&mut vm.create_cache(), haystack),
        }
    }
}

/// Compiles a Go regular expression.
pub fn go_regex(pattern: &str) -> Result<Regex, String> {
    let translated = translate::translate(pattern).map_err(|e| e.to_string())?;
    // What `regex::Regex::new` does, less the engines it would add: the same syntax and NFA
    // settings (UTF-8, 250 levels of nesting, 10 MiB, captures compiled), so that the same
    // patterns are accepted and refused.
    let hir = syntax::parse_with(&translated, &syntax::Config::new().utf8(true))
        .map_err(|e| engine_error(pattern, EngineError::Syntax(e.to_string())))?;
    let nfa = thompson::Compiler::new()
        .configure(thompson::Config::new().utf8(true).nfa_size_limit(Some(SIZE_LIMIT)).shrink(false))
        .build_from_hir(&hir)
        .map_err(|e| engine_error(pattern, EngineError::from_nfa(&e)))?;
    let vm = pikevm::PikeVM::new_from_nfa(nfa).map_err(|e| engine_error(pattern, EngineError::from_nfa(&e)))?;
    let cache = RefCell::new(vm.create_cache());
    Ok(Regex(Box::new(Compiled { vm, cache })))
}

/// Why the engine refused a translated pattern (the `regex` crate's `Error`).
enum EngineError {
    CompiledTooBig(usize),
    Syntax(String),
}

impl EngineError {
    fn from_nfa(e: &thompson::BuildError) -> EngineError {
        match e.size_limit() {
            Some(limit) => EngineError::CompiledTooBig(limit),
            None => EngineError::Syntax(e.to_string()),
        }
    }
}

/// The engine's refusal of a translated pattern, in Go's words where Go has them.
fn engine_error(pattern: &str, e: EngineError) -> String {
    let what = match e {
        EngineError::CompiledTooBig(limit) => {
            format!("expression too large (compiled, it would exceed this engine's limit of {limit} bytes)")
        }
        EngineError::Syntax(msg) if msg.contains("nested parentheses") => {
            "expression nests too deeply (this engine allows 250 levels of parentheses and brackets)".to_string()
        }
        EngineError::Syntax(msg) => {
            let last = msg.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("invalid").trim();
            format!("regexp/syntax: internal error ({})", last.trim_start_matches("error: "))
        }
    };
    format!("error parsing regexp: {what}: `{pattern}`")
}
