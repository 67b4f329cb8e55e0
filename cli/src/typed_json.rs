//! The typed JSON wrappers of `wasmixer expr eval`: `{"string": "x"}`, `{"int": 1}`,
//! `{"duration": "20ms"}`, `{"string_map": {"k": "v"}}` ... in both directions.

use std::borrow::Cow;

use serde_json::{json, Map, Value as Json};
use wasmixer_engine::expr::{Manifest, StringMap, Value, ValueType};
use wasmixer_engine::gostd::duration::{format_duration, parse_duration};
use wasmixer_engine::gostd::net_ip::IpBytes;
use wasmixer_engine::gostd::time::Timestamp;

/// Reads one typed wrapper into a value.
pub fn value_from_json(j: &Json) -> Result<Value<'static>, String> {
    let obj = j.as_object().filter(|o| o.len() == 1).ok_or_else(|| {
        format!("a value must be an object with exactly one type key (string, int, double, bool, duration, timestamp, ip, dns_name, email, uri, string_map), got {j}")
    })?;
    let Some((kind, v)) = obj.iter().next() else { return Err("empty value".into()) };
    let text = || v.as_str().map(str::to_string).ok_or_else(|| format!("\"{kind}\" takes a JSON string, got {v}"));
    Ok(match kind.as_str() {
        "string" => Value::String(Cow::Owned(text()?)),
        "dns_name" => Value::DnsName(Cow::Owned(text()?)),
        "email" => Value::EmailAddress(Cow::Owned(text()?)),
        "uri" => Value::Uri(Cow::Owned(text()?)),
        "int" => Value::Int64(v.as_i64().ok_or_else(|| format!("\"int\" takes a JSON integer, got {v}"))?),
        "double" => Value::Double(match v {
            Json::String(s) if s == "NaN" => f64::NAN,
            Json::String(s) if s == "+Inf" || s == "Inf" => f64::INFINITY,
            Json::String(s) if s == "-Inf" => f64::NEG_INFINITY,
            _ => v.as_f64().ok_or_else(|| format!("\"double\" takes a JSON number, got {v}"))?,
        }),
        "bool" => Value::Bool(v.as_bool().ok_or_else(|| format!("\"bool\" takes true or false, got {v}"))?),
        "duration" => Value::Duration(parse_duration(&text()?)?),
        "timestamp" => Value::Timestamp(Timestamp::parse_rfc3339(&text()?)?),
        "ip" => {
            let s = text()?;
            Value::IpAddress(IpBytes::parse(&s).ok_or_else(|| format!("not an IP address: {s}"))?)
        }
        "string_map" => {
            let m = v.as_object().ok_or_else(|| format!("\"string_map\" takes a JSON object, got {v}"))?;
            let mut pairs = Vec::with_capacity(m.len());
            for (k, val) in m {
                let val = val
                    .as_str()
                    .ok_or_else(|| format!("string_map values must be strings, got {val} for key {k:?}"))?;
                pairs.push((k.clone(), val.to_string()));
            }
            Value::StringMap(Cow::Owned(StringMap::from_pairs(pairs)))
        }
        other => return Err(format!("unknown value type \"{other}\"")),
    })
}

/// Writes a value as its typed wrapper.
pub fn value_to_json(v: &Value<'_>) -> Json {
    match v {
        Value::String(s) => json!({ "string": s }),
        Value::DnsName(s) => json!({ "dns_name": s }),
        Value::EmailAddress(s) => json!({ "email": s }),
        Value::Uri(s) => json!({ "uri": s }),
        Value::Int64(i) => json!({ "int": i }),
        Value::Double(d) if d.is_nan() => json!({ "double": "NaN" }),
        Value::Double(d) if d.is_infinite() => json!({ "double": if *d > 0.0 { "+Inf" } else { "-Inf" } }),
        Value::Double(d) => json!({ "double": d }),
        Value::Bool(b) => json!({ "bool": b }),
        Value::Duration(n) => {
            let mut s = String::new();
            format_duration(*n, &mut s);
            json!({ "duration": s })
        }
        Value::Timestamp(t) => {
            let mut s = String::new();
            t.write_rfc3339_nano(&mut s);
            json!({ "timestamp": s })
        }
        Value::IpAddress(ip) => {
            let mut s = String::new();
            ip.write_to(&mut s);
            json!({ "ip": s })
        }
        Value::StringMap(m) => {
            let obj: Map<String, Json> = m.iter().map(|(k, v)| (k.to_string(), Json::String(v.to_string()))).collect();
            json!({ "string_map": obj })
        }
    }
}

/// Reads a manifest object `{"name": "TYPE", ...}`.
pub fn manifest_from_json(j: &Json) -> Result<Manifest, String> {
    let obj = j.as_object().ok_or_else(|| format!("a manifest must be a JSON object of name: TYPE, got {j}"))?;
    let mut attrs = Vec::with_capacity(obj.len());
    for (name, ty) in obj {
        let ty_name = ty.as_str().ok_or_else(|| format!("the type of attribute {name} must be a string, got {ty}"))?;
        let ty = ValueType::from_name(ty_name).ok_or_else(|| {
            let known: Vec<&str> = ValueType::ALL.iter().map(|t| t.name()).collect();
            format!("attribute {name}: unknown type {ty_name} (known: {})", known.join(", "))
        })?;
        attrs.push((name.clone(), ty));
    }
    Ok(Manifest::new(attrs))
}
