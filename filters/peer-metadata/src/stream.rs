//! One request: announce (outbound), receive, strip, verify and publish (both directions).

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use wasmixer_engine::attr::envoy_bag::Direction;
use wasmixer_engine::attr::identity::{
    published_peer, DOWNSTREAM_PEER_STATE, UNDIRECTED_PEER_STATE, UNVERIFIED_PEER_STATE, UPSTREAM_PEER_STATE,
};
use wasmixer_engine::attr::istio_peer_state;
use wasmixer_engine::attr::request_carry::RequestCarry;
use wasmixer_engine::attr::spiffe::{verify_peer_claim, PeerTrust, SpiffeId};
use wasmixer_engine::attr::workload::WorkloadMetadata;
use wasmixer_proxy_wasm_host::abi::{self, MapType};
use wasmixer_proxy_wasm_host::component::{ComponentStream, Flow};
use wasmixer_proxy_wasm_host::identity::listener_direction;

use crate::config::{IstioHeaders, PeerConfig};
use crate::root::PeerShared;

pub struct PeerStream {
    shared: Option<Rc<PeerShared>>,
    carry: Rc<RequestCarry>,
    /// The listener's direction, read on the request.
    direction: Option<Direction>,
    /// Outbound: we announced ourselves, so the upstream may answer with its metadata.
    announced: bool,
    /// Inbound: the caller announced itself (under these names) on an mTLS connection, or on
    /// any connection with `answer_plaintext_callers`; it gets our metadata in the response.
    answer_under: Option<HeaderNames>,
}

/// One family of exchange headers: ours (configurable) or Istio's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HeaderNames {
    Ours,
    Istio,
}

impl PeerStream {
    /// A stream telling `carry` (shared with the request's other components) what it learns.
    pub fn new(shared: Option<Rc<PeerShared>>, carry: Rc<RequestCarry>) -> PeerStream {
        PeerStream { shared, carry, direction: None, announced: false, answer_under: None }
    }
}

impl HeaderNames {
    /// The metadata and id header of this family; `None` for Istio's when they are ignored (or
    /// the same as ours).
    fn names(self, config: &PeerConfig) -> Option<(&str, &str)> {
        match self {
            HeaderNames::Ours => Some((config.metadata_header.as_str(), config.metadata_id_header.as_str())),
            HeaderNames::Istio => config.istio_names(),
        }
    }
}

/// Takes the exchange headers `names` out of `map`; host calls to remove them only when present.
fn strip(map: MapType, (metadata, id): (&str, &str)) -> Option<Vec<u8>> {
    let value = abi::get_header_bytes(map, metadata)?;
    abi::remove_header(map, metadata);
    abi::remove_header(map, id);
    Some(value)
}

/// Takes an announcement out of `map`: ours first, then Istio's; both families are stripped.
fn receive(map: MapType, config: &PeerConfig) -> Option<(HeaderNames, Vec<u8>)> {
    let ours = strip(map, HeaderNames::Ours.names(config)?);
    let istio = HeaderNames::Istio.names(config).and_then(|names| strip(map, names));
    match (ours, istio) {
        (Some(encoded), _) => Some((HeaderNames::Ours, encoded)),
        (None, Some(encoded)) => Some((HeaderNames::Istio, encoded)),
        (None, None) => None,
    }
}

/// Puts our announcement into `map` under `family`'s names.
fn announce(map: MapType, family: HeaderNames, shared: &PeerShared, metadata: &str) {
    if let Some((name, id)) = family.names(&shared.config) {
        abi::replace_header_bytes(map, name, metadata.as_bytes());
        abi::replace_header_bytes(map, id, shared.local_id.as_bytes());
    }
}

impl PeerStream {
    fn outbound(&self) -> bool {
        self.direction == Some(Direction::Outbound)
    }

    /// A property of the peer's connection. Outbound, this runs on the response: the upstream
    /// connection is final, so the request's other components may reuse what is read here.
    fn peer_property(&self, path: &'static [&'static str]) -> Option<Vec<u8>> {
        self.carry.property(path, self.outbound(), || abi::get_property(path))
    }

    /// The peer certificate's URI SAN: the caller's inbound, the upstream's outbound.
    fn peer_certificate_san(&self) -> Option<String> {
        let path: &'static [&'static str] = if self.outbound() {
            &["upstream", "uri_san_peer_certificate"]
        } else {
            &["connection", "uri_san_peer_certificate"]
        };
        self.peer_property(path).map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// Verifies a received announcement against the connection's certificate (its SAN from
    /// `san`, read only for a well-formed claim) and publishes it; tells whether the connection
    /// is mTLS (a peer certificate was presented).
    fn accept(
        &self,
        shared: &PeerShared,
        encoded: &[u8],
        san: impl FnOnce() -> Option<String>,
        direction: &'static str,
    ) -> bool {
        let mut connection_mtls = false;
        let result = match shared.peers.get_or_decode(encoded) {
            None => {
                self.carry.learn_peer(None, true);
                "malformed"
            }
            Some(peer) => {
                let san = san();
                // A peer certificate with a URI SAN means the peer presented one: mutual TLS.
                // Without one, the connection's own answer tells no_mtls from no_certificate.
                let mtls = match (san.as_deref().is_some_and(|s| !s.is_empty()), self.outbound()) {
                    (true, _) => true,
                    (false, false) => self
                        .peer_property(&["connection", "mtls"])
                        .and_then(|b| b.first().copied())
                        .is_some_and(|b| b != 0),
                    (false, true) => false,
                };
                connection_mtls = mtls;
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
        shared.count_exchange(direction, result);
        connection_mtls
    }

    /// No header announced a peer: Istio's own peer-metadata filter, if it ran ahead of us, may
    /// have kept one in filter state. It is verified like an announcement: its namespace (and
    /// its service account, when Istio had the peer's identity) against the certificate.
    fn accept_istio_state(&self, shared: &PeerShared, direction: &'static str) -> bool {
        if !shared.config.istio_peer_state {
            return false;
        }
        let Some(peer) = istio_peer_state::read(self.outbound(), abi::get_property) else { return false };
        let mut claim = peer.metadata;
        let san = self.peer_certificate_san();
        if peer.identity.is_none() {
            // Istio learnt the peer from its own header exchange, which carries no service
            // account: the claim can be checked by namespace only, and the service account is
            // the certificate's (README, security model).
            let certificate = san.as_deref().and_then(|s| SpiffeId::parse(s).ok());
            if let Some(id) = certificate.filter(|id| id.namespace() == claim.namespace) {
                claim.service_account = id.service_account().to_string();
            }
        }
        self.accept(shared, claim.encode_header().as_bytes(), || san, direction);
        true
    }
}

impl Context for PeerStream {}

/// The standalone filter's stream, on the SDK's dispatcher: the component's phases.
impl HttpContext for PeerStream {
    fn on_http_request_headers(&mut self, _n: usize, _end: bool) -> Action {
        self.on_request_headers();
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, _end: bool) -> Action {
        self.on_response_headers();
        Action::Continue
    }
}

/// Peer metadata never stops a request.
impl ComponentStream for PeerStream {
    fn on_request_headers(&mut self) -> Flow {
        let Some(shared) = self.shared.clone() else { return Flow::Continue };
        let config = &shared.config;
        self.direction = self.carry.direction(listener_direction);
        if self.outbound() {
            let cluster = abi::get_property(&["xds", "cluster_name"])
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            match &shared.local_metadata {
                Some(meta) if config.may_announce_to(&cluster) => {
                    announce(MapType::RequestHeaders, HeaderNames::Ours, &shared, meta);
                    match (config.istio_headers, HeaderNames::Istio.names(config)) {
                        (IstioHeaders::Exchange, _) => {
                            announce(MapType::RequestHeaders, HeaderNames::Istio, &shared, meta)
                        }
                        // Never forward an announcement the application made up under Istio's names.
                        (IstioHeaders::Accept, Some(names)) => {
                            strip(MapType::RequestHeaders, names);
                        }
                        _ => {}
                    }
                    self.announced = true;
                }
                // Never forward an announcement the application made up, nor leak ours.
                _ => {
                    receive(MapType::RequestHeaders, config);
                }
            }
        } else if let Some((family, encoded)) = receive(MapType::RequestHeaders, config) {
            let mtls = self.accept(&shared, &encoded, || self.peer_certificate_san(), "inbound");
            // Our answer names this workload: only callers on an mTLS connection get it, unless
            // the operator restores Istio's behaviour.
            self.answer_under = (mtls || config.answer_plaintext_callers).then_some(family);
        } else if !self.accept_istio_state(&shared, "inbound") {
            // Nobody announced: the request's other components need not look in filter state.
            self.carry.learn_peer(None, true);
        }
        Flow::Continue
    }

    fn on_response_headers(&mut self) {
        let Some(shared) = self.shared.clone() else { return };
        if self.outbound() {
            let received = receive(MapType::ResponseHeaders, &shared.config);
            match (self.announced, received) {
                (true, Some((_, encoded))) => {
                    self.accept(&shared, &encoded, || self.peer_certificate_san(), "outbound");
                }
                (true, None) => {
                    self.accept_istio_state(&shared, "outbound");
                }
                (false, _) => {}
            }
        } else if let (Some(family), Some(meta)) = (self.answer_under, &shared.local_metadata) {
            // Replacing also overwrites anything the application set under these names.
            announce(MapType::ResponseHeaders, family, &shared, meta);
        } else {
            receive(MapType::ResponseHeaders, &shared.config);
        }
    }
}
