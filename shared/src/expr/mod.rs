//! CEXL, Mixer's attribute expression language: lexer -> parser -> checker -> compiler -> eval.

pub mod value;

pub use value::{StringMap, Value, ValueType};
