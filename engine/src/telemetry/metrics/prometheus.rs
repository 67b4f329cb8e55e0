//! Mixer's prometheus adapter naming, value conversion and buckets (istio/istio 1.5
//! `mixer/adapter/prometheus/prometheus.go`: `safeName`, `promValue`, `buckets`; client_golang
//! `BuildFQName`, `LinearBuckets`, `ExponentialBuckets`, `DefBuckets`).

use std::fmt::Write as _;

use crate::expr::Value;
use crate::gostd::strconv::parse_float;

use super::stringify::stringify;

/// The namespace Mixer used when a metric gave none.
pub const DEFAULT_NAMESPACE: &str = "istio";

/// Prometheus `DefBuckets`, used when a distribution defines no buckets.
pub const DEFAULT_BOUNDS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Most finite buckets a generated (linear or exponential) definition may ask for. Mixer had no
/// limit; one keeps a typo such as `num_finite_buckets: 2147483647` from exhausting memory.
pub const MAX_FINITE_BUCKETS: i32 = 1024;

/// Mixer's `safeName`: strips one leading `/`, turns `/`, `.` and space into `_`, deletes `-`.
/// Used for the namespace, the metric name and label names.
pub fn safe(name: &str) -> String {
    let name = name.strip_prefix('/').unwrap_or(name);
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '/' | '.' | ' ' => out.push('_'),
            '-' => {}
            c => out.push(c),
        }
    }
    out
}

/// The full Prometheus metric name `<safe(namespace)>_<safe(name)>`. A missing or empty
/// namespace means `istio`. As client_golang's `BuildFQName`, an empty sanitised name gives `""`
/// (no valid metric).
pub fn metric_name(namespace: Option<&str>, name: &str) -> String {
    let name = safe(name);
    if name.is_empty() {
        return name;
    }
    let namespace = match namespace {
        Some(ns) if !ns.is_empty() => safe(ns),
        _ => String::from(DEFAULT_NAMESPACE),
    };
    if namespace.is_empty() {
        return name;
    }
    let mut out = String::with_capacity(namespace.len() + 1 + name.len());
    out.push_str(&namespace);
    out.push('_');
    out.push_str(&name);
    out
}

/// A distribution's bucket definition (`Params.MetricInfo.BucketsDefinition`).
#[derive(Clone, Debug, PartialEq)]
pub enum Buckets {
    /// Bounds as given.
    Explicit { bounds: Vec<f64> },
    /// `num_finite_buckets + 1` bounds: `offset`, `offset + width`, ...
    Linear { num_finite_buckets: i32, width: f64, offset: f64 },
    /// `num_finite_buckets + 1` bounds: `scale`, `scale * growth_factor`, ...
    Exponential { num_finite_buckets: i32, growth_factor: f64, scale: f64 },
}

impl Buckets {
    /// The finite upper bounds (Prometheus adds `+Inf` itself).
    ///
    /// Generated bounds are computed the way client_golang does (repeated addition or
    /// multiplication), so they match Mixer's bit for bit. Definitions that client_golang
    /// would panic on, or that cannot give strictly increasing finite bounds, are errors.
    /// Explicit bounds follow client_golang: empty means [`DEFAULT_BOUNDS`], and one trailing
    /// `+Inf` is dropped; any other non-finite bound is an error.
    pub fn bounds(&self) -> Result<Vec<f64>, String> {
        match self {
            Buckets::Explicit { bounds } => explicit(bounds),
            Buckets::Linear { num_finite_buckets, width, offset } => {
                let count = finite_count(*num_finite_buckets, "linear")?;
                if !offset.is_finite() {
                    return Err(format!("linear buckets need a finite offset, got {offset}"));
                }
                if !(width.is_finite() && *width > 0.0) {
                    return Err(format!("linear buckets need a finite width > 0, got {width}"));
                }
                generate(count, *offset, |b| b + width, "linear")
            }
            Buckets::Exponential { num_finite_buckets, growth_factor, scale } => {
                let count = finite_count(*num_finite_buckets, "exponential")?;
                if !(scale.is_finite() && *scale > 0.0) {
                    return Err(format!("exponential buckets need a finite scale > 0, got {scale}"));
                }
                if !(growth_factor.is_finite() && *growth_factor > 1.0) {
                    return Err(format!("exponential buckets need a finite growth_factor > 1, got {growth_factor}"));
                }
                generate(count, *scale, |b| b * growth_factor, "exponential")
            }
        }
    }
}

/// Validates `num_finite_buckets` and returns the number of bounds (`num + 1`).
fn finite_count(num: i32, kind: &str) -> Result<usize, String> {
    if num <= 0 {
        return Err(format!("{kind} buckets need num_finite_buckets > 0, got {num}"));
    }
    if num > MAX_FINITE_BUCKETS {
        return Err(format!("{kind} buckets: num_finite_buckets {num} is over the limit of {MAX_FINITE_BUCKETS}"));
    }
    usize::try_from(num).map(|n| n + 1).map_err(|_| format!("{kind} buckets: bad count {num}"))
}

fn generate(count: usize, start: f64, step: impl Fn(f64) -> f64, kind: &str) -> Result<Vec<f64>, String> {
    let mut out = Vec::with_capacity(count);
    let mut b = start;
    for _ in 0..count {
        if !b.is_finite() {
            return Err(format!("{kind} buckets overflow: bound {} is not finite", out.len()));
        }
        if out.last().is_some_and(|&last| b <= last) {
            return Err(format!("{kind} buckets are not strictly increasing at bound {} ({b})", out.len()));
        }
        out.push(b);
        b = step(b);
    }
    Ok(out)
}

fn explicit(bounds: &[f64]) -> Result<Vec<f64>, String> {
    if bounds.is_empty() {
        return Ok(DEFAULT_BOUNDS.to_vec());
    }
    // client_golang checks the order before it drops a trailing +Inf.
    let finite = match bounds.split_last() {
        Some((last, rest)) if *last == f64::INFINITY => rest,
        _ => bounds,
    };
    for (i, b) in bounds.iter().enumerate() {
        if i > 0 && bounds.get(i - 1).is_some_and(|prev| b <= prev) {
            return Err(format!("explicit bucket bounds must be strictly increasing (bound {i}: {b})"));
        }
        if !b.is_finite() && i < finite.len() {
            return Err(format!("explicit bucket bound {i} is not finite: {b}"));
        }
    }
    if finite.is_empty() {
        return Err(String::from("explicit buckets need at least one finite bound"));
    }
    Ok(finite.to_vec())
}

/// Mixer's `promValue`: the number a metric instance's value records. DOUBLE as is, INT64
/// converted, DURATION as seconds (Go `Duration.Seconds()`), string types through
/// `strconv.ParseFloat` (its error passed on); anything else is the error
/// `could not extract numeric value for <v>`.
pub fn prom_value(v: &Value<'_>) -> Result<f64, String> {
    match v {
        Value::Double(d) => Ok(*d),
        Value::Int64(i) => Ok(*i as f64),
        Value::Duration(nanos) => Ok(duration_seconds(*nanos)),
        Value::String(s) | Value::EmailAddress(s) | Value::Uri(s) | Value::DnsName(s) => parse_float(s),
        other => {
            let mut msg = String::from("could not extract numeric value for ");
            write_go_value(other, &mut msg);
            Err(msg)
        }
    }
}

/// Go's `Duration.Seconds()`: whole seconds plus the fraction, which rounds differently from
/// `nanos / 1e9` for large values.
fn duration_seconds(nanos: i64) -> f64 {
    let secs = nanos / 1_000_000_000;
    let frac = nanos % 1_000_000_000;
    secs as f64 + frac as f64 / 1e9
}

/// Go `%v` of the non-numeric instance values, for the error message: BOOL `true`, IP bytes
/// `[10 0 0 1]`, STRING_MAP `map[a:b c:d]`. TIMESTAMP uses the 6-digit UTC text rather than
/// Go's `time.Time.String()` form.
fn write_go_value(v: &Value<'_>, out: &mut String) {
    match v {
        Value::IpAddress(ip) => {
            out.push('[');
            for (i, b) in ip.as_bytes().iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                let _ = write!(out, "{b}");
            }
            out.push(']');
        }
        Value::StringMap(m) => {
            out.push_str("map[");
            for (i, (k, val)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                out.push_str(val);
            }
            out.push(']');
        }
        other => stringify(other, out),
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::expr::StringMap;

    #[test]
    fn safe_names() {
        assert_eq!(safe("requests_total"), "requests_total");
        assert_eq!(safe("requestcount.instance.istio-system"), "requestcount_instance_istiosystem");
        assert_eq!(safe("/a/b.c d-e"), "a_b_c_de");
        assert_eq!(safe("//x"), "_x");
        assert_eq!(safe(""), "");
        assert_eq!(safe("---"), "");
        assert_eq!(safe("héllo-wörld"), "héllowörld");
    }

    #[test]
    fn metric_names() {
        assert_eq!(metric_name(None, "requests_total"), "istio_requests_total");
        assert_eq!(metric_name(Some(""), "requests_total"), "istio_requests_total");
        assert_eq!(metric_name(None, "requestcount.instance.istio-system"), "istio_requestcount_instance_istiosystem");
        assert_eq!(metric_name(Some("my-ns.x"), "a b"), "myns_x_a_b");
        assert_eq!(metric_name(Some("-"), "a"), "a");
        assert_eq!(metric_name(None, "-"), "");
    }

    #[test]
    fn default_bounds() {
        assert_eq!(Buckets::Explicit { bounds: vec![] }.bounds(), Ok(DEFAULT_BOUNDS.to_vec()));
        assert_eq!(DEFAULT_BOUNDS.len(), 11);
    }

    #[test]
    fn linear_and_exponential_bounds() {
        let lin = Buckets::Linear { num_finite_buckets: 1, width: 1.0, offset: 4.0 };
        assert_eq!(lin.bounds(), Ok(vec![4.0, 5.0]));
        let exp = Buckets::Exponential { num_finite_buckets: 3, growth_factor: 3.0, scale: 4.0 };
        assert_eq!(exp.bounds(), Ok(vec![4.0, 12.0, 36.0, 108.0]));
        let bytes = Buckets::Exponential { num_finite_buckets: 8, growth_factor: 10.0, scale: 1.0 };
        assert_eq!(bytes.bounds(), Ok(vec![1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8]));
        // Repeated addition, as client_golang: 0.1 + 0.1 + 0.1 is not 0.3.
        let lin = Buckets::Linear { num_finite_buckets: 3, width: 0.1, offset: 0.0 };
        assert_eq!(lin.bounds(), Ok(vec![0.0, 0.1, 0.2, 0.1 + 0.1 + 0.1]));
        let lin = Buckets::Linear { num_finite_buckets: 2, width: 5.0, offset: -5.0 };
        assert_eq!(lin.bounds(), Ok(vec![-5.0, 0.0, 5.0]));
    }

    #[test]
    fn explicit_bounds() {
        let b = Buckets::Explicit { bounds: vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0] };
        assert_eq!(b.bounds(), Ok(DEFAULT_BOUNDS.to_vec()));
        let b = Buckets::Explicit { bounds: vec![1.0, 2.0, f64::INFINITY] };
        assert_eq!(b.bounds(), Ok(vec![1.0, 2.0]));
        let b = Buckets::Explicit { bounds: vec![-1.5, 0.0] };
        assert_eq!(b.bounds(), Ok(vec![-1.5, 0.0]));
    }

    #[test]
    fn nonsensical_buckets_are_errors() {
        let bad = [
            Buckets::Explicit { bounds: vec![2.0, 1.0] },
            Buckets::Explicit { bounds: vec![1.0, 1.0] },
            Buckets::Explicit { bounds: vec![1.0, f64::NAN] },
            Buckets::Explicit { bounds: vec![f64::NAN] },
            Buckets::Explicit { bounds: vec![f64::INFINITY, f64::INFINITY] },
            Buckets::Explicit { bounds: vec![f64::INFINITY] },
            Buckets::Explicit { bounds: vec![f64::NEG_INFINITY, 0.0] },
            Buckets::Explicit { bounds: vec![f64::INFINITY, 1.0] },
            Buckets::Linear { num_finite_buckets: 0, width: 1.0, offset: 0.0 },
            Buckets::Linear { num_finite_buckets: -1, width: 1.0, offset: 0.0 },
            Buckets::Linear { num_finite_buckets: 3, width: 0.0, offset: 0.0 },
            Buckets::Linear { num_finite_buckets: 3, width: -1.0, offset: 0.0 },
            Buckets::Linear { num_finite_buckets: 3, width: f64::NAN, offset: 0.0 },
            Buckets::Linear { num_finite_buckets: 3, width: 1.0, offset: f64::INFINITY },
            Buckets::Linear { num_finite_buckets: 3, width: 1e308, offset: 1e308 },
            Buckets::Linear { num_finite_buckets: 2, width: 1.0, offset: 1e300 },
            Buckets::Linear { num_finite_buckets: i32::MAX, width: 1.0, offset: 0.0 },
            Buckets::Exponential { num_finite_buckets: 0, growth_factor: 2.0, scale: 1.0 },
            Buckets::Exponential { num_finite_buckets: 3, growth_factor: 1.0, scale: 1.0 },
            Buckets::Exponential { num_finite_buckets: 3, growth_factor: 0.5, scale: 1.0 },
            Buckets::Exponential { num_finite_buckets: 3, growth_factor: f64::NAN, scale: 1.0 },
            Buckets::Exponential { num_finite_buckets: 3, growth_factor: 2.0, scale: 0.0 },
            Buckets::Exponential { num_finite_buckets: 3, growth_factor: 2.0, scale: -1.0 },
            Buckets::Exponential { num_finite_buckets: 3, growth_factor: 1e300, scale: 1e300 },
            Buckets::Exponential { num_finite_buckets: i32::MIN, growth_factor: 2.0, scale: 1.0 },
        ];
        for b in bad {
            assert!(b.bounds().is_err(), "{b:?} gave {:?}", b.bounds());
        }
    }

    #[test]
    fn prom_values() {
        assert_eq!(prom_value(&Value::Double(1.5)), Ok(1.5));
        assert_eq!(prom_value(&Value::Int64(-3)), Ok(-3.0));
        assert_eq!(prom_value(&Value::Duration(386_000_000)), Ok(0.386));
        assert_eq!(prom_value(&Value::Duration(-1_500_000_000)), Ok(-1.5));
        assert_eq!(prom_value(&Value::Duration(0)), Ok(0.0));
        assert_eq!(prom_value(&Value::Bool(true)), Err(String::from("could not extract numeric value for true")));
        let m = StringMap::from_pairs([("b", "2"), ("a", "1")]);
        assert_eq!(
            prom_value(&Value::StringMap(Cow::Owned(m))),
            Err(String::from("could not extract numeric value for map[a:1 b:2]"))
        );
    }

    #[test]
    fn ip_values_are_not_numbers() {
        let ip = crate::gostd::net_ip::IpBytes::from_v4([10, 0, 0, 1]);
        assert_eq!(
            prom_value(&Value::IpAddress(ip)),
            Err(String::from("could not extract numeric value for [10 0 0 1]"))
        );
    }

    #[test]
    fn duration_seconds_matches_go() {
        // Go: time.Duration(math.MaxInt64).Seconds() == 9.223372036854776e9
        assert_eq!(duration_seconds(i64::MAX), 9.223372036854776e9);
        assert_eq!(duration_seconds(i64::MIN), -9.223372036854776e9);
        assert_eq!(duration_seconds(1), 1e-9);
    }

    // Depends on gostd (ParseFloat).
    #[test]
    fn prom_value_parses_strings() {
        assert_eq!(prom_value(&Value::String(Cow::Borrowed("8.243543"))), Ok(8.243543));
        assert_eq!(prom_value(&Value::Uri(Cow::Borrowed("1e3"))), Ok(1000.0));
        assert!(prom_value(&Value::String(Cow::Borrowed("abc"))).is_err());
        assert!(prom_value(&Value::String(Cow::Borrowed(""))).is_err());
    }
}
