//! What one request's filters learn once and share across phases (and, in the combined `mixer`
//! filter, across components): the listener's direction, the peer, and the log-phase
//! properties. Every entry saves a host call each time a second reader asks.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;

use super::batch::BatchValues;
use crate::attr::envoy_bag::Direction;
use crate::attr::workload_attributes::WorkloadAttributes;
use crate::bytes::strs_equal;

/// A peer as far as this request knows it: not asked yet, or asked (present or absent).
#[derive(Clone, Default)]
enum PeerSlot {
    #[default]
    Unknown,
    Known(Option<Rc<WorkloadAttributes>>),
}

/// A fetched property: its path and what Envoy answered.
type PropertyMemo = (&'static [&'static str], Option<Vec<u8>>);

/// Per-request memory shared by the component streams of one request.
#[derive(Default)]
pub struct RequestCarry {
    /// Several components read this carry: remembering properties pays off.
    shared: bool,
    direction: OnceCell<Option<Direction>>,
    /// The verified peers the metadata exchange published (their filter-state keys): the
    /// caller on a listener that is not outbound, the callee on an outbound one.
    downstream_peer: RefCell<PeerSlot>,
    upstream_peer: RefCell<PeerSlot>,
    verified_peer: RefCell<PeerSlot>,
    unverified_peer: RefCell<PeerSlot>,
    /// Properties that can no longer change (see [`RequestCarry::property`]).
    final_properties: RefCell<Vec<PropertyMemo>>,
    /// Log-phase property batches fetched for this request (see [`RequestCarry::batched`]).
    batches: RefCell<Vec<BatchMemo>>,
}

/// A batch's key and its values, or `None` when its evaluation failed for this request.
type BatchMemo = (usize, Option<Rc<BatchValues>>);

/// Which peer a reader accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerTrustLevel {
    VerifiedOnly,
    AllowUnverified,
}

impl PeerTrustLevel {
    /// From a configuration's opt-in to unverified peers.
    pub fn allowing_unverified(allow: bool) -> PeerTrustLevel {
        if allow {
            PeerTrustLevel::AllowUnverified
        } else {
            PeerTrustLevel::VerifiedOnly
        }
    }
}

impl RequestCarry {
    /// A carry for one filter's own phases (direction and peer remembered; properties not,
    /// since no second reader would ask).
    pub fn new() -> Rc<RequestCarry> {
        Rc::new(RequestCarry::default())
    }

    /// A carry read by several components of one filter: log-phase properties are remembered too.
    pub fn shared() -> Rc<RequestCarry> {
        Rc::new(RequestCarry { shared: true, ..RequestCarry::default() })
    }

    /// The listener's direction, from `fetch` on first use.
    pub fn direction(&self, fetch: impl FnOnce() -> Option<Direction>) -> Option<Direction> {
        *self.direction.get_or_init(fetch)
    }

    /// The direction, if some reader already fetched it.
    pub fn known_direction(&self) -> Option<Option<Direction>> {
        self.direction.get().copied()
    }

    /// The verified caller the metadata exchange published (a listener that is not outbound),
    /// from `fetch` at most once.
    pub fn downstream_peer(
        &self,
        fetch: impl FnOnce() -> Option<Rc<WorkloadAttributes>>,
    ) -> Option<Rc<WorkloadAttributes>> {
        resolve(&self.downstream_peer, fetch)
    }

    /// The verified caller or callee (`upstream`), if a reader already found it; never fetches.
    pub fn known_published_peer(&self, upstream: bool) -> Option<Rc<WorkloadAttributes>> {
        let slot = if upstream { &self.upstream_peer } else { &self.downstream_peer };
        match &*slot.try_borrow().ok()? {
            PeerSlot::Known(peer) => peer.clone(),
            PeerSlot::Unknown => None,
        }
    }

    /// The verified callee the metadata exchange published (an outbound listener, once the
    /// response came), from `fetch` at most once.
    pub fn upstream_peer(
        &self,
        fetch: impl FnOnce() -> Option<Rc<WorkloadAttributes>>,
    ) -> Option<Rc<WorkloadAttributes>> {
        resolve(&self.upstream_peer, fetch)
    }

    /// The peer for a reader at `trust`, resolving each kind at most once with `fetch_verified`
    /// / `fetch_unverified` (filter-state reads) unless the peer-metadata component told us.
    pub fn peer(
        &self,
        trust: PeerTrustLevel,
        fetch_verified: impl FnOnce() -> Option<Rc<WorkloadAttributes>>,
        fetch_unverified: impl FnOnce() -> Option<Rc<WorkloadAttributes>>,
    ) -> Option<Rc<WorkloadAttributes>> {
        let verified = resolve(&self.verified_peer, fetch_verified);
        if verified.is_some() || trust == PeerTrustLevel::VerifiedOnly {
            return verified;
        }
        resolve(&self.unverified_peer, fetch_unverified)
    }

    /// Records what the peer-metadata component learned (overrides an earlier "absent": the
    /// peer of an outbound request is only known from the response).
    pub fn learn_peer(&self, peer: Option<Rc<WorkloadAttributes>>, verified: bool) {
        let (slot, other) = if verified {
            (&self.verified_peer, &self.unverified_peer)
        } else {
            (&self.unverified_peer, &self.verified_peer)
        };
        if let Ok(mut s) = slot.try_borrow_mut() {
            *s = PeerSlot::Known(peer);
        }
        if let Ok(mut o) = other.try_borrow_mut() {
            if matches!(*o, PeerSlot::Unknown) {
                *o = PeerSlot::Known(None);
            }
        }
    }

    /// A property, fetched once for all readers of this request when it cannot change any more:
    /// after the response (`after_response`), or at any time for the downstream connection's
    /// own properties (`connection.*`, `source.*`, `destination.*`).
    pub fn property(
        &self,
        path: &'static [&'static str],
        after_response: bool,
        fetch: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Option<Vec<u8>> {
        let stable = after_response || matches!(path.first(), Some(&("connection" | "source" | "destination")));
        if !self.shared || !stable {
            return fetch();
        }
        if let Ok(memo) = self.final_properties.try_borrow() {
            if let Some((_, v)) = memo.iter().find(|(p, _)| same_path(p, path)) {
                return v.clone();
            }
        }
        let value = fetch();
        if let Ok(mut memo) = self.final_properties.try_borrow_mut() {
            memo.push((path, value.clone()));
        }
        value
    }
}

impl RequestCarry {
    /// Element `index` of the batch `key`, fetching the batch with `fetch` on first use (once
    /// per request, whether it succeeds or not). `None` when the batch failed: read the
    /// property on its own.
    pub fn batched(&self, key: usize, index: usize, fetch: impl FnOnce() -> Option<BatchValues>) -> Option<Vec<u8>> {
        let known = self.batches.try_borrow().ok()?.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
        let values = match known {
            Some(values) => values,
            None => {
                let values = fetch().map(Rc::new);
                if let Ok(mut batches) = self.batches.try_borrow_mut() {
                    batches.push((key, values.clone()));
                }
                values
            }
        };
        values?.get(index).map(<[u8]>::to_vec)
    }

    /// Records the value of a property that cannot change any more, learned without asking
    /// Envoy (e.g. implied by a verification), for the request's other readers. Only a shared
    /// carry remembers properties; an entry already there is kept.
    pub fn remember_property(&self, path: &'static [&'static str], value: Option<Vec<u8>>) {
        if !self.shared {
            return;
        }
        if let Ok(mut memo) = self.final_properties.try_borrow_mut() {
            if !memo.iter().any(|(p, _)| same_path(p, path)) {
                memo.push((path, value));
            }
        }
    }
}

/// The same property path: the same static (most often), or the same strings.
fn same_path(a: &'static [&'static str], b: &'static [&'static str]) -> bool {
    std::ptr::eq(a, b) || strs_equal(a, b)
}

fn resolve(
    slot: &RefCell<PeerSlot>,
    fetch: impl FnOnce() -> Option<Rc<WorkloadAttributes>>,
) -> Option<Rc<WorkloadAttributes>> {
    if let Ok(s) = slot.try_borrow() {
        if let PeerSlot::Known(p) = &*s {
            return p.clone();
        }
    }
    let peer = fetch();
    if let Ok(mut s) = slot.try_borrow_mut() {
        *s = PeerSlot::Known(peer.clone());
    }
    peer
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use std::cell::Cell;

    fn peer(name: &str) -> Option<Rc<WorkloadAttributes>> {
        Some(Rc::new(WorkloadAttributes { name: Some(name.into()), ..WorkloadAttributes::default() }))
    }

    #[test]
    fn a_batch_is_fetched_once_per_request_even_when_it_fails() {
        let carry = RequestCarry::default();
        let calls = Cell::new(0);
        let fetch = |answer: Option<BatchValues>| {
            let calls = &calls;
            move || {
                calls.set(calls.get() + 1);
                answer
            }
        };
        assert_eq!(carry.batched(1, 1, fetch(Some(BatchValues::of(&[&[1], &[2]])))), Some(vec![2]));
        assert_eq!(carry.batched(1, 0, fetch(None)), Some(vec![1]), "the first answer stands");
        assert_eq!(carry.batched(1, 5, fetch(None)), None, "no such element");
        assert_eq!(calls.get(), 1);
        assert_eq!(carry.batched(2, 0, fetch(None)), None, "another batch, failed: read on its own");
        assert_eq!(carry.batched(2, 0, fetch(Some(BatchValues::of(&[&[3]])))), None, "not retried within the request");
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn direction_is_fetched_once() {
        let carry = RequestCarry::default();
        let calls = Cell::new(0);
        for _ in 0..3 {
            let d = carry.direction(|| {
                calls.set(calls.get() + 1);
                Some(Direction::Outbound)
            });
            assert_eq!(d, Some(Direction::Outbound));
        }
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn peers_resolve_once_per_kind_and_learning_overrides() {
        let carry = RequestCarry::default();
        let fetches = Cell::new(0);
        let count = |p: Option<Rc<WorkloadAttributes>>| {
            fetches.set(fetches.get() + 1);
            p
        };
        assert!(carry.peer(PeerTrustLevel::VerifiedOnly, || count(None), || count(peer("x"))).is_none());
        assert_eq!(fetches.get(), 1);
        let p = carry.peer(PeerTrustLevel::AllowUnverified, || count(None), || count(peer("claimed")));
        assert_eq!(p.unwrap().name.as_deref(), Some("claimed"));
        assert_eq!(fetches.get(), 2);
        carry.peer(PeerTrustLevel::AllowUnverified, || count(None), || count(None));
        assert_eq!(fetches.get(), 2, "both kinds are remembered");
        // The response taught us the verified peer (outbound): readers now see it.
        carry.learn_peer(peer("ratings"), true);
        let p = carry.peer(PeerTrustLevel::VerifiedOnly, || count(None), || count(None));
        assert_eq!(p.unwrap().name.as_deref(), Some("ratings"));
        assert_eq!(fetches.get(), 2);
    }

    #[test]
    fn remembered_properties_answer_readers_of_a_shared_carry_only() {
        let carry = RequestCarry::shared();
        carry.remember_property(&["connection", "mtls"], Some(vec![1]));
        carry.remember_property(&["connection", "mtls"], Some(vec![0]));
        assert_eq!(carry.property(&["connection", "mtls"], false, || panic!("no fetch")), Some(vec![1]));
        assert_eq!(carry.property(&["connection", "mtls"], true, || panic!("no fetch")), Some(vec![1]));
        let own = RequestCarry::new();
        own.remember_property(&["connection", "mtls"], Some(vec![1]));
        assert_eq!(own.property(&["connection", "mtls"], false, || None), None);
    }

    #[test]
    fn published_peers_are_read_once_and_the_direction_is_not_guessed() {
        let carry = RequestCarry::default();
        assert_eq!(carry.known_direction(), None);
        let reads = Cell::new(0);
        for _ in 0..2 {
            let c = carry.downstream_peer(|| {
                reads.set(reads.get() + 1);
                peer("reviews")
            });
            assert_eq!(c.unwrap().name.as_deref(), Some("reviews"));
        }
        assert_eq!(reads.get(), 1);
        assert_eq!(carry.known_direction(), None, "a caller says which side is local, not the direction");
        carry.direction(|| Some(Direction::Inbound));
        assert_eq!(carry.known_direction(), Some(Some(Direction::Inbound)));
    }

    #[test]
    fn learning_an_unverified_peer_settles_the_verified_one_as_absent() {
        let carry = RequestCarry::default();
        carry.learn_peer(peer("claimed"), false);
        let p = carry.peer(PeerTrustLevel::AllowUnverified, || panic!("no fetch"), || panic!("no fetch"));
        assert_eq!(p.unwrap().name.as_deref(), Some("claimed"));
    }

    #[test]
    fn final_properties_are_fetched_once_when_shared() {
        let carry = RequestCarry::shared();
        let calls = Cell::new(0);
        for _ in 0..2 {
            let v = carry.property(&["response", "code"], true, || {
                calls.set(calls.get() + 1);
                Some(vec![200, 0, 0, 0, 0, 0, 0, 0])
            });
            assert_eq!(v.unwrap()[0], 200);
        }
        assert_eq!(calls.get(), 1);
        assert!(carry.property(&["response", "size"], true, || None).is_none());
        // Before the response only the connection's own properties are remembered.
        let before = Cell::new(0);
        for _ in 0..2 {
            carry.property(&["connection", "mtls"], false, || {
                before.set(before.get() + 1);
                Some(vec![1])
            });
            carry.property(&["request", "path"], false, || {
                before.set(before.get() + 10);
                None
            });
        }
        assert_eq!(before.get(), 21);
        let own = RequestCarry::new();
        own.property(&["response", "code"], true, || None);
        own.property(&["response", "code"], true, || {
            calls.set(calls.get() + 1);
            None
        });
        assert_eq!(calls.get(), 2, "a filter's own carry does not remember properties");
    }
}
