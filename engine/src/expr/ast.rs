//! Mixer's expression AST (constants, attributes, function calls) and its construction from Go
//! syntax; mirrors `mixer/pkg/lang/ast/expr.go`. Every operator becomes a named intrinsic.

use std::fmt;

use super::error::CompileError;
use super::lexer::{unquote, Tok};
use super::syntax::{parse_go_expr, GoExpr, GoKind};
use crate::gostd::{duration, strconv};

/// An expression node; `pos` is the byte offset where it starts in the source.
#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub pos: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Const(Constant),
    /// An attribute reference; dotted names are one flat name (`request.headers`).
    Var(String),
    /// A function or intrinsic (`EQ`, `OR`, `INDEX`, ...), with its instance target if any.
    Call {
        name: String,
        target: Option<Box<Expr>>,
        args: Vec<Expr>,
    },
}

/// Positions are not part of an expression's meaning: `parse(print(ast)) == ast`.
impl PartialEq for Expr {
    fn eq(&self, other: &Expr) -> bool {
        self.kind == other.kind
    }
}

/// A typed literal. `text` is its source text, which is how Mixer prints it in messages.
#[derive(Clone, Debug, PartialEq)]
pub struct Constant {
    pub text: String,
    pub value: ConstValue,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ConstValue {
    String(String),
    Int64(i64),
    Double(f64),
    Bool(bool),
    /// A string literal that Go's `time.ParseDuration` accepts, in nanoseconds.
    Duration(i64),
}

/// Parses CEXL source into the Mixer AST. Errors carry Mixer's texts.
pub fn parse(src: &str) -> Result<Expr, CompileError> {
    let go = parse_go_expr(src).map_err(|e| {
        // Mixer's text quotes the whole expression; a window around the error says as much.
        let column = src.get(..e.pos).map_or(e.pos, |s| s.chars().count()) + 1;
        CompileError {
            message: format!(
                "unable to parse expression '{}': {}",
                super::error::excerpt(src, column).0,
                e.go_text(src)
            ),
            pos: Some(e.pos),
        }
    })?;
    lower(&go, src)
}

fn operator_name(op: &str) -> &'static str {
    match op {
        "==" => "EQ",
        "!=" => "NEQ",
        "<" => "LT",
        "<=" => "LEQ",
        ">" => "GT",
        ">=" => "GEQ",
        "&&" => "LAND",
        "||" => "LOR",
        "|" => "OR",
        "+" => "ADD",
        "-" => "SUB",
        "*" => "MUL",
        "/" => "QUO",
        "%" => "REM",
        "&" => "AND",
        "^" => "XOR",
        "!" => "NOT",
        // <<, >> and &^ have no entry in Mixer's token map.
        _ => "",
    }
}

fn unexpected(go: &GoExpr, src: &str) -> CompileError {
    let text = src.get(go.span.0..go.span.1).unwrap_or(src);
    CompileError::at(go.span.0, format!("unexpected expression: {}", super::error::bounded(text)))
}

fn call(name: &str, target: Option<Expr>, args: Vec<Expr>, pos: usize) -> Expr {
    Expr { kind: ExprKind::Call { name: name.to_string(), target: target.map(Box::new), args }, pos }
}

fn lower(go: &GoExpr, src: &str) -> Result<Expr, CompileError> {
    let pos = go.span.0;
    match &go.kind {
        GoKind::Unary(op, x) => Ok(call(operator_name(op), None, vec![lower(x, src)?], pos)),
        GoKind::Binary(op, x, y) => Ok(call(operator_name(op), None, vec![lower(x, src)?, lower(y, src)?], pos)),
        GoKind::Index(x, i) => Ok(call("INDEX", None, vec![lower(x, src)?, lower(i, src)?], pos)),
        GoKind::Paren(x) => lower(x, src),
        GoKind::Lit(tok, text) => {
            let value = constant_value(*tok, text).map_err(|m| CompileError::at(pos, m))?;
            Ok(Expr { kind: ExprKind::Const(Constant { text: text.clone(), value }), pos })
        }
        GoKind::Ident(name) => {
            // Go's strings.ToLower; only "true"/"false" matter, and no non-ASCII rune lowers to one
            // of their letters (only U+212A and U+0130 lower to ASCII: k, i), so ASCII is exact.
            let lower_name = name.to_ascii_lowercase();
            let kind = if lower_name == "true" || lower_name == "false" {
                ExprKind::Const(Constant { value: ConstValue::Bool(lower_name == "true"), text: lower_name })
            } else {
                ExprKind::Var(name.clone())
            };
            Ok(Expr { kind, pos })
        }
        GoKind::Selector(..) => match flatten_selectors(go, src)? {
            (None, parts) => Ok(Expr { kind: ExprKind::Var(dotted(&parts)), pos }),
            (Some(_), _) => Err(unexpected(go, src)),
        },
        GoKind::Call(fun, args) => {
            let args = args.iter().map(|a| lower(a, src)).collect::<Result<Vec<_>, _>>()?;
            match &fun.kind {
                GoKind::Ident(name) => Ok(call(name, None, args, pos)),
                GoKind::Selector(..) => {
                    let (anchor, parts) = flatten_selectors(fun, src)?;
                    let (method, rest) = parts.split_first().ok_or_else(|| unexpected(go, src))?;
                    let target = match anchor {
                        None => Expr { kind: ExprKind::Var(dotted(rest)), pos },
                        Some(_) if !rest.is_empty() => return Err(unexpected(fun, src)),
                        Some(anchor) => lower(anchor, src)?,
                    };
                    Ok(call(method, Some(target), args, pos))
                }
                _ => Err(unexpected(go, src)),
            }
        }
        GoKind::Other => Err(unexpected(go, src)),
    }
}

/// Walks `a.b.c` down to its root. Returns the non-identifier anchor (a call, literal or
/// parenthesised expression) if the chain starts with one, and the names innermost-last.
fn flatten_selectors<'g>(go: &'g GoExpr, src: &str) -> Result<(Option<&'g GoExpr>, Vec<String>), CompileError> {
    let mut parts = Vec::new();
    let mut cur = go;
    loop {
        match &cur.kind {
            GoKind::Selector(x, sel) => {
                parts.push(sel.clone());
                cur = x;
            }
            GoKind::Ident(name) => {
                parts.push(name.clone());
                return Ok((None, parts));
            }
            GoKind::Call(..) | GoKind::Lit(..) | GoKind::Paren(..) => return Ok((Some(cur), parts)),
            _ => return Err(unexpected(cur, src)),
        }
    }
}

/// Joins selector parts collected innermost-last (`[c, b, a]`) into `a.b.c`.
fn dotted(parts: &[String]) -> String {
    let mut names: Vec<&str> = parts.iter().map(String::as_str).collect();
    names.reverse();
    names.join(".")
}

/// Mixer's `newConstant`: ints in base 10, floats, and strings, where a string that parses
/// as a Go duration becomes a DURATION.
fn constant_value(tok: Tok, text: &str) -> Result<ConstValue, String> {
    match tok {
        Tok::Int => strconv::parse_int(text).map(ConstValue::Int64),
        Tok::Float => strconv::parse_float(text).map(ConstValue::Double),
        _ => {
            let s = unquote(text).map_err(String::from)?;
            Ok(match duration::parse_duration(&s) {
                Ok(nanos) => ConstValue::Duration(nanos),
                Err(_) => ConstValue::String(s),
            })
        }
    }
}

/// Mixer's debug rendering, used inside type errors: `EQ($a, "b")`, `"x":matches($s)`.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Const(c) => f.write_str(&c.text),
            ExprKind::Var(name) => write!(f, "${name}"),
            ExprKind::Call { name, target, args } => {
                if let Some(t) = target {
                    write!(f, "{t}:")?;
                }
                write!(f, "{name}(")?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
        }
    }
}

fn infix(name: &str) -> Option<&'static str> {
    Some(match name {
        "EQ" => "==",
        "NEQ" => "!=",
        "LT" => "<",
        "LEQ" => "<=",
        "GT" => ">",
        "GEQ" => ">=",
        "LAND" => "&&",
        "LOR" => "||",
        "OR" => "|",
        "ADD" => "+",
        "SUB" => "-",
        "MUL" => "*",
        "QUO" => "/",
        "REM" => "%",
        "AND" => "&",
        "XOR" => "^",
        "NOT" => "!",
        "" => "<<",
        _ => return None,
    })
}

impl Expr {
    /// Renders the expression back to CEXL source that parses to an equal AST.
    pub fn to_source(&self) -> String {
        let mut out = String::new();
        self.write_source(&mut out);
        out
    }

    fn write_source(&self, out: &mut String) {
        match &self.kind {
            ExprKind::Const(c) => out.push_str(&c.text),
            ExprKind::Var(name) => out.push_str(name),
            ExprKind::Call { name, target: None, args } if name == "INDEX" && args.len() == 2 => {
                if let [m, k] = args.as_slice() {
                    out.push('(');
                    m.write_source(out);
                    out.push_str(")[");
                    k.write_source(out);
                    out.push(']');
                }
            }
            ExprKind::Call { name, target: None, args } if infix(name).is_some() && (1..=2).contains(&args.len()) => {
                let op = infix(name).unwrap_or("");
                out.push('(');
                if let [x, y] = args.as_slice() {
                    x.write_source(out);
                    out.push(' ');
                    out.push_str(op);
                    out.push(' ');
                    y.write_source(out);
                } else if let [x] = args.as_slice() {
                    out.push_str(op);
                    out.push('(');
                    x.write_source(out);
                    out.push(')');
                }
                out.push(')');
            }
            ExprKind::Call { name, target, args } => {
                if let Some(t) = target {
                    out.push('(');
                    t.write_source(out);
                    out.push_str(").");
                }
                out.push_str(name);
                out.push('(');
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    a.write_source(out);
                }
                out.push(')');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn debug(src: &str) -> String {
        match parse(src) {
            Ok(e) => e.to_string(),
            Err(e) => format!("ERR {}", e.message),
        }
    }

    #[test]
    fn renders_like_mixer() {
        assert_eq!(debug(r#"a.b == "c" && x"#), r#"LAND(EQ($a.b, "c"), $x)"#);
        assert_eq!(debug(r#""aaa".matches(23)"#), r#""aaa":matches(23)"#);
        assert_eq!(
            debug(r#"destination.service.host.startsWith("x")"#),
            r#"$destination.service.host:startsWith("x")"#
        );
        assert_eq!(debug(r#"request.headers["x"] | "y""#), r#"OR(INDEX($request.headers, "x"), "y")"#);
        assert_eq!(debug("TRUE || False"), "LOR(true, false)");
        assert_eq!(debug("(a | b).endsWith(z)"), "OR($a, $b):endsWith($z)");
        assert_eq!(debug("!x"), "NOT($x)");
        assert_eq!(debug("a << b"), "($a, $b)");
    }

    #[test]
    fn literal_typing() {
        let kind = |s: &str| parse(s).map(|e| e.kind);
        assert!(matches!(
            kind(r#""10ms""#),
            Ok(ExprKind::Const(Constant { value: ConstValue::Duration(10_000_000), .. }))
        ));
        assert!(matches!(kind(r#""0""#), Ok(ExprKind::Const(Constant { value: ConstValue::Duration(0), .. }))));
        assert!(matches!(kind(r#""1""#), Ok(ExprKind::Const(Constant { value: ConstValue::String(_), .. }))));
        assert!(matches!(kind("010"), Ok(ExprKind::Const(Constant { value: ConstValue::Int64(10), .. }))));
        assert!(matches!(kind("'a'"), Ok(ExprKind::Const(Constant { value: ConstValue::String(_), .. }))));
        assert!(matches!(kind("1."), Ok(ExprKind::Const(Constant { value: ConstValue::Double(_), .. }))));
    }

    #[test]
    fn mixer_rejections() {
        assert_eq!(debug("0x1F"), r#"ERR strconv.ParseInt: parsing "0x1F": invalid syntax"#);
        assert_eq!(debug("1i"), "ERR invalid syntax");
        assert_eq!(
            debug(r#"request.headers["x"].startsWith("y")"#),
            r#"ERR unexpected expression: request.headers["x"]"#
        );
        assert_eq!(debug("*a"), "ERR unexpected expression: *a");
        assert_eq!(debug("a = 2"), "ERR unable to parse expression 'a = 2': 1:3: expected '==', found '='");
    }

    #[test]
    fn source_round_trip() {
        for src in [
            r#"destination.labels["app"] == "ratings" && source.labels["app"]=="reviews""#,
            r#"conditional((context.reporter.kind | "inbound") == "outbound", "client", "server")"#,
            r#"(a | b).endsWith("z") || !x"#,
            r#"match(request.useragent | "-", "kube-probe*") == false"#,
        ] {
            let ast = parse(src).map_err(|e| e.message);
            let again = ast.as_ref().map(|a| parse(&a.to_source()).map_err(|e| e.message));
            assert_eq!(ast.clone().map(Some), again.map(|r| r.ok()).map_err(Clone::clone), "{src}");
        }
    }
}
