//! What the metrics and logs tests share: a string value and a bag over Istio's vocabulary.
#![allow(clippy::unwrap_used)]

use std::borrow::Cow;

use crate::expr::{Manifest, MapBag, Value};

pub(crate) fn s(v: &str) -> Value<'static> {
    Value::String(Cow::Owned(v.to_string()))
}

pub(crate) fn bag(attrs: &[(&str, Value<'static>)]) -> MapBag {
    let m = Manifest::istio();
    let mut b = MapBag::new(m);
    for (n, v) in attrs {
        b.set(m, n, v.clone()).unwrap();
    }
    b
}
