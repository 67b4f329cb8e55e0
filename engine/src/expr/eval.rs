//! Evaluation of compiled expressions against an attribute bag; mirrors the semantics of
//! Mixer's IL interpreter (`mixer/pkg/il/interpreter`): absent attributes are errors except
//! in a `|` fallback position, map misses read as `""`, `&&`/`||`/`conditional` are lazy.
//! Comparisons, boolean logic, lookups and fallbacks over borrowed strings do not allocate.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::bag::AttributeBag;
use super::compiler::{CmpOp, Conversion, Node};
use super::error::EvalError;
use super::regex_syntax::go_regex;
use super::{Value, ValueType};
use crate::gostd::net_ip::IpBytes;
use crate::gostd::time::Timestamp;
use crate::gostd::{byte_string, idna, mail, strings, url};

type Result<'a, T> = std::result::Result<T, EvalError<'a>>;

fn other<'a>(msg: String) -> EvalError<'a> {
    EvalError::Other(msg)
}

impl Node {
    /// Evaluates in normal mode: an absent attribute is an error.
    pub fn eval<'a>(&'a self, bag: &'a dyn AttributeBag) -> Result<'a, Value<'a>> {
        match self {
            Node::Const(v) => Ok(v.reborrow()),
            Node::Attr { name, .. } => self.attr(bag)?.ok_or(EvalError::LookupFailed(name)),
            Node::Index(map, key) => {
                let map = map.eval(bag)?;
                // A constant key (`labels["app"]`) is looked up as it is, not through a `Value`.
                if let Node::Const(Value::String(k)) = key.as_ref() {
                    return Ok(Value::String(index_str(map, k).unwrap_or(Cow::Borrowed(""))));
                }
                let key = key.eval(bag)?;
                Ok(Value::String(index(map, &key).unwrap_or(Cow::Borrowed(""))))
            }
            Node::Cmp(..) | Node::And(..) | Node::Or(..) => self.eval_bool(bag).map(Value::Bool),
            Node::Fallback(l, r) => match l.eval_opt(bag)? {
                Some(v) => Ok(v),
                None => r.eval(bag),
            },
            Node::Conditional(c, a, b) => {
                if c.eval_bool(bag)? {
                    a.eval(bag)
                } else {
                    b.eval(bag)
                }
            }
            Node::ConditionalString(c, a, b) => {
                let c = c.eval_bool(bag)?;
                let a = a.eval(bag)?;
                let b = b.eval(bag)?;
                Ok(if c { a } else { b })
            }
            Node::Add(l, r) => add(l.eval(bag)?, r.eval(bag)?),
            Node::Convert(conv, arg) => convert(*conv, arg.eval(bag)?),
            Node::Match(s, p) => {
                let s = s.eval(bag)?;
                let p = p.eval(bag)?;
                Ok(Value::Bool(glob_match(text(&s), text(&p))))
            }
            Node::Matches { pattern, subject, compiled } => {
                let pattern = pattern.eval(bag)?;
                let subject = subject.eval(bag)?;
                let matched = match compiled {
                    Some(re) => re.is_match(text(&subject)),
                    // A pattern computed per request: Mixer's rule, an error when it does not compile.
                    None => go_regex(text(&pattern)).map_err(other)?.is_match(text(&subject)),
                };
                Ok(Value::Bool(matched))
            }
            Node::StartsWith(s, p) => {
                let s = s.eval(bag)?;
                let p = p.eval(bag)?;
                Ok(Value::Bool(text(&s).starts_with(text(&p))))
            }
            Node::EndsWith(s, p) => {
                let s = s.eval(bag)?;
                let p = p.eval(bag)?;
                Ok(Value::Bool(text(&s).ends_with(text(&p))))
            }
            Node::EmptyStringMap => Ok(Value::StringMap(Cow::Owned(super::StringMap::new()))),
        }
    }

    /// Evaluates in fallback position: `Ok(None)` when the operand "has no value" (spec 7.3).
    pub fn eval_opt<'a>(&'a self, bag: &'a dyn AttributeBag) -> Result<'a, Option<Value<'a>>> {
        match self {
            Node::Attr { .. } => self.attr(bag),
            Node::Index(map, key) => {
                let Some(map) = map.eval_opt(bag)? else { return Ok(None) };
                let key = match key.as_ref() {
                    Node::Attr { .. } => match key.attr(bag)? {
                        Some(k) => k,
                        None => return Ok(None),
                    },
                    other => other.eval(bag)?,
                };
                Ok(index(map, &key).map(Value::String))
            }
            Node::Fallback(l, r) => match l.eval_opt(bag)? {
                Some(v) => Ok(Some(v)),
                None => r.eval_opt(bag),
            },
            _ => self.eval(bag).map(Some),
        }
    }

    /// Evaluates a BOOL expression. Logic and comparisons are computed here as plain `bool`s
    /// rather than through `eval` (moving a `Value` through a `Result` per node is the main
    /// cost of a tree walk).
    pub fn eval_bool<'a>(&'a self, bag: &'a dyn AttributeBag) -> Result<'a, bool> {
        match self {
            Node::Const(Value::Bool(b)) => Ok(*b),
            Node::And(l, r) => Ok(l.eval_bool(bag)? && r.eval_bool(bag)?),
            Node::Or(l, r) => Ok(l.eval_bool(bag)? || r.eval_bool(bag)?),
            Node::Cmp(op, ty, l, r) => {
                if let (CmpOp::Eq | CmpOp::Neq, ValueType::String, Node::Const(Value::String(c))) = (op, ty, r.as_ref())
                {
                    return Ok(l.str_equals(c, bag)? == (*op == CmpOp::Eq));
                }
                let l = l.eval(bag)?;
                let r = r.eval(bag)?;
                compare(*op, *ty, &l, &r)
            }
            _ => match self.eval(bag)? {
                Value::Bool(b) => Ok(b),
                v => Err(not_bool(&v)),
            },
        }
    }

    /// `self == c` for a STRING expression and a constant: `map["key"] == "c"` over an
    /// attribute map is one bag lookup and one map probe, with no intermediate `Value`.
    fn str_equals<'a>(&'a self, c: &str, bag: &'a dyn AttributeBag) -> Result<'a, bool> {
        if let Node::Index(map, key) = self {
            if let (Node::Attr { id, name, ty }, Node::Const(Value::String(k))) = (map.as_ref(), key.as_ref()) {
                // `bag.get` directly rather than `attr`: one `Value` move less.
                return match bag.get(*id) {
                    Some(Value::StringMap(m)) => Ok(m.get(k).unwrap_or("") == c),
                    // Not a map: `conform` reports the type error (a missing key reads as "").
                    Some(v) => conform(*ty, v).map(|_| c.is_empty()),
                    None => Err(EvalError::LookupFailed(name)),
                };
            }
        }
        Ok(self.eval(bag)?.as_str() == Some(c))
    }

    /// Fetches an attribute and checks its runtime type against the manifest's.
    fn attr<'a>(&'a self, bag: &'a dyn AttributeBag) -> Result<'a, Option<Value<'a>>> {
        let Node::Attr { id, ty, .. } = self else { return Ok(None) };
        match bag.get(*id) {
            None => Ok(None),
            Some(v) if v.value_type() == *ty => Ok(Some(v)),
            Some(v) => conform(*ty, v).map(Some),
        }
    }
}

/// Mixer's runtime type checks (spec 7.1): an INT64 slot also takes a duration and vice versa.
/// Rare (the bag normally returns the manifest's type), so kept out of the callers' frames.
#[cold]
#[inline(never)]
fn conform<'a>(ty: ValueType, v: Value<'a>) -> Result<'a, Value<'a>> {
    if v.value_type() == ty {
        return Ok(v);
    }
    match (ty, v) {
        (ValueType::Int64, Value::Duration(n)) => Ok(Value::Int64(n)),
        (ValueType::Duration, Value::Int64(n)) => Ok(Value::Duration(n)),
        (t, v) if t.is_stringy() => match v.as_str() {
            Some(s) => Ok(Value::stringy(t, Cow::Owned(s.to_string()))),
            None => Err(other(format!("error converting value to string: '{}'", go_v(&v)))),
        },
        (ValueType::Int64 | ValueType::Duration, v) => {
            Err(other(format!("error converting value to integer or duration: '{}'", go_v(&v))))
        }
        (ValueType::Double, v) => Err(other(format!("error converting value to double: '{}'", go_v(&v)))),
        (ValueType::Bool, v) => Err(other(format!("error converting value to bool: '{}'", go_v(&v)))),
        (t, v) => Err(other(format!("error converting value to {t}: '{}'", go_v(&v)))),
    }
}

fn text<'v>(v: &'v Value<'_>) -> &'v str {
    v.as_str().unwrap_or("")
}

/// Looks `key` up in a map value; `None` when the key is missing.
fn index<'a>(map: Value<'a>, key: &Value<'_>) -> Option<Cow<'a, str>> {
    index_str(map, key.as_str()?)
}

/// [`index`] with a constant key.
fn index_str<'a>(map: Value<'a>, key: &str) -> Option<Cow<'a, str>> {
    let Value::StringMap(map) = map else { return None };
    match map {
        Cow::Borrowed(m) => m.get(key).map(Cow::Borrowed),
        Cow::Owned(m) => m.get(key).map(|v| Cow::Owned(v.to_string())),
    }
}

#[cold]
#[inline(never)]
fn not_bool<'a>(v: &Value<'_>) -> EvalError<'a> {
    other(format!("error converting value to bool: '{}'", go_v(v)))
}

fn compare<'a>(op: CmpOp, ty: ValueType, l: &Value<'_>, r: &Value<'_>) -> Result<'a, bool> {
    if matches!(op, CmpOp::Eq | CmpOp::Neq) {
        let eq = equal(ty, l, r)?;
        return Ok(if op == CmpOp::Eq { eq } else { !eq });
    }
    let ord = match (l, r) {
        (Value::Int64(a), Value::Int64(b)) => Some(a.cmp(b)),
        (Value::Double(a), Value::Double(b)) => a.partial_cmp(b),
        (Value::Timestamp(a), Value::Timestamp(b)) => return Ok(timestamp_order(op, a, b)),
        _ => match (l.as_str(), r.as_str()) {
            (Some(a), Some(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            _ => None,
        },
    };
    Ok(match (op, ord) {
        (_, None) => false,
        (CmpOp::Lt, Some(o)) => o == Ordering::Less,
        (CmpOp::Leq, Some(o)) => o != Ordering::Greater,
        (CmpOp::Gt, Some(o)) => o == Ordering::Greater,
        (_, Some(o)) => o != Ordering::Less,
    })
}

/// Timestamp ordering. `<=` and `>=` are "struct-equal or before/after", as in Mixer.
fn timestamp_order(op: CmpOp, a: &Timestamp, b: &Timestamp) -> bool {
    match op {
        CmpOp::Lt => a.before(b),
        CmpOp::Gt => a.after(b),
        CmpOp::Leq => a == b || a.before(b),
        _ => a == b || a.after(b),
    }
}

/// Equality by type (spec 7.6).
fn equal<'a>(ty: ValueType, l: &Value<'_>, r: &Value<'_>) -> Result<'a, bool> {
    Ok(match (ty, l, r) {
        (ValueType::DnsName, _, _) => idna::dns_name_equal(text(l), text(r)).map_err(other)?,
        (ValueType::EmailAddress, _, _) => mail::email_equal(text(l), text(r)).map_err(other)?,
        (ValueType::Uri, _, _) => url::uri_equal(text(l), text(r)).map_err(other)?,
        (_, Value::IpAddress(a), Value::IpAddress(b)) => a.equal(b),
        (_, Value::Timestamp(a), Value::Timestamp(b)) => a.instant_eq(b),
        (_, Value::Int64(a), Value::Int64(b)) => a == b,
        (_, Value::Double(a), Value::Double(b)) => a == b,
        (_, Value::Bool(a), Value::Bool(b)) => a == b,
        _ => match (l.as_str(), r.as_str()) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
    })
}

fn add<'a>(l: Value<'a>, r: Value<'a>) -> Result<'a, Value<'a>> {
    match (l, r) {
        (Value::Int64(a), Value::Int64(b)) => Ok(Value::Int64(a.wrapping_add(b))),
        (Value::Double(a), Value::Double(b)) => Ok(Value::Double(a + b)),
        (l, r) => {
            let ty = l.value_type();
            let mut s = String::with_capacity(text(&l).len() + text(&r).len());
            s.push_str(text(&l));
            s.push_str(text(&r));
            Ok(Value::stringy(ty, Cow::Owned(s)))
        }
    }
}

fn convert(conv: Conversion, arg: Value<'_>) -> Result<'_, Value<'_>> {
    let s = text(&arg);
    Ok(match conv {
        Conversion::Size => Value::Int64(i64::try_from(byte_string::byte_len(s)).unwrap_or(i64::MAX)),
        Conversion::ToLower => match strings::to_lower(s) {
            Cow::Borrowed(_) => match arg {
                Value::String(c) => Value::String(c),
                other => Value::String(Cow::Owned(text(&other).to_string())),
            },
            Cow::Owned(lower) => Value::String(Cow::Owned(lower)),
        },
        Conversion::Ip => match IpBytes::parse(s) {
            Some(ip) => Value::IpAddress(ip),
            None => return Err(other(format!("could not convert {s} to IP_ADDRESS"))),
        },
        Conversion::Timestamp => match Timestamp::parse_rfc3339(s) {
            Ok(t) => Value::Timestamp(t),
            Err(_) => {
                return Err(other(format!(
                    "could not convert '{s}' to TIMESTAMP. expected format: '2006-01-02T15:04:05Z07:00'"
                )))
            }
        },
        Conversion::DnsName => match idna::to_dns_name(s) {
            Ok(name) => Value::DnsName(Cow::Owned(name)),
            Err(e) => return Err(other(format!("error converting '{s}' to dns name: '{e}'"))),
        },
        Conversion::Email => {
            let addr = mail::parse_address(s).map_err(|e| other(format!("error converting '{s}' to e-mail: '{e}'")))?;
            if !addr.name.is_empty() {
                return Err(other(format!("error converting '{s}' to e-mail: display names are not allowed")));
            }
            idna::to_dns_name(&addr.domain).map_err(|e| other(format!("error converting '{s}' to e-mail: '{e}'")))?;
            Value::EmailAddress(Cow::Owned(s.to_string()))
        }
        Conversion::Uri => {
            if s.is_empty() {
                return Err(other("error converting string to uri: empty string".to_string()));
            }
            url::parse(s).map_err(|e| other(format!("error converting string to uri '{s}': '{e}'")))?;
            Value::Uri(Cow::Owned(s.to_string()))
        }
    })
}

/// Mixer's `match(s, p)`: one `*` at either end of `p` is a wildcard; the trailing one first.
fn glob_match(s: &str, p: &str) -> bool {
    if let Some(prefix) = p.strip_suffix('*') {
        s.starts_with(prefix)
    } else if let Some(suffix) = p.strip_prefix('*') {
        s.ends_with(suffix)
    } else {
        s == p
    }
}

/// Go's `%v` of a value, for error messages.
fn go_v(v: &Value<'_>) -> String {
    match v {
        Value::Int64(i) => i.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Duration(n) => {
            let mut s = String::new();
            crate::gostd::duration::format_duration(*n, &mut s);
            s
        }
        Value::Timestamp(t) => {
            let mut s = String::new();
            t.write_rfc3339_nano(&mut s);
            s
        }
        Value::IpAddress(ip) => {
            let mut s = String::new();
            ip.write_to(&mut s);
            s
        }
        Value::StringMap(m) => {
            let pairs: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            format!("map[{}]", pairs.join(" "))
        }
        other => text(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn glob_rules() {
        assert!(glob_match("kube-probe/1.1", "kube-probe*"));
        assert!(glob_match("anything", "*"));
        assert!(glob_match("foo.svc", "*.svc"));
        assert!(glob_match("*abc", "*a*"));
        assert!(!glob_match("xabc", "*a*"));
        assert!(glob_match("a*b", "a*b"));
        assert!(!glob_match("axb", "a*b"));
    }
}
