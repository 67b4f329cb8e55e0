//! CEXL conformance: every example of the spec (`mixer-expression-language.md`), with Mixer's
//! exact compile-error texts and runtime-error prefixes. Runs natively and on wasm32.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::borrow::Cow;

use wasmixer_engine::expr::{Manifest, MapBag, Program, StringMap, Value, ValueType};
use wasmixer_engine::gostd::net_ip::IpBytes;

/// The attribute names used by Mixer's own test table.
fn manifest() -> Manifest {
    use ValueType::*;
    Manifest::new([
        ("a", Int64),
        ("b", Int64),
        ("c", Int64),
        ("x", Int64),
        ("y", Int64),
        ("ai", Int64),
        ("ab", Bool),
        ("ad", Double),
        ("as", String),
        ("abc", String),
        ("bs", String),
        ("cs", String),
        ("adns", DnsName),
        ("aemail", EmailAddress),
        ("auri", Uri),
        ("aip", IpAddress),
        ("ats", Timestamp),
        ("adur", Duration),
        ("ar", StringMap),
        ("br", StringMap),
        ("service.name", String),
        ("request.header", StringMap),
        ("request.headers", StringMap),
        ("request.size", Int64),
        ("source.labels", StringMap),
        ("destination.labels", StringMap),
    ])
}

fn s(v: &str) -> Value<'static> {
    Value::String(Cow::Owned(v.to_string()))
}

fn map(pairs: &[(&str, &str)]) -> Value<'static> {
    Value::StringMap(Cow::Owned(StringMap::from_pairs(pairs.iter().copied())))
}

fn bag(m: &Manifest, attrs: &[(&str, Value<'static>)]) -> MapBag {
    let mut b = MapBag::new(m);
    for (name, v) in attrs {
        b.set(m, name, v.clone()).unwrap();
    }
    b
}

/// Evaluates `src` and returns the value, or `ERR <message>` for any error.
fn run(src: &str, attrs: &[(&str, Value<'static>)]) -> Result<Value<'static>, String> {
    let m = manifest();
    let p = Program::compile(src, &m).map_err(|e| format!("COMPILE {}", e.message))?;
    let b = bag(&m, attrs);
    let r = p.evaluate(&b).map(Value::into_owned).map_err(|e| format!("EVAL {e}"));
    r
}

fn compile_err(src: &str) -> String {
    match Program::compile(src, &manifest()) {
        Ok(p) => format!("compiled to {}", p.result_type()),
        Err(e) => e.message,
    }
}

fn result_type(src: &str) -> ValueType {
    Program::compile(src, &manifest()).unwrap().result_type()
}

#[test]
fn literal_types() {
    assert_eq!(result_type("200"), ValueType::Int64);
    assert_eq!(result_type("3.14"), ValueType::Double);
    assert_eq!(result_type(".5"), ValueType::Double);
    assert_eq!(result_type(r#""a\n\"b""#), ValueType::String);
    assert_eq!(result_type("`a\\b`"), ValueType::String);
    assert_eq!(result_type("'a'"), ValueType::String);
    assert_eq!(result_type(r#""10ms""#), ValueType::Duration);
    assert_eq!(result_type(r#""2h45m""#), ValueType::Duration);
    assert_eq!(result_type(r#""0""#), ValueType::Duration);
    assert_eq!(result_type(r#""1""#), ValueType::String);
    assert_eq!(result_type("TRUE"), ValueType::Bool);
    assert_eq!(run("010", &[]), Ok(Value::Int64(10)));
    assert_eq!(run("False", &[]), Ok(Value::Bool(false)));
}

#[test]
fn unsupported_operators_name_their_intrinsic() {
    assert_eq!(compile_err("a / b"), "unknown function: QUO");
    assert_eq!(compile_err("a % b"), "unknown function: REM");
    assert_eq!(compile_err("!ab"), "unknown function: NOT");
    assert_eq!(compile_err("-a"), "unknown function: SUB");
    assert_eq!(compile_err("a - b"), "unknown function: SUB");
    assert_eq!(compile_err("+a"), "ADD($a) arity mismatch. Got 1 arg(s), expected 2 arg(s)");
    assert_eq!(compile_err("a << b"), "unknown function: ");
    assert_eq!(compile_err("a = 2"), "unable to parse expression 'a = 2': 1:3: expected '==', found '='");
}

#[test]
fn type_errors_are_mixers_texts() {
    assert_eq!(compile_err("true == a"), "EQ(true, $a) arg 2 ($a) typeError got INT64, expected BOOL");
    assert_eq!(compile_err(r#"1 + "b""#), r#"ADD(1, "b") arg 2 ("b") typeError got STRING, expected INT64"#);
    assert_eq!(
        compile_err(r#""aaa".matches(23)"#),
        r#""aaa":matches(23) arg 1 (23) typeError got INT64, expected STRING"#
    );
    assert_eq!(compile_err("size()"), "size() arity mismatch. Got 0 arg(s), expected 1 arg(s)");
    assert_eq!(
        compile_err("match(service.name, 1)"),
        "match($service.name, 1) arg 2 (1) typeError got INT64, expected STRING"
    );
    assert_eq!(compile_err("xyz == 1"), "unknown attribute xyz");
    assert_eq!(compile_err(r#""A".toLower()"#), "invoking regular function on instance method: toLower");
    assert_eq!(compile_err(r#"startsWith("a")"#), "invoking instance method without an instance: startsWith");
    assert_eq!(compile_err(r#"abc == "0""#), r#"EQ($abc, "0") arg 2 ("0") typeError got DURATION, expected STRING"#);
    assert_eq!(compile_err(r#"abc == "5m""#), r#"EQ($abc, "5m") arg 2 ("5m") typeError got DURATION, expected STRING"#);
    assert_eq!(
        compile_err(r#"request.size | "200""#),
        r#"OR($request.size, "200") arg 2 ("200") typeError got STRING, expected INT64"#
    );
    assert_eq!(compile_err("ai == 2.0"), "EQ($ai, 2.0) arg 2 (2.0) typeError got DOUBLE, expected INT64");
    assert_eq!(compile_err("adns == abc"), "EQ($adns, $abc) arg 2 ($abc) typeError got STRING, expected DNS_NAME");
    assert_eq!(compile_err("size(ai)"), "size($ai) arg 1 ($ai) typeError got INT64, expected STRING");
}

#[test]
fn code_generation_rejections() {
    assert_eq!(compile_err("true + false"), "internal compiler error -- Add for type not yet implemented: bool");
    assert_eq!(
        compile_err(r#"adur == "1s""#),
        "internal compiler error -- equality for type not yet implemented: duration"
    );
    assert_eq!(
        compile_err(r#"adur > "100ms""#),
        "internal compiler error -- greater than for type not yet implemented: duration"
    );
    assert_eq!(compile_err("ar == br"), "internal compiler error -- equality for type not yet implemented: interface");
    assert_eq!(compile_err("ab < ab"), "internal compiler error -- less than for type not yet implemented: bool");
    assert_eq!(
        compile_err("aip <= aip"),
        "internal compiler error -- less or equal for type not yet implemented: interface"
    );
    // A type error anywhere wins over a code-generation rejection, as in Mixer.
    assert_eq!(compile_err(r#"adur == "1s" && nope"#), "unknown attribute nope");
}

#[test]
fn result_types() {
    assert_eq!(result_type("request.size | 200"), ValueType::Int64);
    assert_eq!(result_type("conditional(ab, 43.25, 25.43)"), ValueType::Double);
    assert_eq!(result_type(r#"ar["x"]"#), ValueType::String);
    assert_eq!(result_type("ar | emptyStringMap()"), ValueType::StringMap);
    assert_eq!(result_type(r#"ip("1.2.3.4")"#), ValueType::IpAddress);
    assert_eq!(result_type(r#"adns + dnsName("x")"#), ValueType::DnsName);
}

#[test]
fn precedence_and_fallback_binding() {
    assert_eq!(run(r#"abc | "x" == "y""#, &[]), Ok(Value::Bool(false)));
    assert_eq!(run(r#"abc | "y" == "y""#, &[]), Ok(Value::Bool(true)));
    assert_eq!(run(r#"abc | "a" + "b""#, &[("abc", s("a"))]), Ok(s("ab")));
    assert_eq!(run(r#"bs == abc | "q""#, &[("bs", s("q"))]), Ok(Value::Bool(true)));
}

#[test]
fn absent_attributes_are_errors_outside_fallbacks() {
    assert_eq!(run("x == 20 && y == 10", &[("y", Value::Int64(10))]), Err("EVAL lookup failed: 'x'".into()));
    assert_eq!(run("a == 2 || x == 3", &[("a", Value::Int64(2))]), Ok(Value::Bool(true)));
    assert_eq!(run("a == 2 && x == 3", &[("a", Value::Int64(1))]), Ok(Value::Bool(false)));
    assert_eq!(run(r#"ar["k"]"#, &[]), Err("EVAL lookup failed: 'ar'".into()));
    assert_eq!(run("ar[abc]", &[("ar", map(&[]))]), Err("EVAL lookup failed: 'abc'".into()));
}

#[test]
fn fallback_rules() {
    assert_eq!(run("ab | true", &[("ab", Value::Bool(false))]), Ok(Value::Bool(false)));
    assert_eq!(run("ab | true", &[]), Ok(Value::Bool(true)));
    assert_eq!(run(r#""foo".startsWith("bar") | true"#, &[]), Ok(Value::Bool(false)));
    assert_eq!(run("ip(abc) | ip(bs)", &[]), Err("EVAL lookup failed: 'abc'".into()));
    let ip = IpBytes::parse("5.6.7.8").unwrap();
    assert_eq!(run(r#"ip(abc | "5.6.7.8")"#, &[]), Ok(Value::IpAddress(ip)));
    assert_eq!(run(r#"ar[abc] | "foo""#, &[("ar", map(&[("x", "1")]))]), Ok(s("foo")));
    assert_eq!(run(r#"ar[abc] | "foo""#, &[("ar", map(&[("x", "1")])), ("abc", s("y"))]), Ok(s("foo")));
    assert_eq!(run(r#"ar[abc] | "foo""#, &[("ar", map(&[("x", "1")])), ("abc", s("x"))]), Ok(s("1")));
    assert_eq!(run(r#"(ar | br)["foo"]"#, &[("br", map(&[("foo", "bar")]))]), Ok(s("bar")));
    assert_eq!(run(r#"request.header["user"] | "unknown""#, &[]), Ok(s("unknown")));
    assert_eq!(run(r#"ar["k"] | "d""#, &[("ar", map(&[("k", "")]))]), Ok(s("")));
    assert_eq!(run(r#"abc | bs | "z""#, &[("bs", s("b"))]), Ok(s("b")));
    assert_eq!(run(r#"abc | bs | "z""#, &[]), Ok(s("z")));
    assert_eq!(run("abc | (bs | cs)", &[]), Err("EVAL lookup failed: 'cs'".into()));
    assert_eq!(run("abc | (bs | cs)", &[("cs", s("c"))]), Ok(s("c")));
    assert_eq!(run(r#"abc | "x""#, &[("abc", s(""))]), Ok(s("")));
    // Operator nodes left of `|` count as present (we do not copy Mixer's discard quirk).
    assert_eq!(run("(a == 1) | false", &[("a", Value::Int64(1))]), Ok(Value::Bool(true)));
    // The right operand is only evaluated when needed.
    assert_eq!(run("abc | bs", &[("abc", s("a"))]), Ok(s("a")));
}

#[test]
fn map_misses_read_as_empty_string() {
    assert_eq!(run(r#"request.header["X"] == "aaa""#, &[("request.header", map(&[]))]), Ok(Value::Bool(false)));
    assert_eq!(
        run(r#"match(request.headers["user-agent"], "curl*")"#, &[("request.headers", map(&[]))]),
        Ok(Value::Bool(false))
    );
    assert_eq!(
        run("request.headers[toLower(abc)]", &[("request.headers", map(&[("x-a", "1")])), ("abc", s("X-A"))]),
        Ok(s("1"))
    );
}

#[test]
fn functions() {
    assert_eq!(run(r#"match("kube-probe/1.1", "kube-probe*")"#, &[]), Ok(Value::Bool(true)));
    assert_eq!(run(r#"match("abc", "*bc")"#, &[]), Ok(Value::Bool(true)));
    assert_eq!(run(r#"match("abc", "*")"#, &[]), Ok(Value::Bool(true)));
    assert_eq!(run(r#"match("*abc", "*a*")"#, &[]), Ok(Value::Bool(true)));
    assert_eq!(run(r#"match("a*c", "a*c")"#, &[]), Ok(Value::Bool(true)));
    assert_eq!(run(r#""svc.*".matches("svc.cluster")"#, &[]), Ok(Value::Bool(true)));
    assert_eq!(run(r#""^b".matches("abc")"#, &[]), Ok(Value::Bool(false)));
    assert_eq!(run(r#""b".matches("abc")"#, &[]), Ok(Value::Bool(true)));
    // A constant pattern is compiled with the expression: one that does not compile rejects it
    // (Mixer failed such a rule on every request). A pattern computed per request keeps
    // Mixer's rule, an evaluation error.
    assert_eq!(run(r#""[".matches("abc")"#, &[]), Err("COMPILE error parsing regexp: missing closing ]: `[`".into()));
    assert_eq!(
        run(r#"abc.matches("x")"#, &[("abc", s("["))]),
        Err("EVAL error parsing regexp: missing closing ]: `[`".into())
    );
    assert_eq!(run(r#"abc.matches("über")"#, &[("abc", s(r"^\pL+$"))]), Ok(Value::Bool(true)));
    assert_eq!(run(r#"abc.startsWith("")"#, &[("abc", s("x"))]), Ok(Value::Bool(true)));
    assert_eq!(run(r#"abc.endsWith("yz")"#, &[("abc", s("xyz"))]), Ok(Value::Bool(true)));
    assert_eq!(run(r#"toLower(abc).startsWith("a")"#, &[("abc", s("ABC"))]), Ok(Value::Bool(true)));
    assert_eq!(run(r#"(abc | bs).endsWith("z")"#, &[("bs", s("z"))]), Ok(Value::Bool(true)));
    assert_eq!(run(r#"size("héllo")"#, &[]), Ok(Value::Int64(6)));
    assert_eq!(run(r#"toLower("ÀB")"#, &[]), Ok(s("àb")));
    assert_eq!(run(r#"conditional(ab, "x", "y")"#, &[("ab", Value::Bool(false))]), Ok(s("y")));
    // conditional is lazy, conditionalString is not.
    assert_eq!(run(r#"conditional(ab, "x", abc)"#, &[("ab", Value::Bool(true))]), Ok(s("x")));
    assert_eq!(
        run(r#"conditionalString(ab, "x", abc)"#, &[("ab", Value::Bool(true))]),
        Err("EVAL lookup failed: 'abc'".into())
    );
    assert_eq!(run("emptyStringMap()", &[]), Ok(map(&[])));
    assert_eq!(run(r#"ip("1.2.3")"#, &[]), Err("EVAL could not convert 1.2.3 to IP_ADDRESS".into()));
    assert_eq!(
        run(r#"timestamp("2017-01-01")"#, &[]),
        Err("EVAL could not convert '2017-01-01' to TIMESTAMP. expected format: '2006-01-02T15:04:05Z07:00'".into())
    );
    assert_eq!(run(r#"uri("")"#, &[]), Err("EVAL error converting string to uri: empty string".into()));
    assert_eq!(
        run(r#"uri(":/")"#, &[]),
        Err("EVAL error converting string to uri ':/': 'parse :/: missing protocol scheme'".into())
    );
    assert_eq!(
        run(r#"dnsName("")"#, &[]),
        Err(r#"EVAL error converting '' to dns name: 'idna: invalid label ""'"#.into())
    );
    assert_eq!(
        run(r#"email("Joe <joe@x.io>")"#, &[]),
        Err("EVAL error converting 'Joe <joe@x.io>' to e-mail: display names are not allowed".into())
    );
    assert_eq!(run(r#"email("")"#, &[]), Err("EVAL error converting '' to e-mail: 'mail: no address'".into()));
}

#[test]
fn arithmetic() {
    assert_eq!(run("a + 1", &[("a", Value::Int64(i64::MAX))]), Ok(Value::Int64(i64::MIN)));
    assert_eq!(run("1.5 + 1.25", &[]), Ok(Value::Double(2.75)));
    assert_eq!(run(r#""a" + "b""#, &[]), Ok(s("ab")));
}

#[test]
fn equality_by_type() {
    assert_eq!(run(r#"dnsName("foo.bar.baz") == dnsName("foo.Bar.baz.")"#, &[]), Ok(Value::Bool(true)));
    assert_eq!(run(r#"email("\"istio\"@istio.io") == email("istio@istio.io")"#, &[]), Ok(Value::Bool(true)));
    assert_eq!(run(r#"email("Foo@bar.com") == email("foo@bar.com")"#, &[]), Ok(Value::Bool(false)));
    assert_eq!(run(r#"email("foo@BAR.com") == email("foo@bar.com")"#, &[]), Ok(Value::Bool(true)));
    assert_eq!(run(r#"uri("http://x:80") == uri("http://x:81")"#, &[]), Ok(Value::Bool(false)));
    assert_eq!(run(r#"uri("http://HOST.COM:") == uri("http://host.COM")"#, &[]), Ok(Value::Bool(true)));
    assert_eq!(run(r#"uri("urn:BAR") == uri("urn:bar")"#, &[]), Ok(Value::Bool(false)));
    assert_eq!(run(r#"uri("http://host") == uri("http://host/")"#, &[]), Ok(Value::Bool(false)));
    assert_eq!(
        run(r#"ip("1.2.3.4") == aip"#, &[("aip", Value::IpAddress(IpBytes::from_v4([1, 2, 3, 4])))]),
        Ok(Value::Bool(true))
    );
    assert_eq!(run(r#"ip("::ffff:1.2.3.4") == ip("1.2.3.4")"#, &[]), Ok(Value::Bool(true)));
    let same_instant = r#"timestamp("2017-01-01T01:00:00+01:00") == timestamp("2017-01-01T00:00:00Z")"#;
    assert_eq!(run(same_instant, &[]), Ok(Value::Bool(true)));
    let leq_quirk = r#"timestamp("2017-01-01T01:00:00+01:00") <= timestamp("2017-01-01T00:00:00Z")"#;
    assert_eq!(run(leq_quirk, &[]), Ok(Value::Bool(false)));
    assert_eq!(
        run(r#"timestamp("2017-01-01T00:00:00Z") < timestamp("2017-01-01T00:00:01Z")"#, &[]),
        Ok(Value::Bool(true))
    );
    assert_eq!(run(r#""a" < "b""#, &[]), Ok(Value::Bool(true)));
    assert_eq!(run("ad == ad", &[("ad", Value::Double(f64::NAN))]), Ok(Value::Bool(false)));
    assert_eq!(run("ad != ad", &[("ad", Value::Double(f64::NAN))]), Ok(Value::Bool(true)));
}

#[test]
fn runtime_type_mismatch() {
    assert_eq!(run("abc", &[("abc", Value::Int64(1))]), Err("EVAL error converting value to string: '1'".into()));
    assert_eq!(run("a", &[("a", Value::Duration(5))]), Ok(Value::Int64(5)));
}

#[test]
fn shipped_expressions_compile_against_the_istio_vocabulary() {
    let corpus = [
        r#"context.protocol == "http" || context.protocol == "grpc""#,
        r#"(context.protocol == "http" || context.protocol == "grpc") && (match((request.useragent | "-"), "kube-probe*") == false) && (match((request.useragent | "-"), "Prometheus*") == false)"#,
        r#"context.protocol == "tcp" && ((connection.event | "na") == "open")"#,
        r#"conditional((context.reporter.kind | "inbound") == "outbound", "source", "destination")"#,
        r#"conditional((context.reporter.kind | "inbound") == "outbound", "unknown", conditional(connection.mtls | false, "mutual_tls", "none"))"#,
        r#"destination.service.host | conditional((destination.service.name | "unknown") == "unknown", "unknown", request.host)"#,
        r#"source.ip | ip("0.0.0.0")"#,
        r#"request.api_key | request.headers["x-api-key"] | """#,
        r#"response.duration | "0ms""#,
        "response.code | 200",
        "request.size | 0",
        r#"api.protocol | context.protocol | "unknown""#,
        r#"context.time | timestamp("2017-01-01T00:00:00Z")"#,
        r#"request.headers[":authority"] | request.host | """#,
        r#"source.labels["app"] | "unknown""#,
        "response.time",
        r#"destination.labels["app"] == "ratings" && source.labels["app"]=="reviews" && source.labels["version"] == "v3""#,
        r#"(source.labels["istio"] | "") == "ingressgateway" && (request.headers["x-user"] | "") == "john""#,
        r#"destination.labels["app"] == "details" && source.user == "cluster.local/ns/default/sa/bookinfo-productpage""#,
        r#"source.labels["app"] | source.workload.name | "unknown""#,
        r#"source.workload.name | "unknown""#,
        "2",
        r#""twice the fun!""#,
    ];
    for src in corpus {
        assert!(
            Program::compile(src, Manifest::istio()).is_ok(),
            "{src}: {:?}",
            Program::compile(src, Manifest::istio()).err()
        );
    }
}

#[test]
fn seed_deny_rule() {
    let m = Manifest::istio();
    let p = Program::compile(
        r#"destination.labels["app"] == "ratings" && source.labels["app"]=="reviews" && source.labels["version"] == "v3""#,
        m,
    )
    .unwrap();
    let mut b = MapBag::new(m);
    b.set(m, "destination.labels", map(&[("app", "ratings")])).unwrap();
    b.set(m, "source.labels", map(&[("app", "reviews"), ("version", "v3")])).unwrap();
    assert_eq!(p.evaluate_bool(&b), Ok(true));
    b.set(m, "source.labels", map(&[("app", "reviews"), ("version", "v2")])).unwrap();
    assert_eq!(p.evaluate_bool(&b), Ok(false));
    let names: Vec<&str> = p.attributes().iter().map(|id| m.name(*id)).collect();
    assert_eq!(names, ["source.labels", "destination.labels"]);
}
