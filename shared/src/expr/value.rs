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
/// and every encoder sees the keys in Go's sorted order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StringMap {
    entries: Vec<(String, String)>,
}

impl StringMap {
    /// An empty map; does not allocate.
    pub const fn new() -> StringMap {
        StringMap { entries: Vec::new() }
    }

    /// Builds a map from pairs; a repeated key keeps its last value (as Mixer did for headers).
    pub fn from_pairs<I, K, V>(pairs: I) -> StringMap
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        StringMap::from_entries(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    /// `from_pairs` once the pairs are owned: not generic, so compiled once.
    fn from_entries(mut entries: Vec<(String, String)>) -> StringMap {
        // Stable sort keeps insertion order among equal keys; the last one wins below.
        crate::sorting::sort_by(&mut entries, |a, b| a.0.cmp(&b.0));
        let mut deduped: Vec<(String, String)> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match deduped.last_mut() {
                Some(last) if last.0 == k => last.1 = v,
                _ => deduped.push((k, v)),
            }
        }
        StringMap { entries: deduped }
    }

    /// The value stored under `key`, if any.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&str> {
        // Label maps are small: a length-first linear scan beats a binary search whose every
        // probe is a `memcmp` call.
        if self.entries.len() <= 8 {
            return self
                .entries
                .iter()
                .find(|(k, _)| k.len() == key.len() && k.as_bytes() == key.as_bytes())
                .map(|(_, v)| v.as_str());
        }
        self.entries
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .and_then(|i| self.entries.get(i))
            .map(|(_, v)| v.as_str())
    }

    /// Entries in ascending key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
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
