//! Type-checks the AST against a manifest and turns it into an evaluation tree; mirrors
//! `mixer/pkg/lang/checker` and `mixer/pkg/lang/compiler` (which also rejects a few
//! type/operator pairs after type checking succeeded).

use super::ast::{ConstValue, Expr, ExprKind};
use super::checker::{self, ArgChecker};
use super::error::CompileError;
use super::manifest::{AttrId, Manifest};
use super::regex_syntax::{go_regex, Regex};
use super::{Value, ValueType};
use std::borrow::Cow;

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Neq,
    Lt,
    Leq,
    Gt,
    Geq,
}

/// Functions of one string argument producing a typed value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conversion {
    Ip,
    Timestamp,
    DnsName,
    Email,
    Uri,
    ToLower,
    Size,
}

/// A compiled, type-annotated expression node.
#[derive(Debug)]
pub enum Node {
    Const(Value<'static>),
    Attr {
        id: AttrId,
        name: Box<str>,
        ty: ValueType,
    },
    Index(Box<Node>, Box<Node>),
    Cmp(CmpOp, ValueType, Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Fallback(Box<Node>, Box<Node>),
    Add(Box<Node>, Box<Node>),
    Conditional(Box<Node>, Box<Node>, Box<Node>),
    ConditionalString(Box<Node>, Box<Node>, Box<Node>),
    Convert(Conversion, Box<Node>),
    Match(Box<Node>, Box<Node>),
    /// `pattern.matches(subject)`. A constant pattern is compiled once, with the expression
    /// (one that does not compile rejects the expression); others per evaluation.
    Matches {
        pattern: Box<Node>,
        subject: Box<Node>,
        compiled: Option<Regex>,
    },
    StartsWith(Box<Node>, Box<Node>),
    EndsWith(Box<Node>, Box<Node>),
    EmptyStringMap,
}

/// Compiles `expr` against `manifest`. Returns the tree, its type and the referenced attributes.
pub fn compile(expr: &Expr, manifest: &Manifest) -> Result<(Node, ValueType, Vec<AttrId>), CompileError> {
    let mut c = Compiler { manifest, attributes: Vec::new(), codegen_error: None };
    let (node, ty) = c.node(expr)?;
    // Mixer type-checks the whole expression before generating code, so a type error anywhere
    // wins over a code-generation rejection.
    if let Some(e) = c.codegen_error {
        return Err(e);
    }
    let mut attributes = c.attributes;
    crate::sorting::sort_dedup(&mut attributes);
    Ok((node, ty, attributes))
}

struct Compiler<'m> {
    manifest: &'m Manifest,
    attributes: Vec<AttrId>,
    codegen_error: Option<CompileError>,
}

fn boxed(n: Node) -> Box<Node> {
    Box::new(n)
}

impl Compiler<'_> {
    fn node(&mut self, expr: &Expr) -> Result<(Node, ValueType), CompileError> {
        match &expr.kind {
            ExprKind::Const(c) => Ok(constant(&c.value)),
            ExprKind::Var(name) => {
                let (id, ty) = self
                    .manifest
                    .lookup(name)
                    .ok_or_else(|| CompileError::at(expr.pos, format!("unknown attribute {name}")))?;
                self.attributes.push(id);
                Ok((Node::Attr { id, name: name.as_str().into(), ty }, ty))
            }
            ExprKind::Call { name, target, args } => self.call(expr, name, target.as_deref(), args),
        }
    }

    fn call(
        &mut self,
        expr: &Expr,
        name: &str,
        target: Option<&Expr>,
        args: &[Expr],
    ) -> Result<(Node, ValueType), CompileError> {
        // Mixer checks the name before typing the target, then arity before the arguments.
        if checker::lookup(name).is_none() {
            return Err(CompileError::at(expr.pos, format!("unknown function: {name}")));
        }
        let target_pos = target.map_or(expr.pos, |t| t.pos);
        let target = match target {
            Some(t) => Some(self.node(t)?),
            None => None,
        };
        let sig = checker::check_call_shape(expr, name, target.as_ref().map(|t| t.1), args.len())?;
        let mut arg_checker = ArgChecker::new(sig);
        let mut nodes = Vec::with_capacity(args.len());
        for (i, arg) in args.iter().enumerate() {
            let (node, ty) = self.node(arg)?;
            arg_checker.check(expr, i, arg, ty)?;
            nodes.push(node);
        }
        let ty = arg_checker.result();
        if let Some(t) = arg_checker.generic() {
            if let Err(e) = checker::check_operator_support(name, t, expr.pos) {
                self.codegen_error.get_or_insert(e);
            }
        }
        let generic = arg_checker.generic().unwrap_or(ValueType::String);
        let mut node = build(name, target.map(|t| t.0), nodes, generic);
        if let Node::Matches { pattern, compiled, .. } = &mut node {
            if let Node::Const(Value::String(p)) = pattern.as_ref() {
                // Mixer compiled every pattern per request, so a bad constant one made the
                // expression fail on every request: a rule that silently never matches. It is
                // a configuration error here, at the pattern, after any type error (as above).
                match go_regex(p) {
                    Ok(re) => *compiled = Some(re),
                    Err(e) => {
                        self.codegen_error.get_or_insert(CompileError::at(target_pos, e));
                    }
                }
            }
        }
        Ok((node, ty))
    }
}

fn constant(value: &ConstValue) -> (Node, ValueType) {
    let v = match value {
        ConstValue::String(s) => Value::String(Cow::Owned(s.clone())),
        ConstValue::Int64(i) => Value::Int64(*i),
        ConstValue::Double(d) => Value::Double(*d),
        ConstValue::Bool(b) => Value::Bool(*b),
        ConstValue::Duration(n) => Value::Duration(*n),
    };
    let ty = v.value_type();
    (Node::Const(v), ty)
}

/// Builds the node for a call whose shape and types were checked.
fn build(name: &str, target: Option<Node>, args: Vec<Node>, generic: ValueType) -> Node {
    let mut it = args.into_iter();
    let mut next = || boxed(it.next().unwrap_or(Node::EmptyStringMap));
    let cmp = |op| (op, generic);
    match name {
        "EQ" => {
            let (op, t) = cmp(CmpOp::Eq);
            Node::Cmp(op, t, next(), next())
        }
        "NEQ" => {
            let (op, t) = cmp(CmpOp::Neq);
            Node::Cmp(op, t, next(), next())
        }
        "LT" => {
            let (op, t) = cmp(CmpOp::Lt);
            Node::Cmp(op, t, next(), next())
        }
        "LEQ" => {
            let (op, t) = cmp(CmpOp::Leq);
            Node::Cmp(op, t, next(), next())
        }
        "GT" => {
            let (op, t) = cmp(CmpOp::Gt);
            Node::Cmp(op, t, next(), next())
        }
        "GEQ" => {
            let (op, t) = cmp(CmpOp::Geq);
            Node::Cmp(op, t, next(), next())
        }
        "LAND" => Node::And(next(), next()),
        "LOR" => Node::Or(next(), next()),
        "OR" => Node::Fallback(next(), next()),
        "ADD" => Node::Add(next(), next()),
        "INDEX" => Node::Index(next(), next()),
        "conditional" => Node::Conditional(next(), next(), next()),
        "conditionalString" => Node::ConditionalString(next(), next(), next()),
        "size" => Node::Convert(Conversion::Size, next()),
        "ip" => Node::Convert(Conversion::Ip, next()),
        "timestamp" => Node::Convert(Conversion::Timestamp, next()),
        "dnsName" => Node::Convert(Conversion::DnsName, next()),
        "email" => Node::Convert(Conversion::Email, next()),
        "uri" => Node::Convert(Conversion::Uri, next()),
        "toLower" => Node::Convert(Conversion::ToLower, next()),
        "match" => Node::Match(next(), next()),
        "emptyStringMap" => Node::EmptyStringMap,
        "matches" => {
            Node::Matches { pattern: boxed(target.unwrap_or(Node::EmptyStringMap)), subject: next(), compiled: None }
        }
        "startsWith" => Node::StartsWith(boxed(target.unwrap_or(Node::EmptyStringMap)), next()),
        "endsWith" => Node::EndsWith(boxed(target.unwrap_or(Node::EmptyStringMap)), next()),
        // check_call_shape only lets the names above through.
        _ => Node::EmptyStringMap,
    }
}
