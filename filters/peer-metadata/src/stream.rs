//! One request: announce (outbound), receive, strip, verify and publish (both directions).

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use wasmixer_shared::attr::envoy_bag::Direction;
use wasmixer_shared::attr::peer_metadata::{METADATA_HEADER, METADATA_ID_HEADER};
use wasmixer_shared::attr::spiffe::{verify_peer_claim, PeerTrust};
use wasmixer_shared::attr::workload::WorkloadMetadata;
use wasmixer_shared::host::abi::{self, MapType};
use wasmixer_shared::host::identity::{
    listener_direction, published_peer, DOWNSTREAM_PEER_STATE, UNDIRECTED_PEER_STATE, UNVERIFIED_PEER_STATE,
    UPSTREAM_PEER_STATE,
};
use wasmixer_shared::host::request_carry::RequestCarry;

use crate::root::PeerShared;

pub struct PeerStream {
    shared: Option<Rc<PeerShared>>,
    carry: Rc<RequestCarry>,
    /// The listener's direction, read on the request.
    direction: Option<Direction>,
    /// Outbound: we announced ourselves, so the upstream may answer with its metadata.
    announced: bool,
    /// Inbound: the caller announced itself, so it gets our metadata in the response.
    caller_announced: bool,
}

impl PeerStream {
    /// A stream telling `carry` (shared with the request's other components) what it learns.
    pub fn new(shared: Option<Rc<PeerShared>>, carry: Rc<RequestCarry>) -> PeerStream {
        PeerStream { shared, carry, direction: None, announced: false, caller_announced: false }
    }
}

/// Takes the exchange headers out of `map`; host calls to remove them only when present.
fn strip(map: MapType) -> Option<Vec<u8>> {
    let value = abi::get_header_bytes(map, METADATA_HEADER)?;
    abi::remove_header(map, METADATA_HEADER);
    abi::remove_header(map, METADATA_ID_HEADER);
    Some(value)
}

impl PeerStream {
    fn outbound(&self) -> bool {
        self.direction == Some(Direction::Outbound)
    }

    /// Verifies a received announcement against the connection's certificate and publishes it.
    fn accept(&self, shared: &PeerShared, encoded: &[u8], direction: &'static str) {
        let (san_path, mtls_path): (&[&str], Option<&[&str]>) = if self.outbound() {
            (&["upstream", "uri_san_peer_certificate"], None)
        } else {
            (&["connection", "uri_san_peer_certificate"], Some(&["connection", "mtls"]))
        };
        let result = match shared.peers.get_or_decode(encoded) {
            None => {
                self.carry.learn_peer(None, true);
                "malformed"
            }
            Some(peer) => {
                // Outbound, this runs on the response: the upstream connection is final, so the
                // request's other components may reuse what is read here.
                let fetch = |path: &'static [&'static str]| {
                    self.carry.property(path, self.outbound(), || abi::get_property(path))
                };
                let san = fetch(san_path).map(|b| String::from_utf8_lossy(&b).into_owned());
                // A peer certificate with a URI SAN means the peer presented one: mutual TLS.
                // Without one, the connection's own answer tells no_mtls from no_certificate.
                let mtls = match (san.as_deref().is_some_and(|s| !s.is_empty()), mtls_path) {
                    (true, _) => true,
                    (false, Some(path)) => fetch(path).and_then(|b| b.first().copied()).is_some_and(|b| b != 0),
                    (false, None) => false,
                };
                let claim = WorkloadMetadata {
                    namespace: peer.namespace.clone().unwrap_or_default(),
                    service_account: peer.service_account.clone().unwrap_or_default(),
                    ..WorkloadMetadata::default()
                };
                match verify_peer_claim(&claim, san.as_deref(), mtls) {
                    PeerTrust::Verified => {
                        if shared.config.publish_filter_state {
                            let key = match self.direction {
                                Some(Direction::Outbound) => UPSTREAM_PEER_STATE,
                                Some(Direction::Inbound) => DOWNSTREAM_PEER_STATE,
                                None => UNDIRECTED_PEER_STATE,
                            };
                            let value = published_peer(encoded, san.as_deref().unwrap_or_default());
                            abi::set_property(&[key], &value);
                        }
                        if !self.outbound() {
                            // Verification needs the client's certificate: the connection is mTLS.
                            self.carry.remember_property(&["connection", "mtls"], Some(vec![1]));
                        }
                        self.carry.learn_peer(Some(peer), true);
                        "verified"
                    }
                    PeerTrust::Unverified(reason) => {
                        let published = shared.config.publish_unverified.then_some(peer);
                        if published.is_some() && shared.config.publish_filter_state {
                            abi::set_property(&[UNVERIFIED_PEER_STATE], encoded);
                        }
                        self.carry.learn_peer(published, false);
                        reason.as_str()
                    }
                }
            }
        };
        shared.exchanges.add([direction, result], 1);
    }
}

impl Context for PeerStream {}

impl HttpContext for PeerStream {
    fn on_http_request_headers(&mut self, _n: usize, _end: bool) -> Action {
        let Some(shared) = self.shared.clone() else { return Action::Continue };
        self.direction = self.carry.direction(listener_direction);
        if self.outbound() {
            let cluster = abi::get_property(&["xds", "cluster_name"])
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            match &shared.local_metadata {
                Some(meta) if shared.config.may_announce_to(&cluster) => {
                    abi::replace_header_bytes(MapType::RequestHeaders, METADATA_HEADER, meta.as_bytes());
                    abi::replace_header_bytes(MapType::RequestHeaders, METADATA_ID_HEADER, shared.local_id.as_bytes());
                    self.announced = true;
                }
                // Never forward an announcement the application made up, nor leak ours.
                _ => {
                    strip(MapType::RequestHeaders);
                }
            }
        } else if let Some(encoded) = strip(MapType::RequestHeaders) {
            self.caller_announced = true;
            self.accept(&shared, &encoded, "inbound");
        } else {
            // Nobody announced: the request's other components need not look in filter state.
            self.carry.learn_peer(None, true);
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, _end: bool) -> Action {
        let Some(shared) = self.shared.clone() else { return Action::Continue };
        if self.outbound() {
            let received = strip(MapType::ResponseHeaders);
            if let (true, Some(encoded)) = (self.announced, received) {
                self.accept(&shared, &encoded, "outbound");
            }
        } else if let (true, Some(meta)) = (self.caller_announced, &shared.local_metadata) {
            // Replacing also overwrites anything the application set under these names.
            abi::replace_header_bytes(MapType::ResponseHeaders, METADATA_HEADER, meta.as_bytes());
            abi::replace_header_bytes(MapType::ResponseHeaders, METADATA_ID_HEADER, shared.local_id.as_bytes());
        } else {
            strip(MapType::ResponseHeaders);
        }
        Action::Continue
    }
}
