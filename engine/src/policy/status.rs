//! gRPC status codes: canonical names (`Status::ToString()`), and the proxy's gRPC -> HTTP
//! mapping for local replies (istio/proxy `src/istio/utils/status.cc`).

/// The canonical upper-case name of a gRPC code (`PERMISSION_DENIED`); `UNKNOWN` otherwise.
pub fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

/// The HTTP status of a local reply for a gRPC code.
pub fn http_status(code: i32) -> u32 {
    match code {
        0 => 200,
        1 => 499,
        2 => 500,
        3 => 400,
        4 => 504,
        5 => 404,
        6 => 409,
        7 => 403,
        8 => 429,
        9 => 400,
        10 => 409,
        11 => 400,
        12 => 501,
        13 => 500,
        14 => 503,
        15 => 500,
        16 => 401,
        _ => 500,
    }
}

/// Parses a code given as a number or as its canonical name (`7`, `"PERMISSION_DENIED"`).
pub fn parse_code(v: &serde_json::Value) -> Option<i32> {
    match v {
        serde_json::Value::Number(n) => n.as_i64().and_then(|c| i32::try_from(c).ok()).filter(|c| (0..=16).contains(c)),
        serde_json::Value::String(s) => (0..=16).find(|c| code_name(*c) == s),
        _ => None,
    }
}

/// A check status: code plus message. The body Mixer's proxy sent is [`Status::body`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub code: i32,
    pub message: String,
}

impl Status {
    pub fn is_ok(&self) -> bool {
        self.code == 0
    }

    /// `Status::ToString()`: `<CODE_NAME>:<message>`, or just the name when the message is empty.
    pub fn body(&self) -> String {
        let name = code_name(self.code);
        if self.message.is_empty() {
            return name.to_string();
        }
        let mut body = String::with_capacity(name.len() + 1 + self.message.len());
        body.push_str(name);
        body.push(':');
        body.push_str(&self.message);
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_body_and_codes() {
        let s = Status { code: 7, message: "denyreviewsv3handler.default:Not allowed".into() };
        assert_eq!(s.body(), "PERMISSION_DENIED:denyreviewsv3handler.default:Not allowed");
        assert_eq!(http_status(7), 403);
        assert_eq!(http_status(9), 400);
        assert_eq!(http_status(8), 429);
        assert_eq!(http_status(16), 401);
        assert_eq!(http_status(42), 500);
        assert_eq!(Status { code: 9, message: String::new() }.body(), "FAILED_PRECONDITION");
        assert_eq!(parse_code(&serde_json::json!("RESOURCE_EXHAUSTED")), Some(8));
        assert_eq!(parse_code(&serde_json::json!(7)), Some(7));
        assert_eq!(parse_code(&serde_json::json!(99)), None);
    }
}
