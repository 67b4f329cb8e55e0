//! Typed CEXL values (istio.policy.v1beta1.ValueType) as the evaluator produces them.

use std::borrow::Cow;
use std::fmt;

use crate::gostd::net_ip::IpBytes;
use crate::gostd::time::Timestamp;

/// Mixer's `ValueType` enum: the static type of an attribute or an expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    String,
    Int64,
    Double,
    Bool,
    Timestamp,
    IpAddress,
    EmailAddress,
    Uri,
    DnsName,
    Duration,
    StringMap,
}

impl ValueType {
    /// Every type, in the proto's enum order.
    pub const ALL: [ValueType; 11] = [
        ValueType::String,
        ValueType::Int64,
        ValueType::Double,
        ValueType::Bool,
        ValueType::Timestamp,
        ValueType::IpAddress,
        ValueType::EmailAddress,
        ValueType::Uri,
        ValueType::DnsName,
        ValueType::Duration,
        ValueType::StringMap,
    ];

    /// The proto enum name, as Mixer prints it in messages (`STRING`, `INT64`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "STRING",
            ValueType::Int64 => "INT64",
            ValueType::Double => "DOUBLE",
            ValueType::Bool => "BOOL",
            ValueType::Timestamp => "TIMESTAMP",
            ValueType::IpAddress => "IP_ADDRESS",
            ValueType::EmailAddress => "EMAIL_ADDRESS",
            ValueType::Uri => "URI",
            ValueType::DnsName => "DNS_NAME",
            ValueType::Duration => "DURATION",
            ValueType::StringMap => "STRING_MAP",
        }
    }

    /// Parses a proto enum name (`"STRING"`, `"IP_ADDRESS"`, ...).
    pub fn from_name(name: &str) -> Option<ValueType> {
        ValueType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// True for the types whose runtime form is a string (STRING, DNS_NAME, EMAIL_ADDRESS, URI).
    pub fn is_stringy(self) -> bool {
        matches!(self, ValueType::String | ValueType::DnsName | ValueType::EmailAddress | ValueType::Uri)
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A string-to-string map (STRING_MAP), kept sorted by key so lookups are a binary search
/// and every encoder sees the keys in Go's sorted order. Keys and values share one buffer, so
/// a map costs two allocations however many entries it has (a request's headers are read into
/// one on every request that looks at them).
#[derive(Clone, Default)]
pub struct StringMap {
    /// Every entry's key followed by its value, in the order they were added.
    text: String,
    /// The entries in ascending key order.
    entries: Vec<Entry>,
}

/// Where an entry's key starts in the text, and the lengths of the key and of the value
/// that follows it.
#[derive(Clone, Copy, Debug)]
struct Entry {
    start: usize,
    key_len: usize,
    value_len: usize,
}

impl StringMap {
    /// An empty map; does not allocate.
    pub const fn new() -> StringMap {
        StringMap { text: String::new(), entries: Vec::new() }
    }

    /// Builds a map from pairs; a repeated key keeps its last value (as Mixer did for headers).
    pub fn from_pairs<I, K, V>(pairs: I) -> StringMap
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let pairs = pairs.into_iter();
        let mut builder = StringMapBuilder::with_capacity(pairs.size_hint().0, 0);
        for (k, v) in pairs {
            builder.push(k.as_ref(), v.as_ref());
        }
        builder.finish()
    }

    fn key(&self, e: &Entry) -> &str {
        self.text.get(e.start..e.start + e.key_len).unwrap_or_default()
    }

    fn value(&self, e: &Entry) -> &str {
        let start = e.start + e.key_len;
        self.text.get(start..start + e.value_len).unwrap_or_default()
    }

    /// The value stored under `key`, if any.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&str> {
        // Label maps are small: a length-first linear scan beats a binary search.
        if self.entries.len() <= 8 {
            return self
                .entries
                .iter()
                .find(|e| e.key_len == key.len() && key_bytes(&self.text, e) == key.as_bytes())
                .map(|e| self.value(e));
        }
        self.entries
            .binary_search_by(|e| compare_bytes(key_bytes(&self.text, e), key.as_bytes()))
            .ok()
            .and_then(|i| self.entries.get(i))
            .map(|e| self.value(e))
    }

    /// Entries in ascending key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|e| (self.key(e), self.value(e)))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl PartialEq for StringMap {
    fn eq(&self, other: &StringMap) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for StringMap {}

impl fmt::Debug for StringMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// An entry's key as bytes, without the char-boundary checks of [`StringMap::key`].
fn key_bytes<'t>(text: &'t str, e: &Entry) -> &'t [u8] {
    text.as_bytes().get(e.start..e.start + e.key_len).unwrap_or_default()
}

/// Byte-wise order, without a call to `memcmp` (byte at a time on wasm32, and the keys
/// compared while sorting a header map mostly differ in their first bytes).
fn compare_bytes(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// A [`StringMap`] filled entry by entry, its text written in place
/// ([`StringMapBuilder::push_with`]); [`StringMapBuilder::finish`] orders it.
pub struct StringMapBuilder {
    map: StringMap,
}

impl StringMapBuilder {
    /// Room for `entries` entries and `text` bytes of keys and values.
    pub fn with_capacity(entries: usize, text: usize) -> StringMapBuilder {
        StringMapBuilder { map: StringMap { text: String::with_capacity(text), entries: Vec::with_capacity(entries) } }
    }

    pub fn push(&mut self, key: &str, value: &str) {
        self.push_with(|text| text.push_str(key), |text| text.push_str(value));
    }

    /// Adds the entry whose key `write_key` appends to the map's text, and whose value
    /// `write_value` appends after it.
    pub fn push_with(&mut self, write_key: impl FnOnce(&mut String), write_value: impl FnOnce(&mut String)) {
        let text = &mut self.map.text;
        let start = text.len();
        write_key(text);
        let key_len = text.len() - start;
        write_value(text);
        let value_len = text.len() - start - key_len;
        self.map.entries.push(Entry { start, key_len, value_len });
    }

    /// The map, in key order; of a repeated key the value added last.
    pub fn finish(self) -> StringMap {
        let StringMap { text, mut entries } = self.map;
        let key = |e: &Entry| key_bytes(&text, e);
        // Stable: among equal keys the order of addition stays, and the last one wins below.
        crate::sorting::sort_by(&mut entries, |a, b| compare_bytes(key(a), key(b)));
        entries.dedup_by(|later, earlier| {
            let same = key(later) == key(earlier);
            if same {
                *earlier = *later;
            }
            same
        });
        StringMap { text, entries }
    }
}

/// A value of one of the CEXL types. Strings and maps borrow from the attribute bag or the
/// compiled program whenever they can, so evaluation over cached attributes does not allocate.
///
/// `repr(u64)`: an 8-byte tag puts every payload at offset 8. With the default layout the
/// payload starts at offset 1 (`Bool`, the align-1 `IpBytes`), every `Value` moved through a
/// `Result` is copied with overlapping unaligned stores and loads, and the loads stall on
/// store forwarding; that was a third of the evaluation time of the seed deny rule.
#[derive(Clone, Debug, PartialEq)]
#[repr(u64)]
pub enum Value<'a> {
    String(Cow<'a, str>),
    Int64(i64),
    Double(f64),
    Bool(bool),
    Timestamp(Timestamp),
    IpAddress(IpBytes),
    EmailAddress(Cow<'a, str>),
    Uri(Cow<'a, str>),
    DnsName(Cow<'a, str>),
    /// Nanoseconds, like Go's `time.Duration`.
    Duration(i64),
    StringMap(Cow<'a, StringMap>),
}

impl<'a> Value<'a> {
    /// The value's type.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::String(_) => ValueType::String,
            Value::Int64(_) => ValueType::Int64,
            Value::Double(_) => ValueType::Double,
            Value::Bool(_) => ValueType::Bool,
            Value::Timestamp(_) => ValueType::Timestamp,
            Value::IpAddress(_) => ValueType::IpAddress,
            Value::EmailAddress(_) => ValueType::EmailAddress,
            Value::Uri(_) => ValueType::Uri,
            Value::DnsName(_) => ValueType::DnsName,
            Value::Duration(_) => ValueType::Duration,
            Value::StringMap(_) => ValueType::StringMap,
        }
    }

    /// The text of a STRING, DNS_NAME, EMAIL_ADDRESS or URI value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::EmailAddress(s) | Value::Uri(s) | Value::DnsName(s) => Some(s),
            _ => None,
        }
    }

    /// Wraps text in the string-like variant of type `ty` (STRING when `ty` is not string-like).
    pub fn stringy(ty: ValueType, s: Cow<'a, str>) -> Value<'a> {
        match ty {
            ValueType::DnsName => Value::DnsName(s),
            ValueType::EmailAddress => Value::EmailAddress(s),
            ValueType::Uri => Value::Uri(s),
            _ => Value::String(s),
        }
    }

    /// Detaches the value from whatever it borrowed.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::String(s) => Value::String(Cow::Owned(s.into_owned())),
            Value::EmailAddress(s) => Value::EmailAddress(Cow::Owned(s.into_owned())),
            Value::Uri(s) => Value::Uri(Cow::Owned(s.into_owned())),
            Value::DnsName(s) => Value::DnsName(Cow::Owned(s.into_owned())),
            Value::StringMap(m) => Value::StringMap(Cow::Owned(m.into_owned())),
            Value::Int64(v) => Value::Int64(v),
            Value::Double(v) => Value::Double(v),
            Value::Bool(v) => Value::Bool(v),
            Value::Timestamp(v) => Value::Timestamp(v),
            Value::IpAddress(v) => Value::IpAddress(v),
            Value::Duration(v) => Value::Duration(v),
        }
    }

    /// A borrowed view of this value (cheap: strings and maps are borrowed, not copied).
    pub fn reborrow(&self) -> Value<'_> {
        match self {
            Value::String(s) => Value::String(Cow::Borrowed(s)),
            Value::EmailAddress(s) => Value::EmailAddress(Cow::Borrowed(s)),
            Value::Uri(s) => Value::Uri(Cow::Borrowed(s)),
            Value::DnsName(s) => Value::DnsName(Cow::Borrowed(s)),
            Value::StringMap(m) => Value::StringMap(Cow::Borrowed(m)),
            Value::Int64(v) => Value::Int64(*v),
            Value::Double(v) => Value::Double(*v),
            Value::Bool(v) => Value::Bool(*v),
            Value::Timestamp(v) => Value::Timestamp(*v),
            Value::IpAddress(v) => Value::IpAddress(*v),
            Value::Duration(v) => Value::Duration(*v),
        }
    }
}

#[cfg(test)]
mod string_map_tests {
    use super::*;

    #[test]
    fn keys_sort_bytewise_and_a_repeated_key_keeps_its_last_value() {
        let m = StringMap::from_pairs([("b", "1"), ("a", "2"), ("b", "3"), ("B", "4"), ("ab", "5"), ("b", "6")]);
        assert_eq!(m.iter().collect::<Vec<_>>(), [("B", "4"), ("a", "2"), ("ab", "5"), ("b", "6")]);
        assert_eq!((m.get("b"), m.get("a"), m.get("c"), m.get("")), (Some("6"), Some("2"), None, None));
        assert_eq!(m.len(), 4);
        assert!(StringMap::new().is_empty() && StringMap::from_pairs([("", "")]).get("") == Some(""));
    }

    #[test]
    fn large_maps_find_every_key_and_no_other() {
        let pairs: Vec<(String, String)> = (0..40).rev().map(|i| (format!("x-h{i}"), format!("v{i}"))).collect();
        let m = StringMap::from_pairs(pairs.iter().map(|(k, v)| (k, v)));
        for (k, v) in &pairs {
            assert_eq!(m.get(k), Some(v.as_str()), "{k}");
        }
        assert_eq!((m.get("x-h"), m.get("x-h40"), m.get("x-h3x")), (None, None, None));
        let keys: Vec<&str> = m.iter().map(|(k, _)| k).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn equal_maps_compare_equal_whatever_order_they_were_built_in() {
        let a = StringMap::from_pairs([("a", "1"), ("b", "2")]);
        let b = StringMap::from_pairs([("b", "0"), ("b", "2"), ("a", "1")]);
        assert_eq!(a, b);
        assert_ne!(a, StringMap::from_pairs([("a", "1"), ("b", "3")]));
        assert_ne!(a, StringMap::from_pairs([("a", "1")]));
        assert_eq!(format!("{b:?}"), r#"{"a": "1", "b": "2"}"#);
        let mut built = StringMapBuilder::with_capacity(1, 4);
        built.push_with(|t| t.push_str("key"), |t| t.push_str("vé"));
        assert_eq!(built.finish(), StringMap::from_pairs([("key", "vé")]));
    }
}
