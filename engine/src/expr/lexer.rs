//! Go's lexical grammar, as much of it as `go/parser.ParseExpr` can meet in an expression:
//! identifiers, keywords, number/string/rune literals, operators, comments and the automatic
//! semicolon that a newline inserts after an operand.

/// One Go token kind. Literal kinds keep their source text in [`Token::text`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tok {
    Eof,
    Illegal,
    Ident,
    Keyword,
    Int,
    Float,
    Imag,
    Char,
    String,
    /// An operator or delimiter; its text is in [`Token::text`].
    Op,
    /// A semicolon, either written or inserted by a newline (text `"\n"`).
    Semicolon,
}

/// A token with its byte offset in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub text: String,
    pub pos: usize,
    /// Set on `Illegal` tokens: the scanner's error message.
    pub error: Option<&'static str>,
}

const KEYWORDS: [&str; 25] = [
    "break",
    "case",
    "chan",
    "const",
    "continue",
    "default",
    "defer",
    "else",
    "fallthrough",
    "for",
    "func",
    "go",
    "goto",
    "if",
    "import",
    "interface",
    "map",
    "package",
    "range",
    "return",
    "select",
    "struct",
    "switch",
    "type",
    "var",
];

// Longest first, so that maximal munch is a linear scan.
const OPERATORS: [&str; 47] = [
    "&^=", "<<=", ">>=", "...", "&&", "||", "<-", "++", "--", "==", "!=", "<=", ">=", ":=", "+=", "-=", "*=", "/=",
    "%=", "&=", "|=", "^=", "<<", ">>", "&^", "+", "-", "*", "/", "%", "&", "|", "^", "<", ">", "=", "!", "(", ")",
    "[", "]", "{", "}", ",", ".", ";", ":",
];

/// Splits `src` into tokens, ending with one `Eof`. Never fails: bad input becomes `Illegal`.
pub fn tokenize(src: &str) -> Vec<Token> {
    let mut lexer = Lexer { src, pos: 0, insert_semi: false, out: Vec::new() };
    lexer.run();
    lexer.out
}

struct Lexer<'s> {
    src: &'s str,
    pos: usize,
    insert_semi: bool,
    out: Vec<Token>,
}

impl Lexer<'_> {
    fn rest(&self) -> &str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek2(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    fn push(&mut self, tok: Tok, start: usize, error: Option<&'static str>) {
        let text = self.src.get(start..self.pos).unwrap_or("").to_string();
        self.insert_semi = matches!(tok, Tok::Ident | Tok::Int | Tok::Float | Tok::Imag | Tok::Char | Tok::String)
            || (tok == Tok::Keyword && matches!(text.as_str(), "break" | "continue" | "fallthrough" | "return"))
            || (tok == Tok::Op && matches!(text.as_str(), "++" | "--" | ")" | "]" | "}"));
        self.out.push(Token { tok, text, pos: start, error });
    }

    fn push_newline_semi(&mut self, pos: usize) {
        self.out.push(Token { tok: Tok::Semicolon, text: "\n".into(), pos, error: None });
        self.insert_semi = false;
    }

    fn run(&mut self) {
        loop {
            self.skip_space_and_comments();
            let start = self.pos;
            let Some(c) = self.peek() else {
                if self.insert_semi {
                    self.push_newline_semi(start);
                }
                self.out.push(Token { tok: Tok::Eof, text: String::new(), pos: start, error: None });
                return;
            };
            if c == '\n' {
                self.pos += 1;
                if self.insert_semi {
                    self.push_newline_semi(start);
                }
                continue;
            }
            if c.is_alphabetic() || c == '_' {
                self.scan_ident(start);
            } else if c.is_ascii_digit() || (c == '.' && self.peek2().is_some_and(|d| d.is_ascii_digit())) {
                self.scan_number(start);
            } else if c == '"' {
                self.scan_interpreted(start, '"', Tok::String);
            } else if c == '\'' {
                self.scan_interpreted(start, '\'', Tok::Char);
            } else if c == '`' {
                self.scan_raw(start);
            } else if let Some(op) = OPERATORS.iter().find(|op| self.rest().starts_with(**op)) {
                self.pos += op.len();
                let tok = if *op == ";" { Tok::Semicolon } else { Tok::Op };
                self.push(tok, start, None);
            } else {
                self.pos += c.len_utf8();
                self.push(Tok::Illegal, start, Some("illegal character"));
            }
        }
    }

    fn skip_space_and_comments(&mut self) {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\r') => self.pos += 1,
                Some('/') if self.peek2() == Some('/') => {
                    // A line comment ends at the newline, which still inserts a semicolon.
                    let len = self.rest().find('\n').unwrap_or(self.rest().len());
                    self.pos += len;
                }
                Some('/') if self.peek2() == Some('*') => {
                    let body = self.rest().get(2..).unwrap_or("");
                    match body.find("*/") {
                        Some(end) => {
                            let had_newline = body.get(..end).is_some_and(|b| b.contains('\n'));
                            let start = self.pos;
                            self.pos += 2 + end + 2;
                            if had_newline && self.insert_semi {
                                self.push_newline_semi(start);
                            }
                        }
                        None => {
                            let start = self.pos;
                            self.pos = self.src.len();
                            self.push(Tok::Illegal, start, Some("comment not terminated"));
                        }
                    }
                }
                _ => return,
            }
        }
    }

    fn scan_ident(&mut self, start: usize) {
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
        let word = self.src.get(start..self.pos).unwrap_or("");
        let tok = if KEYWORDS.contains(&word) { Tok::Keyword } else { Tok::Ident };
        self.push(tok, start, None);
    }

    fn eat_digits(&mut self, radix: u32) -> bool {
        let mut any = false;
        while let Some(c) = self.peek() {
            if c.is_digit(radix) || c == '_' {
                any |= c != '_';
                self.pos += 1;
            } else {
                break;
            }
        }
        any
    }

    fn scan_number(&mut self, start: usize) {
        let mut tok = Tok::Int;
        let mut radix = 10;
        if self.peek() == Some('0') {
            match self.peek2().map(|c| c.to_ascii_lowercase()) {
                Some('x') => radix = 16,
                Some('o') => radix = 8,
                Some('b') => radix = 2,
                _ => {}
            }
            if radix != 10 {
                self.pos += 2;
            }
        }
        // Go lexes octal-looking and invalid digits as part of the literal; mimic by eating
        // all decimal digits for radix 10/8 and hex digits for 16.
        let digit_radix = if radix == 16 { 16 } else { 10 };
        self.eat_digits(digit_radix);
        if self.peek() == Some('.') && (radix == 10 || radix == 16) {
            tok = Tok::Float;
            self.pos += 1;
            self.eat_digits(digit_radix);
        }
        let exp = matches!((radix, self.peek()), (10, Some('e' | 'E')) | (16, Some('p' | 'P')));
        if exp {
            tok = Tok::Float;
            self.pos += 1;
            if matches!(self.peek(), Some('+' | '-')) {
                self.pos += 1;
            }
            if !self.eat_digits(10) {
                self.push(Tok::Illegal, start, Some("exponent has no digits"));
                return;
            }
        }
        if self.peek() == Some('i') {
            self.pos += 1;
            tok = Tok::Imag;
        }
        self.push(tok, start, None);
    }

    fn scan_interpreted(&mut self, start: usize, quote: char, tok: Tok) {
        self.pos += 1;
        loop {
            match self.peek() {
                None | Some('\n') => {
                    let msg =
                        if quote == '"' { "string literal not terminated" } else { "rune literal not terminated" };
                    self.push(Tok::Illegal, start, Some(msg));
                    return;
                }
                Some('\\') => {
                    self.pos += 1;
                    if let Some(c) = self.peek() {
                        self.pos += c.len_utf8();
                    }
                }
                Some(c) => {
                    self.pos += c.len_utf8();
                    if c == quote {
                        break;
                    }
                }
            }
        }
        if tok == Tok::Char {
            let inner = self.src.get(start + 1..self.pos - 1).unwrap_or("");
            let chars = if inner.starts_with('\\') { 1 } else { inner.chars().count() };
            if chars != 1 {
                let msg = if chars == 0 {
                    "empty rune literal or unescaped ' in rune literal"
                } else {
                    "more than one character in rune literal"
                };
                self.push(Tok::Illegal, start, Some(msg));
                return;
            }
        }
        self.push(tok, start, None);
    }

    fn scan_raw(&mut self, start: usize) {
        self.pos += 1;
        match self.rest().find('`') {
            Some(end) => {
                self.pos += end + 1;
                self.push(Tok::String, start, None);
            }
            None => {
                self.pos = self.src.len();
                self.push(Tok::Illegal, start, Some("raw string literal not terminated"));
            }
        }
    }
}

/// Go `strconv.Unquote` for the three quote styles. Error text is Go's: `invalid syntax`.
pub fn unquote(lit: &str) -> Result<String, &'static str> {
    const SYNTAX: &str = "invalid syntax";
    let mut chars = lit.chars();
    let (Some(first), Some(last)) = (chars.next(), chars.next_back()) else { return Err(SYNTAX) };
    if first != last || !matches!(first, '"' | '\'' | '`') {
        return Err(SYNTAX);
    }
    let body = chars.as_str();
    if first == '`' {
        if body.contains('`') {
            return Err(SYNTAX);
        }
        return Ok(body.replace('\r', ""));
    }
    let mut out = String::with_capacity(body.len());
    let mut it = body.chars().peekable();
    while let Some(c) = it.next() {
        if c == first || c == '\n' {
            return Err(SYNTAX);
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let esc = it.next().ok_or(SYNTAX)?;
        match esc {
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '\'' | '"' if esc == first => out.push(esc),
            'x' | 'u' | 'U' => {
                let n = match esc {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut v: u32 = 0;
                for _ in 0..n {
                    let d = it.next().and_then(|d| d.to_digit(16)).ok_or(SYNTAX)?;
                    v = v * 16 + d;
                }
                if esc == 'x' {
                    // A \x byte: Go strings hold bytes; we keep text, so only ASCII is exact.
                    out.push(char::from_u32(v).ok_or(SYNTAX)?);
                } else {
                    out.push(char::from_u32(v).ok_or(SYNTAX)?);
                }
            }
            '0'..='7' => {
                let mut v = esc.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let d = it.next().and_then(|d| d.to_digit(8)).ok_or(SYNTAX)?;
                    v = v * 8 + d;
                }
                if v > 255 {
                    return Err(SYNTAX);
                }
                out.push(char::from_u32(v).ok_or(SYNTAX)?);
            }
            _ => return Err(SYNTAX),
        }
    }
    if first == '\'' && out.chars().count() != 1 {
        return Err(SYNTAX);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(Tok, String)> {
        tokenize(src).into_iter().map(|t| (t.tok, t.text)).collect()
    }

    #[test]
    fn operators_use_maximal_munch() {
        let toks = kinds("a==b&&c||d|e&^f");
        let ops: Vec<_> = toks.iter().filter(|t| t.0 == Tok::Op).map(|t| t.1.as_str()).collect();
        assert_eq!(ops, ["==", "&&", "||", "|", "&^"]);
    }

    #[test]
    fn numbers_and_strings() {
        let toks = kinds(r#"200 1.5 .5 1e3 1i 0x1F "a\"b" `r\aw` 'c'"#);
        let got: Vec<Tok> = toks.iter().map(|t| t.0).collect();
        assert_eq!(
            got,
            [
                Tok::Int,
                Tok::Float,
                Tok::Float,
                Tok::Float,
                Tok::Imag,
                Tok::Int,
                Tok::String,
                Tok::String,
                Tok::Char,
                Tok::Semicolon,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn newline_after_operand_inserts_semicolon() {
        let toks = kinds("a\n== b");
        assert_eq!(toks.get(1), Some(&(Tok::Semicolon, "\n".to_string())));
        let toks = kinds("a ==\nb");
        assert!(toks.iter().take(3).all(|t| t.0 != Tok::Semicolon));
    }

    #[test]
    fn keywords_are_not_identifiers() {
        assert_eq!(kinds("map").first().map(|t| t.0), Some(Tok::Keyword));
    }

    #[test]
    fn unquote_matches_go() {
        assert_eq!(unquote(r#""a\n\"b""#).as_deref(), Ok("a\n\"b"));
        assert_eq!(unquote("`a\\b`").as_deref(), Ok("a\\b"));
        assert_eq!(unquote("'a'").as_deref(), Ok("a"));
        assert_eq!(unquote(r#""\u00e9\x41\101""#).as_deref(), Ok("éAA"));
        assert_eq!(unquote("1i"), Err("invalid syntax"));
        assert_eq!(unquote(r#""\q""#), Err("invalid syntax"));
    }
}
