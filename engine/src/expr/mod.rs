//! CEXL, Mixer's attribute expression language (spec: `mixer-expression-language.md`).
//!
//! Stages, one module each: [`lexer`] -> [`syntax`] (Go expression syntax) -> [`ast`] (Mixer's
//! AST) -> [`checker`] + [`compiler`] (types against a [`Manifest`], evaluation tree) -> [`eval`]
//! against an [`AttributeBag`]. [`Program`] is the front door.

pub mod ast;
pub mod bag;
pub mod checker;
pub mod compiler;
pub mod error;
pub mod eval;
pub mod lexer;
pub mod manifest;
pub mod program;
pub mod regex_syntax;
pub mod syntax;
pub mod value;

pub use bag::{AttributeBag, MapBag};
pub use error::{bounded, excerpt, CompileError, EvalError, EXCERPT_CHARS};
pub use manifest::{AttrId, Manifest};
pub use program::Program;
pub use value::{StringMap, StringMapBuilder, Value, ValueType};
