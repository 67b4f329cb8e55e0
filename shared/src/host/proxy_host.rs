//! [`Host`] over proxy-wasm: what the attribute layer asks, answered with host calls.

use std::rc::Rc;

use super::abi::{self, MapType};
use super::identity::{listener_direction, RootIdentity};
use super::request_carry::{PeerTrustLevel, RequestCarry};
use crate::attr::envoy_bag::Direction;
use crate::attr::host::Host;
use crate::attr::sources::Side;
use crate::attr::workload_attributes::WorkloadAttributes;

/// The proxy as seen from one stream. It remembers, in the request's [`RequestCarry`], what the
/// request already revealed: the direction, the peer (read from the root's peers at `trust`)
/// and the properties that can no longer change.
pub struct ProxyHost<'a> {
    identity: &'a RootIdentity,
    trust: PeerTrustLevel,
    carry: &'a RequestCarry,
    after_response: bool,
}

impl<'a> ProxyHost<'a> {
    pub fn for_request(identity: &'a RootIdentity, trust: PeerTrustLevel, carry: &'a RequestCarry) -> ProxyHost<'a> {
        ProxyHost { identity, trust, carry, after_response: false }
    }

    /// In `on_log` properties no longer change: fetch each once for all readers of the request.
    pub fn after_response(mut self) -> ProxyHost<'a> {
        self.after_response = true;
        self
    }
}

impl Host for ProxyHost<'_> {
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.carry.property(path, self.after_response, || abi::get_property(path))
    }

    fn headers(&self, response: bool) -> Vec<(String, String)> {
        abi::get_header_map(if response { MapType::ResponseHeaders } else { MapType::RequestHeaders })
    }

    fn header(&self, response: bool, name: &str) -> Option<String> {
        abi::get_header(if response { MapType::ResponseHeaders } else { MapType::RequestHeaders }, name)
    }

    fn response_trailer(&self, name: &str) -> Option<String> {
        abi::get_header(MapType::ResponseTrailers, name)
    }

    fn now_nanos(&self) -> i64 {
        abi::now_nanos()
    }

    fn local_workload(&self) -> Option<Rc<WorkloadAttributes>> {
        self.identity.local.clone()
    }

    fn peer_workload(&self) -> Option<Rc<WorkloadAttributes>> {
        let peers = &self.identity.peers;
        let verified = || match self.listener_direction() {
            Some(Direction::Outbound) => self.carry.upstream_peer(|| peers.resolve_upstream()),
            Some(Direction::Inbound) => self.carry.downstream_peer(|| peers.resolve_downstream()),
            None => peers.resolve_undirected(),
        };
        self.carry.peer(self.trust, verified, || peers.resolve_unverified())
    }

    fn announced_peer(&self) -> Option<(Side, Rc<WorkloadAttributes>)> {
        if self.carry.known_direction().is_some() {
            // The direction costs nothing now; let it decide.
            return None;
        }
        let peers = &self.identity.peers;
        if let Some(caller) = self.carry.downstream_peer(|| peers.resolve_downstream()) {
            self.carry.direction(|| Some(Direction::Inbound));
            return Some((Side::Source, caller));
        }
        // A callee is published from the response headers: before them there is none to find.
        if self.after_response {
            if let Some(callee) = self.carry.upstream_peer(|| peers.resolve_upstream()) {
                self.carry.direction(|| Some(Direction::Outbound));
                return Some((Side::Destination, callee));
            }
        }
        None
    }

    fn listener_direction(&self) -> Option<Direction> {
        self.carry.direction(listener_direction)
    }
}
