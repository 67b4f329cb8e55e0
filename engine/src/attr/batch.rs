//! The log-phase properties a configuration reads, as one CEL list a host can fetch with one
//! call per request instead of one call each (the proxy-wasm host's `PropertyBatch`, over
//! Envoy's `expr_evaluate`): which properties can be batched, the list's expression, and its
//! answer decoded.
//!
//! CEL fails the whole list when one element is absent, so only properties every finished HTTP
//! stream has are batched ([`BATCHABLE`]).

use std::ops::Range;

use super::envoy_bag::{Direction, SourceTable};
use super::pairs::pair_ranges;
use super::sources::Source;

/// Properties present on every finished HTTP stream (the direction too: Envoy answers 0 for a
/// listener without a `traffic_direction`, as `get_property` does).
pub const BATCHABLE: [&[&str]; 10] = [
    &Direction::PROPERTY,
    &["request", "time"],
    &["request", "duration"],
    &["request", "size"],
    &["request", "total_size"],
    &["response", "code"],
    &["response", "size"],
    &["response", "total_size"],
    &["response", "flags"],
    &["connection", "mtls"],
];

/// The batchable properties that `tables` read after the response, in [`BATCHABLE`]'s order.
pub fn log_phase_paths(tables: &[&SourceTable]) -> Vec<&'static [&'static str]> {
    let mut wanted = [false; BATCHABLE.len()];
    let mut want = |path: &[&str]| {
        if let Some(i) = BATCHABLE.iter().position(|p| *p == path) {
            if let Some(w) = wanted.get_mut(i) {
                *w = true;
            }
        }
    };
    for table in tables {
        if table.reads_workloads() {
            want(&Direction::PROPERTY);
        }
        for source in table.needed_sources() {
            match source {
                Source::Property(path, _) => want(path),
                Source::ByRole { .. } | Source::ReporterKind => want(&Direction::PROPERTY),
                Source::ResponseFlags => want(&["response", "flags"]),
                Source::ResponseTime => {
                    want(&["request", "time"]);
                    want(&["request", "duration"]);
                }
                _ => {}
            }
        }
    }
    BATCHABLE.iter().zip(wanted).filter(|(_, w)| *w).map(|(p, _)| *p).collect()
}

/// The CEL list of `paths`.
pub fn expression(paths: &[&[&str]]) -> String {
    let elements: Vec<String> = paths.iter().map(|p| p.join(".")).collect();
    format!("[{}]", elements.join(", "))
}

/// One request's answer to a batch: Envoy's buffer as it came, and where each element lies
/// in it (no copy per element).
#[derive(Debug, Default)]
pub struct BatchValues {
    bytes: Vec<u8>,
    elements: Vec<Range<usize>>,
}

impl BatchValues {
    /// Element `index`'s bytes.
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        self.bytes.get(self.elements.get(index)?.clone())
    }

    pub fn len(&self) -> usize {
        self.elements.len()
    }

    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// The values `elements`, as if Envoy had answered them.
    pub fn of(elements: &[&[u8]]) -> BatchValues {
        let mut values = BatchValues::default();
        for e in elements {
            let start = values.bytes.len();
            values.bytes.extend_from_slice(e);
            values.elements.push(start..values.bytes.len());
        }
        values
    }
}

/// A CEL list as Envoy serializes it (pairs whose keys are the elements); `None` unless it
/// has exactly `expected` elements.
pub fn decode(bytes: Vec<u8>, expected: usize) -> Option<BatchValues> {
    let elements: Vec<Range<usize>> = pair_ranges(&bytes).map(|(element, _)| element).collect();
    (elements.len() == expected).then_some(BatchValues { bytes, elements })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Manifest;

    /// What Envoy 1.40 answered for `[xds.listener_direction, response.flags, connection.mtls,
    /// response.code, request.duration, request.total_size, response.total_size]` (captured
    /// with a probe module): inbound, no flags, no mTLS, 200, 542856 ns, 172 and 109 bytes.
    const ANSWER: [u8; 123] = [
        7, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 8,
        0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 136, 72, 8, 0, 0, 0, 0, 0, 0, 0, 172, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 109, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn decodes_envoys_list_encoding() {
        let values = decode(ANSWER.to_vec(), 7).unwrap_or_default();
        let le = |n: i64| n.to_le_bytes().to_vec();
        let elements: Vec<Vec<u8>> = (0..values.len()).filter_map(|i| values.get(i).map(<[u8]>::to_vec)).collect();
        assert_eq!(elements, [le(1), le(0), vec![0], le(200), le(542_856), le(172), le(109)]);
        assert_eq!(values.get(7), None);
        assert!(decode(ANSWER.to_vec(), 6).is_none(), "a different element count is not this batch's answer");
        assert!(decode(ANSWER[..ANSWER.len() - 12].to_vec(), 7).is_none(), "truncated");
        assert!(decode(Vec::new(), 7).is_none());
        let of = BatchValues::of(&[b"ab", b"", b"c"]);
        assert_eq!((of.len(), of.get(0), of.get(1), of.get(2)), (3, Some(&b"ab"[..]), Some(&b""[..]), Some(&b"c"[..])));
    }

    #[test]
    fn expression_lists_the_paths() {
        assert_eq!(
            expression(&[&Direction::PROPERTY, &["response", "code"]]),
            "[xds.listener_direction, response.code]"
        );
    }

    #[test]
    fn only_batchable_log_phase_properties_are_batched() {
        let manifest = Manifest::istio();
        let ids =
            |names: &[&str]| -> Vec<_> { names.iter().filter_map(|n| manifest.lookup(n).map(|(id, _)| id)).collect() };
        // Istio's standard labels: workloads (direction), principals (SANs: may be absent),
        // response code, flags, duration, sizes, the reporter.
        let table = SourceTable::new(
            manifest,
            &ids(&[
                "source.workload.name",
                "source.principal",
                "response.code",
                "context.proxy_error_code",
                "response.duration",
                "request.total_size",
                "response.total_size",
                "context.reporter.kind",
                "request.headers",
            ]),
        );
        assert_eq!(
            log_phase_paths(&[&table]),
            [
                &Direction::PROPERTY[..],
                &["request", "duration"],
                &["request", "total_size"],
                &["response", "code"],
                &["response", "total_size"],
                &["response", "flags"],
            ]
        );
        let time = SourceTable::new(manifest, &ids(&["response.time", "request.path"]));
        assert_eq!(log_phase_paths(&[&time]), [&["request", "time"][..], &["request", "duration"]]);
        // A combined filter's components share one batch: the union, in the same order.
        let log = SourceTable::new(manifest, &ids(&["response.time", "response.code"]));
        assert_eq!(
            log_phase_paths(&[&table, &log]),
            [
                &Direction::PROPERTY[..],
                &["request", "time"],
                &["request", "duration"],
                &["request", "total_size"],
                &["response", "code"],
                &["response", "total_size"],
                &["response", "flags"],
            ]
        );
        let nothing = SourceTable::new(manifest, &ids(&["request.path", "request.headers"]));
        assert!(log_phase_paths(&[&nothing]).is_empty());
    }
}
