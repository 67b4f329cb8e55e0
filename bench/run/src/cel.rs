//! Envoy's RBAC `condition` is a parsed CEL AST (`google.api.expr.v1alpha1.Expr`) in proto
//! JSON; this builds the few node kinds the benchmark's conditions need.

use serde_json::{json, Value};

pub fn ident(name: &str) -> Value {
    json!({"ident_expr": {"name": name}})
}

/// `operand.field`
pub fn select(operand: Value, field: &str) -> Value {
    json!({"select_expr": {"operand": operand, "field": field}})
}

/// A dotted path: `path("xds.node.metadata")`.
pub fn path(dotted: &str) -> Value {
    let mut parts = dotted.split('.');
    let mut e = ident(parts.next().unwrap_or_default());
    for p in parts {
        e = select(e, p);
    }
    e
}

pub fn string(s: &str) -> Value {
    json!({"const_expr": {"string_value": s}})
}

fn call(function: &str, args: Vec<Value>) -> Value {
    json!({"call_expr": {"function": function, "args": args}})
}

/// `operand[key]`
pub fn index(operand: Value, key: &str) -> Value {
    call("_[_]", vec![operand, string(key)])
}

pub fn eq(a: Value, b: Value) -> Value {
    call("_==_", vec![a, b])
}

/// `a && b && …`
pub fn and(mut terms: Vec<Value>) -> Value {
    let first = if terms.is_empty() { json!({"const_expr": {"bool_value": true}}) } else { terms.remove(0) };
    terms.into_iter().fold(first, |acc, t| call("_&&_", vec![acc, t]))
}
