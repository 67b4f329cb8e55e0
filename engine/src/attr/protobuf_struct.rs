//! A hand-written protobuf wire-format codec for `google.protobuf.Struct`, `Value` and
//! `ListValue` (`google/protobuf/struct.proto`), with values held as [`serde_json::Value`].
//!
//! Schema (field numbers are what the wire carries):
//!
//! ```text
//! message Struct    { map<string, Value> fields = 1; }   // entry: key = 1, value = 2
//! message Value     { oneof kind { NullValue null_value = 1; double number_value = 2;
//!                     string string_value = 3; bool bool_value = 4;
//!                     Struct struct_value = 5; ListValue list_value = 6; } }
//! message ListValue { repeated Value values = 1; }
//! ```
//!
//! **Encoding** matches protobuf C++'s *deterministic* serialization, which is what Istio puts
//! in `x-envoy-peer-metadata` (`serializeToStringDeterministic` in istio/proxy
//! `extensions/common/proto_util.cc`): map entries sorted by key bytes, each entry with both its
//! key and value written, and the set `oneof` member always written (so JSON `null` is `08 00`
//! and `false` is `20 00`). JSON numbers are written as doubles.
//!
//! **Decoding** takes hostile bytes: it skips unknown fields by wire type (groups included, and a
//! known field number with the wrong wire type counts as unknown, as in protobuf), rejects
//! truncated or malformed input, invalid UTF-8 in strings, and caps input size, nesting depth
//! and element count ([`Limits`]). Protobuf semantics kept: a repeated map key or `oneof` member
//! keeps the last occurrence; a `Value` with no kind set, and `null_value` of any enum number,
//! decode as `null`. Deviations: numbers always come back as f64 (`1` encodes and decodes as
//! `1.0`); NaN and ±infinity, which JSON cannot hold, decode as `null`; a message field that
//! occurs twice keeps the last occurrence instead of being merged.

use serde_json::{Map, Number, Value};
use std::fmt;

/// Default maximum nesting of Structs and ListValues (the top-level Struct is depth 1).
pub const DEFAULT_MAX_DEPTH: usize = 32;
/// Default maximum input size in bytes.
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024;
/// Default maximum number of decoded elements (every Value and every map entry counts one).
pub const DEFAULT_MAX_ELEMENTS: usize = 8 * 1024;

/// Caps applied while decoding (and, for depth, while encoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum nesting of Struct/ListValue containers; also bounds group nesting when skipping.
    pub max_depth: usize,
    /// Maximum input length in bytes.
    pub max_bytes: usize,
    /// Maximum number of Values plus map entries.
    pub max_elements: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_depth: DEFAULT_MAX_DEPTH, max_bytes: DEFAULT_MAX_BYTES, max_elements: DEFAULT_MAX_ELEMENTS }
    }
}

/// Why bytes could not be decoded (or a value encoded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtoError {
    /// The input is longer than [`Limits::max_bytes`].
    TooLarge { limit: usize },
    /// Containers (or groups) nest deeper than [`Limits::max_depth`].
    TooDeep { limit: usize },
    /// More elements than [`Limits::max_elements`].
    TooManyElements { limit: usize },
    /// The input ends inside a tag, varint, fixed-size value, length-delimited field or group.
    Truncated,
    /// A varint longer than 10 bytes.
    MalformedVarint,
    /// A tag with field number 0 or beyond 32 bits.
    InvalidTag,
    /// Wire type 6 or 7.
    InvalidWireType(u8),
    /// An end-group tag with no matching start group.
    UnmatchedEndGroup,
    /// A string field that is not UTF-8.
    InvalidUtf8,
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::TooLarge { limit } => write!(f, "protobuf: input exceeds {limit} bytes"),
            ProtoError::TooDeep { limit } => write!(f, "protobuf: nesting exceeds depth {limit}"),
            ProtoError::TooManyElements { limit } => {
                write!(f, "protobuf: more than {limit} elements")
            }
            ProtoError::Truncated => f.write_str("protobuf: truncated input"),
            ProtoError::MalformedVarint => f.write_str("protobuf: malformed varint"),
            ProtoError::InvalidTag => f.write_str("protobuf: invalid tag"),
            ProtoError::InvalidWireType(w) => write!(f, "protobuf: invalid wire type {w}"),
            ProtoError::UnmatchedEndGroup => f.write_str("protobuf: unmatched end group"),
            ProtoError::InvalidUtf8 => f.write_str("protobuf: string is not UTF-8"),
        }
    }
}

impl std::error::Error for ProtoError {}

// Wire types.
const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;
const SGROUP: u8 = 3;
const EGROUP: u8 = 4;
const I32: u8 = 5;

// ---------------------------------------------------------------------------------------------
// Encoding

/// Serializes a `google.protobuf.Struct` whose fields are `fields`.
///
/// Fails only when the value nests deeper than [`DEFAULT_MAX_DEPTH`].
pub fn encode_struct(fields: &Map<String, Value>) -> Result<Vec<u8>, ProtoError> {
    let mut out = Vec::new();
    put_struct(&mut out, fields, 1, DEFAULT_MAX_DEPTH)?;
    Ok(out)
}

/// Serializes an `envoy.config.core.v3.Metadata` whose `filter_metadata` holds `entries` (the
/// form Envoy's `metadata` property has; what [`filter_metadata`] reads). Tests only: Envoy
/// writes it, the filters never do.
#[cfg(test)]
pub fn encode_filter_metadata(entries: &[(&str, &Map<String, Value>)]) -> Result<Vec<u8>, ProtoError> {
    let mut out = Vec::new();
    for (filter, fields) in entries {
        let mut entry = Vec::new();
        put_bytes(&mut entry, 1, filter.as_bytes());
        put_bytes(&mut entry, 2, &encode_struct(fields)?);
        put_bytes(&mut out, 1, &entry);
    }
    Ok(out)
}

/// Serializes a `google.protobuf.Value`.
pub fn encode_value(value: &Value) -> Result<Vec<u8>, ProtoError> {
    let mut out = Vec::new();
    put_value(&mut out, value, 0, DEFAULT_MAX_DEPTH)?;
    Ok(out)
}

/// Serializes a `google.protobuf.ListValue`.
pub fn encode_list(values: &[Value]) -> Result<Vec<u8>, ProtoError> {
    let mut out = Vec::new();
    put_list(&mut out, values, 1, DEFAULT_MAX_DEPTH)?;
    Ok(out)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_tag(out, field, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_struct(
    out: &mut Vec<u8>,
    fields: &Map<String, Value>,
    depth: usize,
    max_depth: usize,
) -> Result<(), ProtoError> {
    if depth > max_depth {
        return Err(ProtoError::TooDeep { limit: max_depth });
    }
    let mut entries: Vec<(&String, &Value)> = fields.iter().collect();
    crate::sorting::sort_by(&mut entries, |a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut entry = Vec::new();
    let mut value = Vec::new();
    for (k, v) in entries {
        entry.clear();
        value.clear();
        put_bytes(&mut entry, 1, k.as_bytes());
        put_value(&mut value, v, depth, max_depth)?;
        put_bytes(&mut entry, 2, &value);
        put_bytes(out, 1, &entry);
    }
    Ok(())
}

fn put_list(out: &mut Vec<u8>, values: &[Value], depth: usize, max_depth: usize) -> Result<(), ProtoError> {
    if depth > max_depth {
        return Err(ProtoError::TooDeep { limit: max_depth });
    }
    let mut value = Vec::new();
    for v in values {
        value.clear();
        put_value(&mut value, v, depth, max_depth)?;
        put_bytes(out, 1, &value);
    }
    Ok(())
}

/// Writes the fields of a Value message. `depth` is that of the enclosing container.
fn put_value(out: &mut Vec<u8>, v: &Value, depth: usize, max_depth: usize) -> Result<(), ProtoError> {
    match v {
        Value::Null => {
            put_tag(out, 1, VARINT);
            put_varint(out, 0);
        }
        Value::Number(n) => {
            put_tag(out, 2, I64);
            out.extend_from_slice(&n.as_f64().unwrap_or_default().to_le_bytes());
        }
        Value::String(s) => put_bytes(out, 3, s.as_bytes()),
        Value::Bool(b) => {
            put_tag(out, 4, VARINT);
            put_varint(out, u64::from(*b));
        }
        Value::Object(m) => {
            let mut inner = Vec::new();
            put_struct(&mut inner, m, depth + 1, max_depth)?;
            put_bytes(out, 5, &inner);
        }
        Value::Array(a) => {
            let mut inner = Vec::new();
            put_list(&mut inner, a, depth + 1, max_depth)?;
            put_bytes(out, 6, &inner);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// Parses a `google.protobuf.Struct` with the default [`Limits`].
pub fn decode_struct(bytes: &[u8]) -> Result<Map<String, Value>, ProtoError> {
    decode_struct_with(bytes, &Limits::default())
}

/// Parses a `google.protobuf.Struct` within `limits`.
pub fn decode_struct_with(bytes: &[u8], limits: &Limits) -> Result<Map<String, Value>, ProtoError> {
    Decoder::new(bytes, limits)?.struct_fields(bytes, 1)
}

/// The Struct a filter stored in a stream's dynamic metadata: `bytes` is an
/// `envoy.config.core.v3.Metadata` (`map<string, Struct> filter_metadata = 1`, what Envoy's
/// `metadata` property holds) and `filter` the entry's key (`envoy.filters.http.jwt_authn`).
pub fn filter_metadata(bytes: &[u8], filter: &str) -> Result<Option<Map<String, Value>>, ProtoError> {
    let limits = Limits::default();
    if bytes.len() > limits.max_bytes {
        return Err(ProtoError::TooLarge { limit: limits.max_bytes });
    }
    let mut reader = Reader::new(bytes);
    while !reader.at_end() {
        let (field, wire) = reader.tag()?;
        if field != 1 || wire != LEN {
            reader.skip(field, wire, 0, limits.max_depth)?;
            continue;
        }
        let mut entry = Reader::new(reader.len_delimited()?);
        let (mut key, mut value) = (None, None);
        while !entry.at_end() {
            match entry.tag()? {
                (1, LEN) => key = Some(entry.len_delimited()?),
                (2, LEN) => value = Some(entry.len_delimited()?),
                (f, w) => entry.skip(f, w, 0, limits.max_depth)?,
            }
        }
        if key == Some(filter.as_bytes()) {
            return decode_struct_with(value.unwrap_or_default(), &limits).map(Some);
        }
    }
    Ok(None)
}

/// Parses a `google.protobuf.Value` with the default [`Limits`].
pub fn decode_value(bytes: &[u8]) -> Result<Value, ProtoError> {
    decode_value_with(bytes, &Limits::default())
}

/// Parses a `google.protobuf.Value` within `limits`.
pub fn decode_value_with(bytes: &[u8], limits: &Limits) -> Result<Value, ProtoError> {
    Decoder::new(bytes, limits)?.value(bytes, 0)
}

/// Parses a `google.protobuf.ListValue` with the default [`Limits`].
pub fn decode_list(bytes: &[u8]) -> Result<Vec<Value>, ProtoError> {
    decode_list_with(bytes, &Limits::default())
}

/// Parses a `google.protobuf.ListValue` within `limits`.
pub fn decode_list_with(bytes: &[u8], limits: &Limits) -> Result<Vec<Value>, ProtoError> {
    Decoder::new(bytes, limits)?.list(bytes, 1)
}

/// A bounds-checked cursor over one message's bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn byte(&mut self) -> Result<u8, ProtoError> {
        let b = *self.buf.get(self.pos).ok_or(ProtoError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            v |= u64::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ProtoError::MalformedVarint)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        let end = self.pos.checked_add(n).ok_or(ProtoError::Truncated)?;
        let slice = self.buf.get(self.pos..end).ok_or(ProtoError::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn fixed64(&mut self) -> Result<u64, ProtoError> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }

    fn len_delimited(&mut self) -> Result<&'a [u8], ProtoError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| ProtoError::Truncated)?;
        self.take(len)
    }

    /// Reads a tag: (field number, wire type).
    fn tag(&mut self) -> Result<(u32, u8), ProtoError> {
        let t = self.varint()?;
        let t = u32::try_from(t).map_err(|_| ProtoError::InvalidTag)?;
        let field = t >> 3;
        let wire = (t & 7) as u8;
        if field == 0 {
            return Err(ProtoError::InvalidTag);
        }
        if wire > I32 {
            return Err(ProtoError::InvalidWireType(wire));
        }
        Ok((field, wire))
    }

    /// Skips the payload of a field whose tag was just read. `groups` is the current group
    /// nesting, bounded by `max_depth`.
    fn skip(&mut self, field: u32, wire: u8, groups: usize, max_depth: usize) -> Result<(), ProtoError> {
        match wire {
            VARINT => self.varint().map(drop),
            I64 => self.take(8).map(drop),
            LEN => self.len_delimited().map(drop),
            I32 => self.take(4).map(drop),
            SGROUP => {
                if groups >= max_depth {
                    return Err(ProtoError::TooDeep { limit: max_depth });
                }
                loop {
                    let (f, w) = self.tag()?;
                    if w == EGROUP {
                        return if f == field { Ok(()) } else { Err(ProtoError::UnmatchedEndGroup) };
                    }
                    self.skip(f, w, groups + 1, max_depth)?;
                }
            }
            EGROUP => Err(ProtoError::UnmatchedEndGroup),
            other => Err(ProtoError::InvalidWireType(other)),
        }
    }
}

/// Decoding state shared across one top-level message: limits and the element budget.
struct Decoder {
    max_depth: usize,
    elements_left: usize,
    max_elements: usize,
}

impl Decoder {
    fn new(bytes: &[u8], limits: &Limits) -> Result<Decoder, ProtoError> {
        if bytes.len() > limits.max_bytes {
            return Err(ProtoError::TooLarge { limit: limits.max_bytes });
        }
        Ok(Decoder {
            max_depth: limits.max_depth,
            elements_left: limits.max_elements,
            max_elements: limits.max_elements,
        })
    }

    fn count(&mut self) -> Result<(), ProtoError> {
        self.elements_left =
            self.elements_left.checked_sub(1).ok_or(ProtoError::TooManyElements { limit: self.max_elements })?;
        Ok(())
    }

    fn enter(&self, depth: usize) -> Result<(), ProtoError> {
        if depth > self.max_depth {
            Err(ProtoError::TooDeep { limit: self.max_depth })
        } else {
            Ok(())
        }
    }

    /// A Struct message at nesting `depth`.
    fn struct_fields(&mut self, bytes: &[u8], depth: usize) -> Result<Map<String, Value>, ProtoError> {
        self.enter(depth)?;
        let mut map = Map::new();
        let mut r = Reader::new(bytes);
        while !r.at_end() {
            let (field, wire) = r.tag()?;
            if field == 1 && wire == LEN {
                let entry = r.len_delimited()?;
                self.count()?;
                let (k, v) = self.entry(entry, depth)?;
                map.insert(k, v);
            } else {
                r.skip(field, wire, 0, self.max_depth)?;
            }
        }
        Ok(map)
    }

    /// A `map<string, Value>` entry inside a Struct at nesting `depth`.
    fn entry(&mut self, bytes: &[u8], depth: usize) -> Result<(String, Value), ProtoError> {
        let mut key = String::new();
        let mut value = Value::Null;
        let mut r = Reader::new(bytes);
        while !r.at_end() {
            let (field, wire) = r.tag()?;
            match (field, wire) {
                (1, LEN) => key = utf8(r.len_delimited()?)?,
                (2, LEN) => {
                    let v = r.len_delimited()?;
                    value = self.value(v, depth)?;
                }
                _ => r.skip(field, wire, 0, self.max_depth)?,
            }
        }
        Ok((key, value))
    }

    /// A ListValue message at nesting `depth`.
    fn list(&mut self, bytes: &[u8], depth: usize) -> Result<Vec<Value>, ProtoError> {
        self.enter(depth)?;
        let mut out = Vec::new();
        let mut r = Reader::new(bytes);
        while !r.at_end() {
            let (field, wire) = r.tag()?;
            if field == 1 && wire == LEN {
                let v = r.len_delimited()?;
                out.push(self.value(v, depth)?);
            } else {
                r.skip(field, wire, 0, self.max_depth)?;
            }
        }
        Ok(out)
    }

    /// A Value message inside a container at nesting `depth` (0 at top level).
    fn value(&mut self, bytes: &[u8], depth: usize) -> Result<Value, ProtoError> {
        self.count()?;
        let mut out = Value::Null;
        let mut r = Reader::new(bytes);
        while !r.at_end() {
            let (field, wire) = r.tag()?;
            match (field, wire) {
                (1, VARINT) => {
                    r.varint()?;
                    out = Value::Null;
                }
                (2, I64) => {
                    let f = f64::from_bits(r.fixed64()?);
                    out = Number::from_f64(f).map_or(Value::Null, Value::Number);
                }
                (3, LEN) => out = Value::String(utf8(r.len_delimited()?)?),
                (4, VARINT) => out = Value::Bool(r.varint()? != 0),
                (5, LEN) => {
                    let s = r.len_delimited()?;
                    out = Value::Object(self.struct_fields(s, depth + 1)?);
                }
                (6, LEN) => {
                    let l = r.len_delimited()?;
                    out = Value::Array(self.list(l, depth + 1)?);
                }
                _ => r.skip(field, wire, 0, self.max_depth)?,
            }
        }
        Ok(out)
    }
}

fn utf8(bytes: &[u8]) -> Result<String, ProtoError> {
    std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| ProtoError::InvalidUtf8)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    /// `{"NAME": "pod-1", "LABELS": {"app": "x"}}`, assembled field by field.
    fn golden_small() -> Vec<u8> {
        let mut b = Vec::new();
        // Entry "LABELS" (sorts before "NAME").
        b.extend_from_slice(&[0x0a, 0x18]); // Struct.fields, 24 bytes
        b.extend_from_slice(&[0x0a, 0x06]); //   key, 6 bytes
        b.extend_from_slice(b"LABELS");
        b.extend_from_slice(&[0x12, 0x0e]); //   value (Value), 14 bytes
        b.extend_from_slice(&[0x2a, 0x0c]); //     struct_value, 12 bytes
        b.extend_from_slice(&[0x0a, 0x0a]); //       fields, 10 bytes
        b.extend_from_slice(&[0x0a, 0x03]); //         key, 3 bytes
        b.extend_from_slice(b"app");
        b.extend_from_slice(&[0x12, 0x03]); //         value, 3 bytes
        b.extend_from_slice(&[0x1a, 0x01, b'x']); //     string_value "x"
                                                  // Entry "NAME".
        b.extend_from_slice(&[0x0a, 0x0f]); // Struct.fields, 15 bytes
        b.extend_from_slice(&[0x0a, 0x04]);
        b.extend_from_slice(b"NAME");
        b.extend_from_slice(&[0x12, 0x07, 0x1a, 0x05]);
        b.extend_from_slice(b"pod-1");
        b
    }

    /// `{"l": ["a", false], "n": 1.5, "t": true, "x": null}`.
    fn golden_scalars() -> Vec<u8> {
        let mut b = Vec::new();
        // "l": list_value [string "a", bool false]
        b.extend_from_slice(&[0x0a, 0x10, 0x0a, 0x01, b'l', 0x12, 0x0b, 0x32, 0x09]);
        b.extend_from_slice(&[0x0a, 0x03, 0x1a, 0x01, b'a', 0x0a, 0x02, 0x20, 0x00]);
        // "n": number_value 1.5 (0x3FF8000000000000, little-endian)
        b.extend_from_slice(&[0x0a, 0x0e, 0x0a, 0x01, b'n', 0x12, 0x09, 0x11]);
        b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0xf8, 0x3f]);
        // "t": bool_value true
        b.extend_from_slice(&[0x0a, 0x07, 0x0a, 0x01, b't', 0x12, 0x02, 0x20, 0x01]);
        // "x": null_value NULL_VALUE
        b.extend_from_slice(&[0x0a, 0x07, 0x0a, 0x01, b'x', 0x12, 0x02, 0x08, 0x00]);
        b
    }

    #[test]
    fn golden_encoding() {
        let m = obj(json!({"NAME": "pod-1", "LABELS": {"app": "x"}}));
        assert_eq!(encode_struct(&m).unwrap(), golden_small());
        assert_eq!(decode_struct(&golden_small()).unwrap(), m);

        let m = obj(json!({"x": null, "t": true, "n": 1.5, "l": ["a", false]}));
        assert_eq!(encode_struct(&m).unwrap(), golden_scalars());
        assert_eq!(decode_struct(&golden_scalars()).unwrap(), m);
    }

    #[test]
    fn empty_messages() {
        assert_eq!(encode_struct(&Map::new()).unwrap(), Vec::<u8>::new());
        assert_eq!(decode_struct(&[]).unwrap(), Map::new());
        assert_eq!(decode_value(&[]).unwrap(), Value::Null);
        assert_eq!(decode_list(&[]).unwrap(), Vec::<Value>::new());
        // An empty key and an empty string value are still written.
        let m = obj(json!({"": ""}));
        let bytes = encode_struct(&m).unwrap();
        assert_eq!(bytes, [0x0a, 0x06, 0x0a, 0x00, 0x12, 0x02, 0x1a, 0x00]);
        assert_eq!(decode_struct(&bytes).unwrap(), m);
        // An entry without key or value decodes as "" → null.
        assert_eq!(decode_struct(&[0x0a, 0x00]).unwrap(), obj(json!({"": null})));
    }

    #[test]
    fn round_trips() {
        let samples = [
            json!({}),
            json!({"a": 1.25, "b": -0.0, "c": 1e300, "d": -2.5e-300}),
            json!({"s": "héllo \u{0} \u{10FFFF}", "e": "", "k\u{e9}y": [[], {}, [[1.0]]]}),
            json!({"nested": {"deeper": {"list": [null, true, false, "x", 3.5, {"z": [1.0]}]}}}),
            json!({"LABELS": {"app": "reviews", "version": "v3"}, "NAME": "reviews-v3-abc"}),
        ];
        for s in samples {
            let m = obj(s);
            let bytes = encode_struct(&m).unwrap();
            assert_eq!(decode_struct(&bytes).unwrap(), m);
        }
        for v in [json!(null), json!(true), json!(2.5), json!("s"), json!([1.5, "a"]), json!({"a": {}})] {
            assert_eq!(decode_value(&encode_value(&v).unwrap()).unwrap(), v);
        }
        let list = vec![json!("a"), json!(null), json!([false])];
        assert_eq!(decode_list(&encode_list(&list).unwrap()).unwrap(), list);
    }

    #[test]
    fn integers_come_back_as_doubles() {
        let m = obj(json!({"n": 7, "big": u64::MAX, "neg": -3}));
        let back = decode_struct(&encode_struct(&m).unwrap()).unwrap();
        assert_eq!(back, obj(json!({"n": 7.0, "big": 18446744073709551615.0, "neg": -3.0})));
    }

    #[test]
    fn keys_are_sorted_bytewise_and_duplicates_keep_the_last() {
        let m = obj(json!({"b": 1.0, "B": 2.0, "a": 3.0, "\u{e9}": 4.0}));
        let bytes = encode_struct(&m).unwrap();
        let keys: Vec<u8> = bytes.windows(3).filter(|w| w[0] == 0x0a && w[1] == 0x01).map(|w| w[2]).collect();
        assert_eq!(keys, b"Bab");
        // Two entries for "k": the second wins, as with protobuf maps.
        let mut dup = Vec::new();
        dup.extend_from_slice(&[0x0a, 0x07, 0x0a, 0x01, b'k', 0x12, 0x02, 0x20, 0x01]);
        dup.extend_from_slice(&[0x0a, 0x08, 0x0a, 0x01, b'k', 0x12, 0x03, 0x1a, 0x01, b'v']);
        assert_eq!(decode_struct(&dup).unwrap(), obj(json!({"k": "v"})));
        // Two kinds in one Value: the last wins (oneof).
        assert_eq!(decode_value(&[0x20, 0x01, 0x1a, 0x01, b'z']).unwrap(), json!("z"));
        assert_eq!(decode_value(&[0x1a, 0x01, b'z', 0x08, 0x00]).unwrap(), json!(null));
    }

    #[test]
    fn skips_unknown_fields() {
        let mut b = golden_small();
        // Unknown Struct fields of every wire type, including a nested group.
        b.extend_from_slice(&[0x10, 0x96, 0x01]); // field 2 varint 150
        b.extend_from_slice(&[0x19, 1, 2, 3, 4, 5, 6, 7, 8]); // field 3 fixed64
        b.extend_from_slice(&[0x22, 0x02, 0xff, 0xfe]); // field 4 bytes (not UTF-8: unknown, fine)
        b.extend_from_slice(&[0x2d, 1, 2, 3, 4]); // field 5 fixed32
        b.extend_from_slice(&[0x33, 0x08, 0x01, 0x43, 0x44, 0x34]); // group 6 { 1: 1, group 8 {} }
        b.extend_from_slice(&[0xf8, 0xff, 0xff, 0xff, 0x0f, 0x00]); // field 2^29-1 varint 0
                                                                    // Field 1 with the wrong wire type is treated as unknown.
        b.extend_from_slice(&[0x08, 0x05]);
        assert_eq!(decode_struct(&b).unwrap(), obj(json!({"NAME": "pod-1", "LABELS": {"app": "x"}})));

        // Unknown fields inside an entry (field 3) and inside a Value (fields 7 and 8).
        let value = [0x38, 0x07, 0x20, 0x01, 0x40, 0x00];
        let mut entry = vec![0x18, 0x01, 0x0a, 0x01, b'k', 0x12, value.len() as u8];
        entry.extend_from_slice(&value);
        let mut b = vec![0x0a, entry.len() as u8];
        b.extend_from_slice(&entry);
        assert_eq!(decode_struct(&b).unwrap(), obj(json!({"k": true})));
        // Known Value field numbers with wrong wire types are skipped too.
        assert_eq!(decode_value(&[0x1d, 1, 2, 3, 4, 0x20, 0x01]).unwrap(), json!(true));
        assert_eq!(decode_value(&[0x10, 0x05]).unwrap(), json!(null));
    }

    #[test]
    fn rejects_malformed_input() {
        use ProtoError::*;
        // Length beyond the end.
        assert_eq!(decode_struct(&[0x0a, 0x05, 0x0a]), Err(Truncated));
        // Tag cut short, varint cut short, fixed64 cut short.
        assert_eq!(decode_struct(&[0x80]), Err(Truncated));
        assert_eq!(decode_value(&[0x08, 0x80]), Err(Truncated));
        assert_eq!(decode_value(&[0x11, 0, 0, 0]), Err(Truncated));
        assert_eq!(decode_value(&[0x2d, 0, 0]), Err(Truncated));
        // Eleven-byte varint.
        assert_eq!(
            decode_value(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(MalformedVarint)
        );
        // Huge length.
        assert_eq!(decode_struct(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), Err(Truncated));
        // Field number 0, tags beyond 32 bits, wire types 6 and 7.
        assert_eq!(decode_struct(&[0x02, 0x00]), Err(InvalidTag));
        assert_eq!(decode_struct(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), Err(InvalidTag));
        assert_eq!(decode_struct(&[0x0e]), Err(InvalidWireType(6)));
        assert_eq!(decode_struct(&[0x0f]), Err(InvalidWireType(7)));
        // Stray end group, mismatched end group, unterminated group.
        assert_eq!(decode_struct(&[0x0c]), Err(UnmatchedEndGroup));
        assert_eq!(decode_struct(&[0x13, 0x1c]), Err(UnmatchedEndGroup));
        assert_eq!(decode_struct(&[0x13, 0x08, 0x01]), Err(Truncated));
        // Invalid UTF-8 in a key and in a string value.
        assert_eq!(decode_struct(&[0x0a, 0x03, 0x0a, 0x01, 0xff]), Err(InvalidUtf8));
        assert_eq!(decode_value(&[0x1a, 0x02, 0xc3, 0x28]), Err(InvalidUtf8));
        // Malformed nested message surfaces from inside.
        assert_eq!(decode_value(&[0x2a, 0x02, 0x0a, 0x05]), Err(Truncated));
    }

    #[test]
    fn every_strict_prefix_of_a_nested_message_fails_or_decodes_without_panic() {
        let full = golden_small();
        for cut in 0..full.len() {
            let r = decode_struct(&full[..cut]);
            // A cut right after the first entry (26 bytes) is itself a valid Struct.
            if cut == 0 || cut == 26 {
                assert!(r.is_ok(), "cut {cut}");
            } else {
                assert!(r.is_err(), "cut {cut}");
            }
        }
    }

    fn nested_lists(levels: usize) -> Value {
        let mut v = json!(1.0);
        for _ in 0..levels {
            v = Value::Array(vec![v]);
        }
        v
    }

    #[test]
    fn depth_is_capped_on_encode_and_decode() {
        // {"a": [[...[1.0]...]]}: top Struct at depth 1, then `levels` lists.
        let ok = obj(json!({"a": nested_lists(DEFAULT_MAX_DEPTH - 1)}));
        let bytes = encode_struct(&ok).unwrap();
        assert_eq!(decode_struct(&bytes).unwrap(), ok);
        let too_deep = obj(json!({"a": nested_lists(DEFAULT_MAX_DEPTH)}));
        assert_eq!(encode_struct(&too_deep), Err(ProtoError::TooDeep { limit: DEFAULT_MAX_DEPTH }));
        let tight = Limits { max_depth: 3, ..Limits::default() };
        assert_eq!(decode_struct_with(&bytes, &tight), Err(ProtoError::TooDeep { limit: 3 }));

        // A hostile 100 000-level ListValue nest built directly as bytes is rejected quickly.
        let mut b: Vec<u8> = vec![0x08, 0x00];
        for _ in 0..100_000 {
            let mut outer = Vec::with_capacity(b.len() + 12);
            // Value{list_value: ListValue{values: [b]}}, lengths as varints.
            let mut list = Vec::with_capacity(b.len() + 6);
            put_bytes(&mut list, 1, &b);
            put_bytes(&mut outer, 6, &list);
            b = outer;
            if b.len() > 8_000 {
                break;
            }
        }
        assert_eq!(decode_value(&b), Err(ProtoError::TooDeep { limit: DEFAULT_MAX_DEPTH }));

        // Deeply nested unknown groups are bounded too.
        let mut g = vec![0x13; 1000];
        g.extend(std::iter::repeat_n(0x14, 1000));
        assert_eq!(decode_struct(&g), Err(ProtoError::TooDeep { limit: DEFAULT_MAX_DEPTH }));
    }

    #[test]
    fn size_and_element_limits() {
        let bytes = golden_small();
        let small = Limits { max_bytes: bytes.len() - 1, ..Limits::default() };
        assert_eq!(decode_struct_with(&bytes, &small), Err(ProtoError::TooLarge { limit: bytes.len() - 1 }));
        // golden_small holds 3 entries (LABELS, app, NAME) + 3 Values = 6 elements.
        let six = Limits { max_elements: 6, ..Limits::default() };
        assert!(decode_struct_with(&bytes, &six).is_ok());
        let five = Limits { max_elements: 5, ..Limits::default() };
        assert_eq!(decode_struct_with(&bytes, &five), Err(ProtoError::TooManyElements { limit: 5 }));
    }

    #[test]
    fn non_finite_numbers_decode_as_null() {
        let nan = f64::NAN.to_bits().to_le_bytes();
        let mut b = vec![0x11];
        b.extend_from_slice(&nan);
        assert_eq!(decode_value(&b).unwrap(), Value::Null);
        let mut b = vec![0x11];
        b.extend_from_slice(&f64::INFINITY.to_bits().to_le_bytes());
        assert_eq!(decode_value(&b).unwrap(), Value::Null);
    }

    #[test]
    fn never_panics_on_random_or_mutated_bytes() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let seeds = [golden_small(), golden_scalars()];
        for i in 0..20_000 {
            let mut b = if i % 2 == 0 {
                let len = (next() % 48) as usize;
                (0..len).map(|_| next() as u8).collect::<Vec<u8>>()
            } else {
                seeds[i % 4 / 2].clone()
            };
            if i % 2 == 1 {
                for _ in 0..=(next() % 4) {
                    let at = (next() as usize) % b.len();
                    b[at] = next() as u8;
                }
            }
            let _ = decode_struct(&b);
            let _ = decode_value(&b);
            let _ = decode_list(&b);
        }
    }

    #[test]
    fn errors_display() {
        assert_eq!(ProtoError::InvalidWireType(7).to_string(), "protobuf: invalid wire type 7");
        assert_eq!(ProtoError::TooDeep { limit: 32 }.to_string(), "protobuf: nesting exceeds depth 32");
    }
}
