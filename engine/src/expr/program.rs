//! A compiled expression: what filters hold from configure time on and evaluate per request.

use super::ast;
use super::bag::AttributeBag;
use super::compiler::{compile, Node};
use super::error::{CompileError, EvalError};
use super::manifest::{AttrId, Manifest};
use super::{Value, ValueType};

/// A parsed, type-checked and compiled CEXL expression.
#[derive(Debug)]
pub struct Program {
    source: String,
    root: Node,
    result_type: ValueType,
    attributes: Vec<AttrId>,
}

impl Program {
    /// Compiles `source` against `manifest`. Errors carry Mixer's texts and a position.
    pub fn compile(source: &str, manifest: &Manifest) -> Result<Program, CompileError> {
        let expr = ast::parse(source)?;
        let (root, result_type, attributes) = compile(&expr, manifest)?;
        Ok(Program { source: source.to_string(), root, result_type, attributes })
    }

    /// The expression's text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The static type of the expression's value.
    pub fn result_type(&self) -> ValueType {
        self.result_type
    }

    /// The attributes the expression may read, sorted by id, without repeats.
    pub fn attributes(&self) -> &[AttrId] {
        &self.attributes
    }

    /// True when the expression is the constant `true` (a rule that always matches).
    pub fn is_constant_true(&self) -> bool {
        matches!(self.root, Node::Const(Value::Bool(true)))
    }

    /// Evaluates against `bag`.
    pub fn evaluate<'a>(&'a self, bag: &'a dyn AttributeBag) -> Result<Value<'a>, EvalError<'a>> {
        self.root.eval(bag)
    }

    /// Evaluates a BOOL expression (e.g. a rule's match).
    pub fn evaluate_bool<'a>(&'a self, bag: &'a dyn AttributeBag) -> Result<bool, EvalError<'a>> {
        self.root.eval_bool(bag)
    }
}
