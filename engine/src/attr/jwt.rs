//! The request's JWT attributes (`request.auth.*`) from the payload Envoy's `jwt_authn` filter
//! verified and stored in the stream's dynamic metadata, read the way Istio 1.4's proxy turned
//! its authentication result into Mixer attributes.
//!
//! `jwt_authn` must run before the wasmixer filter and name a key with `payload_in_metadata`.
//! Istio keys the payload by issuer, so the key is not known here: the first payload under
//! `envoy.filters.http.jwt_authn` (in key order) is the request's.

use std::borrow::Cow;

use serde_json::Value as Json;

use super::protobuf_struct;
use super::sources::JwtField;
use crate::config::json_text;
use crate::expr::value::{StringMap, Value};

/// The `metadata` property path and the filter whose entry holds the payload.
pub const METADATA_PROPERTY: &[&str] = &["metadata"];
const JWT_FILTER: &str = "envoy.filters.http.jwt_authn";

/// The verified payload in `metadata` (Envoy's `envoy.config.core.v3.Metadata` bytes): a JSON
/// object of the claims.
pub fn payload(metadata: &[u8]) -> Option<Json> {
    let entries = protobuf_struct::filter_metadata(metadata, JWT_FILTER).ok()??;
    entries.into_iter().map(|(_, v)| v).find(Json::is_object)
}

/// One JWT attribute of `payload` (a [`payload`]); `None` when the token lacks it.
pub fn attribute(payload: &Json, field: JwtField) -> Option<Value<'static>> {
    let claims = payload.as_object()?;
    let string = |s: String| Some(Value::String(Cow::Owned(s)));
    match field {
        JwtField::Principal => {
            let (iss, sub) = (claims.get("iss")?.as_str()?, claims.get("sub")?.as_str()?);
            string(format!("{iss}/{sub}"))
        }
        // Istio's authn filter collected `aud` (a string or a list) and handed Mixer the first.
        JwtField::Audiences => {
            let aud = match claims.get("aud")? {
                Json::Array(items) => items.first()?,
                one => one,
            };
            string(aud.as_str()?.to_string())
        }
        JwtField::Presenter => string(claims.get("azp")?.as_str()?.to_string()),
        JwtField::Claims => {
            // Istio 1.4's `AttributesBuilder::AddProtoStructStringMap`: "Ignore all fields that
            // are not string."
            let strings = claims.iter().filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)));
            Some(Value::StringMap(Cow::Owned(StringMap::from_pairs(strings))))
        }
        JwtField::RawClaims => string(json_text(payload).to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn claims_become_mixer_s_attributes() {
        let c = json!({
            "iss": "https://issuer.example", "sub": "alice", "aud": ["svc-a", "svc-b"], "azp": "client-1",
            "groups": ["admins", "dev"], "email": "a@example.com", "exp": 4102444800.0, "nested": {"a": "b"}, "empty": []
        });
        let s = |f| attribute(&c, f).map(|v| format!("{v:?}"));
        assert_eq!(s(JwtField::Principal).unwrap(), r#"String("https://issuer.example/alice")"#);
        assert_eq!(s(JwtField::Audiences).unwrap(), r#"String("svc-a")"#);
        assert_eq!(s(JwtField::Presenter).unwrap(), r#"String("client-1")"#);
        let raw = match attribute(&c, JwtField::RawClaims) {
            Some(Value::String(s)) => s.into_owned(),
            other => unreachable!("not a string: {other:?}"),
        };
        assert_eq!(
            raw,
            r#"{"aud":["svc-a","svc-b"],"azp":"client-1","email":"a@example.com","empty":[],"exp":4102444800,"groups":["admins","dev"],"iss":"https://issuer.example","nested":{"a":"b"},"sub":"alice"}"#
        );
        let claims_map = match attribute(&c, JwtField::Claims) {
            Some(Value::StringMap(map)) => map.into_owned(),
            other => unreachable!("not a map: {other:?}"),
        };
        assert_eq!(
            claims_map.iter().collect::<Vec<_>>(),
            [("azp", "client-1"), ("email", "a@example.com"), ("iss", "https://issuer.example"), ("sub", "alice")]
        );
    }

    #[test]
    fn missing_claims_are_absent() {
        let c = json!({"sub": "alice", "aud": "svc"});
        assert!(attribute(&c, JwtField::Principal).is_none());
        assert!(attribute(&c, JwtField::Presenter).is_none());
        assert_eq!(format!("{:?}", attribute(&c, JwtField::Audiences).unwrap()), r#"String("svc")"#);
    }

    #[test]
    fn the_payload_is_found_under_any_key_of_jwt_authn_s_metadata() {
        let payload_json = json!({"iss": "i", "sub": "s"});
        let jwt = json!({"https://issuer.example": payload_json});
        let other = json!({"x": "y"});
        let metadata = protobuf_struct::encode_filter_metadata(&[
            ("istio_authn", other.as_object().unwrap()),
            (JWT_FILTER, jwt.as_object().unwrap()),
        ])
        .unwrap();
        assert_eq!(payload(&metadata), Some(payload_json));
        assert_eq!(payload(&metadata[..metadata.len() - 3]), None);
        assert_eq!(payload(&[]), None);
    }
}
