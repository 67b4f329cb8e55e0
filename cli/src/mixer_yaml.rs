//! Multi-document YAML, the `kubectl apply` style, read into JSON values together with the line
//! and column of every node, so that a problem is reported where the user wrote it.
//!
//! Scalars are resolved as Kubernetes did when such files were applied (sigs.k8s.io/yaml over
//! go-yaml v2, YAML 1.1 rules): `yes`/`no`/`on`/`off` are booleans, `~` is null, `0x1f` and
//! `0o17` are integers. Anchors, aliases and `<<` merge keys work. A repeated key keeps its last
//! value, with a warning.
//!
//! Aliases are bounded as kubectl's YAML library (go-yaml, since v2.2.8) bounds them: every alias
//! copies its anchored value, so nine references over ten levels ("billion laughs") would make a
//! 540-byte file expand to 10^9 nodes. A document whose aliases would copy more nodes than
//! [`alias_budget`] allows, a share of the nodes it actually holds, fails with
//! [`EXCESSIVE_ALIASING`] before the copy is made.

use std::collections::HashMap;

use serde_json::{Map, Number, Value as Json};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A place in a file: 1-based line and column (columns count characters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    fn of(m: &Marker) -> Pos {
        Pos { line: m.line(), col: m.col() + 1 }
    }
}

/// How a node was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Block,
    Collection,
    Alias,
}

/// Where a node is, and for a scalar how it was written.
#[derive(Clone, Debug)]
pub struct Span {
    pub pos: Pos,
    pub style: Style,
    /// The scalar's text (after YAML unquoting), for scalars.
    pub text: Option<String>,
}

/// One document of a file.
#[derive(Clone, Debug)]
pub struct Document {
    /// 1-based number of the document in its file (empty documents count).
    pub number: usize,
    /// Where the document's content starts.
    pub pos: Pos,
    pub value: Json,
    spans: HashMap<String, Span>,
    /// Where the key of each mapping value is written.
    keys: HashMap<String, Pos>,
    /// Problems that do not stop the document from being read (duplicate keys).
    pub warnings: Vec<(Pos, String)>,
}

/// A syntax error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

impl Document {
    /// The span of the node at `path` (`spec.actions[0].handler`), if that node exists.
    pub fn span(&self, path: &str) -> Option<&Span> {
        self.spans.get(path)
    }

    /// The position of `path`, or of its nearest written ancestor, or of the document.
    pub fn locate(&self, path: &str) -> Pos {
        let mut p = path;
        loop {
            if let Some(s) = self.spans.get(p) {
                // A mapping or list is best shown at its key (`metadata:`), a scalar at its value.
                if s.style == Style::Collection {
                    if let Some(k) = self.keys.get(p) {
                        return *k;
                    }
                }
                return s.pos;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = p.get(..i).unwrap_or(""),
                None => return self.pos,
            }
        }
    }

    /// The file position of character `position` (1-based) of the scalar at `path`, when the
    /// scalar's text stands verbatim in `source` (a one-line plain or quoted scalar without
    /// escapes); otherwise the scalar's own position.
    pub fn locate_in_scalar(&self, path: &str, position: usize, source: &str) -> Pos {
        let Some(span) = self.spans.get(path) else {
            return self.locate(path);
        };
        let (Some(text), quote) = (
            span.text.as_deref(),
            match span.style {
                Style::Plain => Some(0),
                Style::SingleQuoted | Style::DoubleQuoted => Some(1),
                _ => None,
            },
        ) else {
            return span.pos;
        };
        let Some(quote) = quote else { return span.pos };
        let Some(line) = source.lines().nth(span.pos.line.saturating_sub(1)) else {
            return span.pos;
        };
        let start = span.pos.col - 1 + quote;
        let written: String = line.chars().skip(start).take(text.chars().count()).collect();
        if written != text || text.contains('\n') {
            return span.pos;
        }
        Pos { line: span.pos.line, col: start + position.max(1) }
    }
}

/// The error of a document whose aliases expand too far (see [`alias_budget`]).
pub const EXCESSIVE_ALIASING: &str =
    "document contains excessive aliasing (its aliases would copy far more nodes than it holds; a YAML alias bomb?)";

/// Whether a document that will have decoded `decoded` nodes, `aliased` of them copies made by
/// aliases, is within go-yaml's bound (`allowedAliasRatio` in its decode.go): small documents
/// may get 99 % of their nodes from aliases, documents past 4,000,000 nodes 10 %, with a linear
/// scale between 400,000 and 4,000,000. The allowed copies thus grow with the nodes written in
/// the file, which grow with its size; the worst a document can do is about 400,000 copied
/// nodes (tens of MB) per 4,000 nodes written.
pub fn alias_budget(decoded: usize, aliased: usize) -> bool {
    const LOW: f64 = 400_000.0;
    const HIGH: f64 = 4_000_000.0;
    if aliased <= 100 || decoded <= 1000 {
        return true;
    }
    let d = decoded as f64;
    let ratio = if d <= LOW {
        0.99
    } else if d >= HIGH {
        0.10
    } else {
        0.99 - 0.89 * ((d - LOW) / (HIGH - LOW))
    };
    aliased as f64 / d <= ratio
}

/// Parses every document of `text`. Documents read before a syntax error are returned with it.
pub fn parse_documents(text: &str) -> (Vec<Document>, Option<YamlError>) {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    let result = parser.load(&mut builder, true);
    let error = match result {
        Ok(()) => builder.error.take(),
        Err(e) => Some(YamlError { pos: Pos::of(e.marker()), message: e.info().to_string() }),
    };
    (builder.docs, error)
}

enum Frame {
    Seq {
        path: String,
        pos: Pos,
        anchor: usize,
        items: Vec<Json>,
        /// Nodes of this collection so far, itself included (for the alias bound).
        nodes: usize,
    },
    Map {
        path: String,
        pos: Option<Pos>,
        anchor: usize,
        map: Map<String, Json>,
        key: Option<String>,
        key_pos: Option<Pos>,
        merges: Vec<Json>,
        /// Nodes of this collection so far, itself included (for the alias bound).
        nodes: usize,
    },
}

#[derive(Default)]
struct Builder {
    docs: Vec<Document>,
    stack: Vec<Frame>,
    /// Each anchored value with its number of nodes.
    anchors: HashMap<usize, (Json, usize)>,
    spans: HashMap<String, Span>,
    keys: HashMap<String, Pos>,
    warnings: Vec<(Pos, String)>,
    doc_pos: Option<Pos>,
    doc_start: Pos,
    root: Option<Json>,
    count: usize,
    error: Option<YamlError>,
    /// Nodes of the current document, copies made by aliases included, and those copies alone:
    /// the alias bound's two counts.
    decoded: usize,
    aliased: usize,
}

fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl Builder {
    /// The path of the next value node, or `None` when the next node is a mapping key.
    fn next_path(&self) -> Option<String> {
        match self.stack.last() {
            None => Some(String::new()),
            Some(Frame::Seq { path, items, .. }) => Some(format!("{path}[{}]", items.len())),
            Some(Frame::Map { path, key: Some(k), .. }) => Some(child_path(path, k)),
            Some(Frame::Map { key: None, .. }) => None,
        }
    }

    fn fail(&mut self, pos: Pos, message: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some(YamlError { pos, message: message.into() });
        }
    }

    /// Delivers a finished value of `nodes` nodes to its parent (or makes it the document's root).
    fn deliver(&mut self, value: Json, nodes: usize, anchor: usize, pos: Pos) {
        if anchor > 0 {
            self.anchors.insert(anchor, (value.clone(), nodes));
        }
        if self.doc_pos.is_none() {
            self.doc_pos = Some(pos);
        }
        let mut duplicate = None;
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq { items, nodes: n, .. }) => {
                *n = n.saturating_add(nodes);
                items.push(value)
            }
            Some(Frame::Map { map, key, merges, nodes: n, .. }) => {
                *n = n.saturating_add(nodes);
                if let Some(k) = key.take() {
                    if k == "<<" {
                        merges.push(value);
                    } else {
                        if map.contains_key(&k) {
                            duplicate = Some(k.clone());
                        }
                        map.insert(k, value);
                    }
                }
            }
        }
        if let Some(k) = duplicate {
            self.warnings.push((pos, format!("key {k:?} is repeated; its last value is used")));
        }
    }

    fn scalar(&mut self, text: String, style: TScalarStyle, anchor: usize, tag: Option<Tag>, mark: &Marker) {
        let pos = Pos::of(mark);
        match self.next_path() {
            None => {
                // A mapping key.
                if let Some(Frame::Map { key, key_pos, pos: map_pos, .. }) = self.stack.last_mut() {
                    *key = Some(text);
                    *key_pos = Some(pos);
                    if map_pos.is_none() {
                        *map_pos = Some(pos);
                    }
                }
                if self.doc_pos.is_none() {
                    self.doc_pos = Some(pos);
                }
            }
            Some(path) => {
                self.note_key(&path);
                let value = resolve(&text, style, tag.as_ref());
                let st = match style {
                    TScalarStyle::Plain => Style::Plain,
                    TScalarStyle::SingleQuoted => Style::SingleQuoted,
                    TScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                    TScalarStyle::Literal | TScalarStyle::Folded => Style::Block,
                };
                self.spans.insert(path, Span { pos, style: st, text: Some(text) });
                self.decoded = self.decoded.saturating_add(1);
                self.deliver(value, 1, anchor, pos);
            }
        }
    }

    fn start(&mut self, seq: bool, anchor: usize, mark: &Marker) {
        let pos = Pos::of(mark);
        let Some(path) = self.next_path() else {
            self.fail(pos, "a mapping key must be a plain value, not a mapping or a list");
            // Keep the structure consistent: treat it as a value under a placeholder key.
            if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                *key = Some("?".to_string());
            }
            let path = self.next_path().unwrap_or_default();
            self.push(seq, path, anchor, pos);
            return;
        };
        self.push(seq, path, anchor, pos);
    }

    /// Remembers where the key of the value at `path` is.
    fn note_key(&mut self, path: &str) {
        if let Some(Frame::Map { key: Some(_), key_pos: Some(kp), .. }) = self.stack.last() {
            self.keys.insert(path.to_string(), *kp);
        }
    }

    fn push(&mut self, seq: bool, path: String, anchor: usize, pos: Pos) {
        self.note_key(&path);
        self.decoded = self.decoded.saturating_add(1);
        if seq {
            self.spans.insert(path.clone(), Span { pos, style: Style::Collection, text: None });
            self.stack.push(Frame::Seq { path, pos, anchor, items: Vec::new(), nodes: 1 });
        } else {
            // A block mapping's mark points past its first key; the first key gives the position.
            self.stack.push(Frame::Map {
                path,
                pos: None,
                anchor,
                map: Map::new(),
                key: None,
                key_pos: None,
                merges: Vec::new(),
                nodes: 1,
            });
        }
    }

    fn end(&mut self, mark: &Marker) {
        match self.stack.pop() {
            Some(Frame::Seq { anchor, items, pos, nodes, .. }) => self.deliver(Json::Array(items), nodes, anchor, pos),
            Some(Frame::Map { path, pos, anchor, mut map, merges, nodes, .. }) => {
                for m in merges {
                    let sources = match m {
                        Json::Array(list) => list,
                        other => vec![other],
                    };
                    for s in sources {
                        if let Json::Object(entries) = s {
                            for (k, v) in entries {
                                map.entry(k).or_insert(v);
                            }
                        }
                    }
                }
                let pos = pos.unwrap_or_else(|| Pos::of(mark));
                self.spans.insert(path, Span { pos, style: Style::Collection, text: None });
                self.deliver(Json::Object(map), nodes, anchor, pos);
            }
            None => {}
        }
    }
}

impl Builder {
    /// A copy of the value anchored as `id`, with its node count; `null` (and an error) when the
    /// anchor is unknown, when the copy would break the alias bound, or once the document has
    /// failed (so that a bomb's remaining aliases copy nothing).
    fn expand_alias(&mut self, id: usize, pos: Pos) -> (Json, usize) {
        if self.error.is_some() {
            return (Json::Null, 1);
        }
        let Some((value, nodes)) = self.anchors.get(&id) else {
            self.fail(pos, "alias to an unknown anchor");
            return (Json::Null, 1);
        };
        let decoded = self.decoded.saturating_add(*nodes);
        let aliased = self.aliased.saturating_add(*nodes);
        if !alias_budget(decoded, aliased) {
            self.fail(pos, EXCESSIVE_ALIASING);
            return (Json::Null, 1);
        }
        let copy = (value.clone(), *nodes);
        self.decoded = decoded;
        self.aliased = aliased;
        copy
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::DocumentStart => {
                self.count += 1;
                self.doc_start = Pos::of(&mark);
                self.doc_pos = None;
                self.root = None;
                self.stack.clear();
                self.spans = HashMap::new();
                self.keys = HashMap::new();
                self.warnings = Vec::new();
                self.decoded = 0;
                self.aliased = 0;
            }
            Event::DocumentEnd => {
                let value = self.root.take().unwrap_or(Json::Null);
                self.docs.push(Document {
                    number: self.count,
                    pos: self.doc_pos.unwrap_or(self.doc_start),
                    value,
                    spans: std::mem::take(&mut self.spans),
                    keys: std::mem::take(&mut self.keys),
                    warnings: std::mem::take(&mut self.warnings),
                });
            }
            Event::Scalar(text, style, anchor, tag) => self.scalar(text, style, anchor, tag, &mark),
            Event::SequenceStart(anchor, _) => self.start(true, anchor, &mark),
            Event::MappingStart(anchor, _) => self.start(false, anchor, &mark),
            Event::SequenceEnd | Event::MappingEnd => self.end(&mark),
            Event::Alias(id) => {
                let pos = Pos::of(&mark);
                match self.next_path() {
                    None => self.fail(pos, "an alias cannot be a mapping key"),
                    Some(path) => {
                        self.note_key(&path);
                        let (value, nodes) = self.expand_alias(id, pos);
                        self.spans.insert(path, Span { pos, style: Style::Alias, text: None });
                        self.deliver(value, nodes, 0, pos);
                    }
                }
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd => {}
        }
    }
}

/// A scalar's value, with go-yaml v2's (YAML 1.1) resolution of plain scalars.
pub fn resolve(text: &str, style: TScalarStyle, tag: Option<&Tag>) -> Json {
    if let Some(t) = tag {
        if t.suffix == "str" || t.suffix == "tag:yaml.org,2002:str" {
            return Json::String(text.to_string());
        }
    }
    if style != TScalarStyle::Plain {
        return Json::String(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Json::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => return Json::Bool(true),
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Json::Bool(false)
        }
        _ => {}
    }
    if let Some(n) = resolve_int(text) {
        return n;
    }
    if let Some(f) = resolve_float(text) {
        return f;
    }
    Json::String(text.to_string())
}

fn resolve_int(text: &str) -> Option<Json> {
    let plain: String = text.chars().filter(|c| *c != '_').collect();
    let (neg, digits) = match plain.as_bytes().first() {
        Some(b'-') => (true, plain.get(1..)?),
        Some(b'+') => (false, plain.get(1..)?),
        _ => (false, plain.as_str()),
    };
    if digits.is_empty() {
        return None;
    }
    let (radix, body) = if let Some(h) = digits.strip_prefix("0x") {
        (16, h)
    } else if let Some(b) = digits.strip_prefix("0b") {
        (2, b)
    } else if let Some(o) = digits.strip_prefix("0o") {
        (8, o)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, digits.get(1..)?)
    } else {
        (10, digits)
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(body, radix).ok()?;
    if neg {
        let v = i64::try_from(magnitude).ok().map(|m| -m).or((magnitude == 1u64 << 63).then_some(i64::MIN))?;
        Some(Json::Number(Number::from(v)))
    } else {
        Some(Json::Number(Number::from(magnitude)))
    }
}

fn resolve_float(text: &str) -> Option<Json> {
    let t = text.strip_prefix(['+', '-']).unwrap_or(text);
    let mut seen_digit = false;
    let mut seen_exp = false;
    let mut chars = t.chars().peekable();
    let mut seen_dot = false;
    while let Some(c) = chars.next() {
        match c {
            '0'..='9' => seen_digit = true,
            '.' if !seen_dot && !seen_exp => seen_dot = true,
            'e' | 'E' if seen_digit && !seen_exp => {
                seen_exp = true;
                if matches!(chars.peek(), Some('+' | '-')) {
                    chars.next();
                }
                if !matches!(chars.peek(), Some('0'..='9')) {
                    return None;
                }
            }
            _ => return None,
        }
    }
    if !seen_digit {
        return None;
    }
    let v: f64 = text.parse().ok()?;
    Number::from_f64(v).map(Json::Number)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_values_and_positions() {
        let text = "# c\nkind: \"x\"\nmetadata:\n  name: a\n  n: 7\n  flag: yes\n---\n---\n- 1\n- &a {b: c}\n- *a\n";
        let (docs, err) = parse_documents(text);
        assert!(err.is_none());
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0].value, json!({"kind": "x", "metadata": {"name": "a", "n": 7, "flag": true}}));
        assert_eq!(docs[0].pos, Pos { line: 2, col: 1 });
        assert_eq!(docs[0].locate("metadata.name"), Pos { line: 4, col: 9 });
        assert_eq!(docs[0].locate("metadata.nope.deeper"), Pos { line: 3, col: 1 });
        assert_eq!(docs[0].locate("kind"), Pos { line: 2, col: 7 });
        assert_eq!(docs[1].value, Json::Null);
        assert_eq!(docs[2].number, 3);
        assert_eq!(docs[2].value, json!([1, {"b": "c"}, {"b": "c"}]));
    }

    #[test]
    fn expression_positions_map_into_the_file() {
        let text = "spec:\n  match: a == \"b\"\n  q: 'x y'\n  folded: a\n    b\n";
        let (docs, _) = parse_documents(text);
        let d = &docs[0];
        assert_eq!(d.locate_in_scalar("spec.match", 1, text), Pos { line: 2, col: 10 });
        assert_eq!(d.locate_in_scalar("spec.match", 6, text), Pos { line: 2, col: 15 });
        assert_eq!(d.locate_in_scalar("spec.q", 3, text), Pos { line: 3, col: 9 });
        // Folded over two lines: the scalar's start.
        assert_eq!(d.locate_in_scalar("spec.folded", 3, text), Pos { line: 4, col: 11 });
    }

    #[test]
    fn yaml_1_1_scalars_merges_and_duplicates() {
        let text = "a: ~\nb: 0x1F\nc: 010\nd: -3\ne: 1.5\nf: '1'\ng: off\nh: 1e3\ni: .5\nj: 1_000\nbase: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\nk: 1\nk: 2\n";
        let (docs, err) = parse_documents(text);
        assert!(err.is_none());
        let v = &docs[0].value;
        assert_eq!(v["a"], Json::Null);
        assert_eq!(v["b"], json!(31));
        assert_eq!(v["c"], json!(8));
        assert_eq!(v["d"], json!(-3));
        assert_eq!(v["e"], json!(1.5));
        assert_eq!(v["f"], json!("1"));
        assert_eq!(v["g"], json!(false));
        assert_eq!(v["h"], json!(1000.0));
        assert_eq!(v["i"], json!(0.5));
        assert_eq!(v["j"], json!(1000));
        assert_eq!(v["m"], json!({"x": 1, "y": 3}));
        assert_eq!(v["k"], json!(2));
        assert_eq!(
            docs[0].warnings,
            [(Pos { line: 16, col: 4 }, "key \"k\" is repeated; its last value is used".to_string())]
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        let (docs, err) = parse_documents("a: b\n---\nc: d\n e: [\n");
        assert_eq!(docs.len(), 1);
        let err = err.unwrap();
        assert_eq!(err.pos.line, 4);
        assert!(err.message.contains("mapping values are not allowed"), "{}", err.message);
    }

    /// Go-yaml's "billion laughs" test: nine aliases per level, ten levels, 540 bytes.
    pub(crate) fn billion_laughs() -> String {
        let mut text =
            String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        for (prev, name) in
            ["a", "b", "c", "d", "e", "f", "g", "h", "i"].iter().zip(["b", "c", "d", "e", "f", "g", "h", "i", "j"])
        {
            let refs = vec![format!("*{prev}"); 9].join(",");
            text.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        text
    }

    #[test]
    fn an_alias_bomb_fails_before_it_expands() {
        let text = billion_laughs();
        assert!(text.len() < 600, "{}", text.len());
        let (docs, err) = parse_documents(&text);
        let err = err.unwrap();
        assert_eq!(err.message, EXCESSIVE_ALIASING);
        // The failing alias is on level d (9^3 = 729 nodes per copy of c passes 1,000 nodes).
        assert_eq!(err.pos.line, 4, "{err:?}");
        // The document is returned with the failed aliases as nulls: nothing large was built.
        let size = serde_json::to_string(&docs[0].value).unwrap().len();
        assert!(size < 100_000, "{size}");
    }

    #[test]
    fn ordinary_aliasing_is_allowed() {
        // A shared block referenced by many resources, as real files do: 200 references to a
        // 10-node value in a document of 1,000 written nodes.
        let mut text = String::from("base: &b {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9}\nitems:\n");
        for i in 0..200 {
            text.push_str(&format!("- {{name: n{i}, x: 1, y: 2, z: 3, <<: *b}}\n"));
        }
        let (docs, err) = parse_documents(&text);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(docs[0].value["items"][199]["i"], json!(9));
        // Pure aliasing of a small document is fine below go-yaml's floor of 1,000 nodes.
        let small = "x: &x [1, 2, 3, 4, 5, 6, 7, 8, 9]\ny: [*x, *x, *x, *x, *x, *x, *x, *x, *x, *x]\n";
        assert!(parse_documents(small).1.is_none());
    }

    #[test]
    fn the_alias_bound_is_go_yamls() {
        assert!(alias_budget(1000, 990));
        assert!(alias_budget(1001, 100));
        assert!(!alias_budget(1001, 992));
        assert!(alias_budget(10_000, 9_900));
        assert!(!alias_budget(10_000, 9_901));
        assert!(alias_budget(4_000_000, 400_000));
        assert!(!alias_budget(4_000_000, 400_001));
        assert!(!alias_budget(2_200_000, 2_200_000 / 100 * 55));
        assert!(alias_budget(2_200_000, 2_200_000 / 100 * 54));
    }
}
