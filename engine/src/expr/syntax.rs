//! A parser for Go expression syntax, reproducing `go/parser.ParseExpr`: Go's precedence,
//! left associativity, and its error messages (`1:3: expected '==', found '='`).

use super::lexer::{tokenize, Tok, Token};

/// A node of the Go expression tree. `span` is the byte range it covers in the source.
#[derive(Clone, Debug, PartialEq)]
pub struct GoExpr {
    pub kind: GoKind,
    pub span: (usize, usize),
}

#[derive(Clone, Debug, PartialEq)]
pub enum GoKind {
    Ident(String),
    /// A literal: its token kind and source text.
    Lit(Tok, String),
    Paren(Box<GoExpr>),
    Selector(Box<GoExpr>, String),
    Index(Box<GoExpr>, Box<GoExpr>),
    Call(Box<GoExpr>, Vec<GoExpr>),
    Unary(String, Box<GoExpr>),
    Binary(String, Box<GoExpr>, Box<GoExpr>),
    /// Valid Go that CEXL has no meaning for (`*x`, slices, composite literals, types...).
    Other,
}

/// A Go syntax error: byte position and Go's message without the `line:col: ` prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: usize,
    pub msg: String,
}

impl SyntaxError {
    /// Go's `line:col: msg` rendering (1-based, columns in bytes).
    pub fn go_text(&self, src: &str) -> String {
        let before = src.get(..self.pos).unwrap_or(src);
        let line = before.matches('\n').count() + 1;
        let col = before.rfind('\n').map_or(before.len(), |nl| before.len() - nl - 1) + 1;
        format!("{line}:{col}: {}", self.msg)
    }
}

/// Parses one Go expression, as `go/parser.ParseExpr` does.
pub fn parse_go_expr(src: &str) -> Result<GoExpr, SyntaxError> {
    let toks = tokenize(src);
    if toks.len() > MAX_TOKENS {
        return Err(SyntaxError { pos: 0, msg: format!("expression too long: more than {MAX_TOKENS} tokens") });
    }
    let mut p = Parser { toks, at: 0, depth: 0, operators: 0 };
    let expr = p.parse_binary(1)?;
    // ParseExprFrom: an inserted semicolon may end the expression; anything more is an error.
    if p.tok().tok == Tok::Semicolon && p.tok().text == "\n" {
        p.next();
    }
    p.expect_eof()?;
    Ok(expr)
}

// Bounds that keep every later recursive pass (lowering, checking, evaluation, drop) well
// within the small wasm stack. Real expressions are far smaller.
const MAX_DEPTH: usize = 200;
const MAX_OPERATORS: usize = 500;
const MAX_TOKENS: usize = 4096;

struct Parser {
    toks: Vec<Token>,
    at: usize,
    depth: usize,
    operators: usize,
}

fn precedence(op: &str) -> u8 {
    match op {
        "||" => 1,
        "&&" => 2,
        "==" | "!=" | "<" | "<=" | ">" | ">=" => 3,
        "+" | "-" | "|" | "^" => 4,
        "*" | "/" | "%" | "<<" | ">>" | "&" | "&^" => 5,
        _ => 0,
    }
}

impl Parser {
    fn tok(&self) -> &Token {
        // tokenize always ends with Eof, and `next` never moves past it.
        static EOF: Token = Token { tok: Tok::Eof, text: String::new(), pos: 0, error: None };
        self.toks.get(self.at).unwrap_or(&EOF)
    }

    fn next(&mut self) {
        if self.at + 1 < self.toks.len() {
            self.at += 1;
        }
    }

    fn error_expected(&self, what: &str) -> SyntaxError {
        let t = self.tok();
        let found = match t.tok {
            Tok::Semicolon if t.text == "\n" => "newline".to_string(),
            Tok::Int | Tok::Float | Tok::Imag | Tok::Char | Tok::String | Tok::Ident => t.text.clone(),
            Tok::Eof => "'EOF'".to_string(),
            Tok::Illegal => return SyntaxError { pos: t.pos, msg: t.error.unwrap_or("illegal character").to_string() },
            _ => format!("'{}'", t.text),
        };
        SyntaxError { pos: t.pos, msg: format!("expected {what}, found {found}") }
    }

    fn expect_op(&mut self, op: &str) -> Result<usize, SyntaxError> {
        let t = self.tok();
        if t.tok != Tok::Op || t.text != op {
            return Err(self.error_expected(&format!("'{op}'")));
        }
        let pos = t.pos;
        self.next();
        Ok(pos)
    }

    fn expect_eof(&self) -> Result<(), SyntaxError> {
        if self.tok().tok == Tok::Eof {
            Ok(())
        } else {
            Err(self.error_expected("'EOF'"))
        }
    }

    fn last_end(&self) -> usize {
        self.toks.get(self.at.saturating_sub(1)).map_or(0, |t| t.pos + t.text.len())
    }

    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(SyntaxError { pos: self.tok().pos, msg: "expression nested too deeply".into() });
        }
        Ok(())
    }

    fn parse_binary(&mut self, min_prec: u8) -> Result<GoExpr, SyntaxError> {
        self.enter()?;
        let mut x = self.parse_unary()?;
        loop {
            let t = self.tok();
            // Go's parser reads `=` in an expression as a mistyped `==` (tokPrec with inRhs).
            let (op, prec) = match t.tok {
                Tok::Op if t.text == "=" => ("==".to_string(), 3),
                Tok::Op => (t.text.clone(), precedence(&t.text)),
                _ => (String::new(), 0),
            };
            if prec == 0 || prec < min_prec {
                break;
            }
            self.expect_op(&op)?;
            self.operators += 1;
            if self.operators > MAX_OPERATORS {
                return Err(SyntaxError {
                    pos: self.tok().pos,
                    msg: format!("expression too complex: more than {MAX_OPERATORS} operators"),
                });
            }
            let y = self.parse_binary(prec + 1)?;
            let span = (x.span.0, y.span.1);
            x = GoExpr { kind: GoKind::Binary(op, Box::new(x), Box::new(y)), span };
        }
        self.depth -= 1;
        Ok(x)
    }

    fn parse_unary(&mut self) -> Result<GoExpr, SyntaxError> {
        let t = self.tok().clone();
        if t.tok == Tok::Op && matches!(t.text.as_str(), "+" | "-" | "!" | "^" | "&" | "*" | "<-") {
            self.enter()?;
            self.next();
            let x = self.parse_unary()?;
            self.depth -= 1;
            let span = (t.pos, x.span.1);
            let kind = match t.text.as_str() {
                "*" | "<-" => GoKind::Other,
                _ => GoKind::Unary(t.text, Box::new(x)),
            };
            return Ok(GoExpr { kind, span });
        }
        self.parse_primary()
    }

    fn parse_primary(&mut self) -> Result<GoExpr, SyntaxError> {
        let mut x = self.parse_operand()?;
        let mut suffixes = 0usize;
        loop {
            suffixes += 1;
            if suffixes > MAX_DEPTH {
                return Err(SyntaxError { pos: self.tok().pos, msg: "expression nested too deeply".into() });
            }
            let t = self.tok().clone();
            if t.tok != Tok::Op {
                return Ok(x);
            }
            match t.text.as_str() {
                "." => {
                    self.next();
                    let sel = self.tok().clone();
                    if sel.tok == Tok::Ident {
                        self.next();
                        let span = (x.span.0, sel.pos + sel.text.len());
                        x = GoExpr { kind: GoKind::Selector(Box::new(x), sel.text), span };
                    } else if sel.tok == Tok::Op && sel.text == "(" {
                        // Type assertion x.(T): valid Go, meaningless here.
                        self.next();
                        self.skip_balanced("(", ")")?;
                        x = GoExpr { kind: GoKind::Other, span: (x.span.0, self.last_end()) };
                    } else {
                        return Err(self.error_expected("selector or type assertion"));
                    }
                }
                "[" => {
                    self.next();
                    let index = self.parse_binary(1)?;
                    if self.tok().tok == Tok::Op && self.tok().text == ":" {
                        self.skip_balanced("[", "]")?;
                        x = GoExpr { kind: GoKind::Other, span: (x.span.0, self.last_end()) };
                        continue;
                    }
                    self.expect_op("]")?;
                    let span = (x.span.0, self.last_end());
                    x = GoExpr { kind: GoKind::Index(Box::new(x), Box::new(index)), span };
                }
                "(" => {
                    self.next();
                    let args = self.parse_call_args()?;
                    let span = (x.span.0, self.last_end());
                    x = GoExpr { kind: GoKind::Call(Box::new(x), args), span };
                }
                "{" if matches!(x.kind, GoKind::Ident(_) | GoKind::Selector(..)) => {
                    // Composite literal T{...}.
                    self.next();
                    self.skip_balanced("{", "}")?;
                    x = GoExpr { kind: GoKind::Other, span: (x.span.0, self.last_end()) };
                }
                _ => return Ok(x),
            }
        }
    }

    fn parse_call_args(&mut self) -> Result<Vec<GoExpr>, SyntaxError> {
        let mut args = Vec::new();
        while !(self.tok().tok == Tok::Op && self.tok().text == ")") {
            args.push(self.parse_binary(1)?);
            if self.tok().tok == Tok::Op && self.tok().text == "..." {
                self.next();
            }
            if self.tok().tok == Tok::Op && self.tok().text == "," {
                self.next();
            } else {
                break;
            }
        }
        if !(self.tok().tok == Tok::Op && self.tok().text == ")") {
            return Err(self.error_expected("')'"));
        }
        self.next();
        Ok(args)
    }

    /// Skips to the token closing an already-consumed `open`, for constructs CEXL rejects anyway.
    fn skip_balanced(&mut self, open: &str, close: &str) -> Result<(), SyntaxError> {
        let mut depth = 1usize;
        loop {
            let t = self.tok();
            match t.tok {
                Tok::Eof => return Err(self.error_expected(&format!("'{close}'"))),
                Tok::Op if t.text == open => depth += 1,
                Tok::Op if t.text == close => {
                    depth -= 1;
                    if depth == 0 {
                        self.next();
                        return Ok(());
                    }
                }
                _ => {}
            }
            self.next();
        }
    }

    fn parse_operand(&mut self) -> Result<GoExpr, SyntaxError> {
        let t = self.tok().clone();
        let span = (t.pos, t.pos + t.text.len());
        match t.tok {
            Tok::Ident => {
                self.next();
                Ok(GoExpr { kind: GoKind::Ident(t.text), span })
            }
            Tok::Int | Tok::Float | Tok::Imag | Tok::Char | Tok::String => {
                self.next();
                Ok(GoExpr { kind: GoKind::Lit(t.tok, t.text), span })
            }
            Tok::Op if t.text == "(" => {
                self.enter()?;
                self.next();
                let inner = self.parse_binary(1)?;
                self.expect_op(")")?;
                self.depth -= 1;
                Ok(GoExpr { kind: GoKind::Paren(Box::new(inner)), span: (t.pos, self.last_end()) })
            }
            Tok::Keyword if matches!(t.text.as_str(), "func" | "map" | "chan" | "struct" | "interface") => {
                // Types and function literals parse in Go, but they are no CEXL operands.
                self.next();
                while !(matches!(self.tok().tok, Tok::Eof | Tok::Semicolon)
                    || (self.tok().tok == Tok::Op && matches!(self.tok().text.as_str(), ")" | "," | "]")))
                {
                    if self.tok().tok == Tok::Op && matches!(self.tok().text.as_str(), "(" | "[" | "{") {
                        let open = self.tok().text.clone();
                        let close = match open.as_str() {
                            "(" => ")",
                            "[" => "]",
                            _ => "}",
                        };
                        self.next();
                        self.skip_balanced(&open, close)?;
                    } else {
                        self.next();
                    }
                }
                Ok(GoExpr { kind: GoKind::Other, span: (t.pos, self.last_end()) })
            }
            _ => Err(self.error_expected("operand")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> String {
        match parse_go_expr(src) {
            Err(e) => e.go_text(src),
            Ok(x) => format!("parsed: {x:?}"),
        }
    }

    #[test]
    fn assignment_reads_as_mistyped_equality() {
        assert_eq!(err("a = 2"), "1:3: expected '==', found '='");
    }

    #[test]
    fn go_error_texts() {
        assert_eq!(err("a =="), "1:5: expected operand, found 'EOF'");
        // Go's scanner inserts a semicolon at EOF after an operand, hence "newline".
        assert_eq!(err("(a"), "1:3: expected ')', found newline");
        assert_eq!(err("(a =="), "1:6: expected operand, found 'EOF'");
        assert_eq!(err("a b"), "1:3: expected 'EOF', found b");
        assert_eq!(err("a.type"), "1:3: expected selector or type assertion, found 'type'");
        assert_eq!(err("a\n== b"), "2:1: expected 'EOF', found '=='");
    }

    #[test]
    fn precedence_is_go() {
        let x = parse_go_expr("a | b == c && d").map(|e| e.kind);
        let Ok(GoKind::Binary(op, lhs, _)) = x else { unreachable!("{x:?}") };
        assert_eq!(op, "&&");
        let GoKind::Binary(op, lhs, _) = lhs.kind else { unreachable!() };
        assert_eq!(op, "==");
        assert!(matches!(lhs.kind, GoKind::Binary(ref o, _, _) if o == "|"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let src = format!("{}a{}", "(".repeat(5000), ")".repeat(5000));
        assert!(parse_go_expr(&src).is_err());
    }
}
