//! [`AttributeSource`] over proxy-wasm: what the attribute layer asks, answered with host calls.

use std::rc::Rc;

use wasmixer_engine::attr::envoy_bag::Direction;
use wasmixer_engine::attr::identity::RootIdentity;
use wasmixer_engine::attr::request_carry::{PeerTrustLevel, RequestCarry};
use wasmixer_engine::attr::source::AttributeSource;
use wasmixer_engine::attr::sources::Side;
use wasmixer_engine::attr::workload_attributes::WorkloadAttributes;
use wasmixer_engine::expr::StringMap;

use crate::abi::{self, MapType};
use crate::identity::{
    listener_direction, resolve_downstream, resolve_undirected, resolve_unverified, resolve_upstream,
};
use crate::property_batch::PropertyBatch;

/// The proxy as seen from one stream. It remembers, in the request's [`RequestCarry`], what the
/// request already revealed: the direction, the peer (read from the root's peers at `trust`)
/// and the properties that can no longer change.
pub struct ProxyHost<'a> {
    identity: &'a RootIdentity,
    trust: PeerTrustLevel,
    carry: &'a RequestCarry,
    after_response: bool,
    batch: Option<&'a PropertyBatch>,
}

impl<'a> ProxyHost<'a> {
    pub fn for_request(identity: &'a RootIdentity, trust: PeerTrustLevel, carry: &'a RequestCarry) -> ProxyHost<'a> {
        ProxyHost { identity, trust, carry, after_response: false, batch: None }
    }

    /// In `on_log` properties no longer change: fetch each once for all readers of the request,
    /// those in `batch` with one host call.
    pub fn after_response(mut self, batch: Option<&'a PropertyBatch>) -> ProxyHost<'a> {
        self.after_response = true;
        self.batch = batch;
        self
    }
}

impl ProxyHost<'_> {
    /// The verified caller peer-metadata published (inbound), read at most once per request.
    fn caller(&self) -> Option<Rc<WorkloadAttributes>> {
        self.carry.downstream_peer(|| resolve_downstream(&self.identity.peers))
    }

    /// The verified upstream peer-metadata published (outbound, from the response), read at most
    /// once per request.
    fn callee(&self) -> Option<Rc<WorkloadAttributes>> {
        self.carry.upstream_peer(|| resolve_upstream(&self.identity.peers))
    }

    /// What a verified peer this request already found tells about the connection without
    /// asking Envoy: the certificate SAN it was verified against, and (downstream) that the
    /// connection is mutual TLS, which verification requires.
    fn known_from_peer(&self, path: &[&str]) -> Option<Vec<u8>> {
        let san = |upstream: bool| self.carry.known_published_peer(upstream)?.certificate_san.clone();
        match path {
            ["connection", "uri_san_peer_certificate"] => san(false).map(String::into_bytes),
            ["connection", "mtls"] => san(false).map(|_| vec![1]),
            ["upstream", "uri_san_peer_certificate"] => san(true).map(String::into_bytes),
            _ => None,
        }
    }

    /// `path` from this request's batch, if the batch has it and answered.
    fn batched(&self, path: &'static [&'static str]) -> Option<Vec<u8>> {
        let batch = self.batch?;
        let index = batch.index_of(path)?;
        self.carry.batched(batch.key(), index, || batch.fetch())
    }
}

impl AttributeSource for ProxyHost<'_> {
    fn property(&self, path: &'static [&'static str]) -> Option<Vec<u8>> {
        self.carry.property(path, self.after_response, || {
            self.known_from_peer(path).or_else(|| self.batched(path)).or_else(|| abi::get_property(path))
        })
    }

    fn headers(&self, response: bool) -> StringMap {
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
            Some(Direction::Outbound) => self.callee(),
            Some(Direction::Inbound) => self.caller(),
            None => resolve_undirected(peers),
        };
        self.carry.peer(self.trust, verified, || resolve_unverified(peers))
    }

    fn announced_peer(&self) -> Option<(Side, Rc<WorkloadAttributes>)> {
        if self.carry.known_direction().is_some()
            || self.batch.is_some_and(|b| b.index_of(&Direction::PROPERTY).is_some())
        {
            // The direction costs nothing now (or next to nothing, as one element of the
            // batch): let it decide, and look for the one peer it names.
            return None;
        }
        if let Some(caller) = self.caller() {
            self.carry.direction(|| Some(Direction::Inbound));
            return Some((Side::Source, caller));
        }
        // A callee is published from the response headers: before them there is none to find.
        if self.after_response {
            if let Some(callee) = self.callee() {
                self.carry.direction(|| Some(Direction::Outbound));
                return Some((Side::Destination, callee));
            }
        }
        None
    }

    fn listener_direction(&self) -> Option<Direction> {
        self.carry.direction(|| match self.batched(&Direction::PROPERTY) {
            Some(bytes) => Direction::from_property(&bytes),
            None => listener_direction(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmixer_engine::attr::identity::PeerCache;

    const SAN: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews";

    fn verified(san: Option<&str>) -> Option<Rc<WorkloadAttributes>> {
        Some(Rc::new(WorkloadAttributes { certificate_san: san.map(str::to_string), ..WorkloadAttributes::default() }))
    }

    // Off wasm32 the host calls answer nothing, so every `Some` here came from the peer.
    #[test]
    fn a_verified_caller_answers_for_the_connection() {
        let identity = RootIdentity { local: None, peers: PeerCache::default() };
        let carry = RequestCarry::default();
        let host = ProxyHost::for_request(&identity, PeerTrustLevel::VerifiedOnly, &carry);
        assert_eq!(host.property(&["connection", "mtls"]), None, "no peer found yet");
        carry.downstream_peer(|| verified(Some(SAN)));
        assert_eq!(host.property(&["connection", "mtls"]), Some(vec![1]));
        assert_eq!(host.property(&["connection", "uri_san_peer_certificate"]), Some(SAN.as_bytes().to_vec()));
        assert_eq!(host.property(&["upstream", "uri_san_peer_certificate"]), None, "the caller is not the upstream");
        assert_eq!(host.property(&["connection", "uri_san_local_certificate"]), None);
    }

    #[test]
    fn a_verified_callee_answers_for_the_upstream_connection_only() {
        let identity = RootIdentity { local: None, peers: PeerCache::default() };
        let carry = RequestCarry::default();
        carry.upstream_peer(|| verified(Some(SAN)));
        let host = ProxyHost::for_request(&identity, PeerTrustLevel::VerifiedOnly, &carry).after_response(None);
        assert_eq!(host.property(&["upstream", "uri_san_peer_certificate"]), Some(SAN.as_bytes().to_vec()));
        assert_eq!(host.property(&["connection", "mtls"]), None);
        // A peer published without its SAN (an older peer-metadata) tells nothing.
        let carry = RequestCarry::default();
        carry.downstream_peer(|| verified(None));
        let host = ProxyHost::for_request(&identity, PeerTrustLevel::VerifiedOnly, &carry);
        assert_eq!(host.property(&["connection", "mtls"]), None);
    }
}
