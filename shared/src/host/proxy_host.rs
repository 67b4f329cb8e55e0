//! [`Host`] over proxy-wasm: what the attribute layer asks, answered with host calls.

use std::rc::Rc;

use super::abi::{self, MapType};
use super::identity::{listener_direction, PeerCache};
use super::request_carry::{PeerTrustLevel, RequestCarry};
use crate::attr::envoy_bag::Direction;
use crate::attr::host::Host;
use crate::attr::workload_attributes::WorkloadAttributes;

/// How the peer is found.
enum PeerLookup<'a> {
    /// Through the request's carry (filter state read at most once per request).
    Carried { peers: &'a PeerCache, trust: PeerTrustLevel },
    /// A caller-supplied resolver.
    Resolver(&'a dyn Fn() -> Option<Rc<WorkloadAttributes>>),
}

/// The proxy as seen from one stream. The peer is resolved lazily.
pub struct ProxyHost<'a> {
    local: Option<Rc<WorkloadAttributes>>,
    peer: PeerLookup<'a>,
    carry: Option<&'a RequestCarry>,
    after_response: bool,
}

impl<'a> ProxyHost<'a> {
    pub fn new(
        local: Option<Rc<WorkloadAttributes>>,
        peer: &'a dyn Fn() -> Option<Rc<WorkloadAttributes>>,
    ) -> ProxyHost<'a> {
        ProxyHost { local, peer: PeerLookup::Resolver(peer), carry: None, after_response: false }
    }

    /// A host that remembers, in `carry`, what this request already learned: the direction,
    /// the peer (read from `peers` at `trust`) and, [after the response](Self::after_response),
    /// every property.
    pub fn for_request(
        local: Option<Rc<WorkloadAttributes>>,
        peers: &'a PeerCache,
        trust: PeerTrustLevel,
        carry: &'a RequestCarry,
    ) -> ProxyHost<'a> {
        ProxyHost { local, peer: PeerLookup::Carried { peers, trust }, carry: Some(carry), after_response: false }
    }

    /// In `on_log` properties no longer change: fetch each once for all readers of the request.
    pub fn after_response(mut self) -> ProxyHost<'a> {
        self.after_response = true;
        self
    }
}

impl Host for ProxyHost<'_> {
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        match self.carry {
            Some(carry) => carry.property(path, self.after_response, || abi::get_property(path)),
            None => abi::get_property(path),
        }
    }

    fn headers(&self, response: bool) -> Vec<(String, String)> {
        abi::get_header_map(if response { MapType::ResponseHeaders } else { MapType::RequestHeaders })
    }

    fn header(&self, response: bool, name: &str) -> Option<String> {
        abi::get_header(if response { MapType::ResponseHeaders } else { MapType::RequestHeaders }, name)
    }

    fn now_nanos(&self) -> i64 {
        abi::now_nanos()
    }

    fn local_workload(&self) -> Option<Rc<WorkloadAttributes>> {
        self.local.clone()
    }

    fn peer_workload(&self) -> Option<Rc<WorkloadAttributes>> {
        match (&self.peer, self.carry) {
            (PeerLookup::Carried { peers, trust }, Some(carry)) => {
                carry.peer(*trust, || peers.resolve(), || peers.resolve_unverified())
            }
            (PeerLookup::Carried { peers, trust }, None) => match trust {
                PeerTrustLevel::VerifiedOnly => peers.resolve(),
                PeerTrustLevel::AllowUnverified => peers.resolve_allowing_unverified(),
            },
            (PeerLookup::Resolver(resolve), _) => resolve(),
        }
    }

    fn listener_direction(&self) -> Option<Direction> {
        match self.carry {
            Some(carry) => carry.direction(listener_direction),
            None => listener_direction(),
        }
    }
}
