//! Contexts of a filter with its own entry points and no `proxy_on_delete`: Envoy calls every
//! callback a module exports on every request, and the SDK's dispatcher needs `proxy_on_delete`
//! to forget each stream (one more VM call per stream, and entering the VM has a fixed cost
//! before any filter code runs: see bench/README.md). A filter that knows when it is
//! done with a stream needs no deletion:
//!
//! * The deny filter works in the request-headers callback only. A stream's root there is the
//!   root of the context Envoy created last ([`ContextRegistry::stream_root`]): Envoy creates a
//!   stream's context in the same call that hands the filter its request headers
//!   (`decodeHeaders` calls `onCreate` then `onRequestHeaders`, on the VM's one thread).
//! * What a stream keeps for later ([`ContextRegistry::keep`]: the deny filter's response edits,
//!   the telemetry filters' stream until `on_log`, Envoy's last callback for a stream) is taken
//!   by that later callback; a stream that never gets it (reset before its response) leaves its
//!   value behind, so at most a cap of them wait and the oldest go first.
//! * Roots are never deleted either (Envoy retires a root when its configuration is replaced);
//!   at most [`MAX_ROOTS`] are kept, and the one without traffic for the longest goes first.

use hashbrown::HashMap;

/// Root contexts kept per VM: one per plugin configuration the VM serves (Envoy retires old ones
/// after a configuration change, once their listeners drain).
pub const MAX_ROOTS: usize = 32;

/// Streams whose kept values may wait at once (on one worker thread), unless a registry is
/// made with another cap ([`ContextRegistry::with_pending_cap`]).
pub const MAX_PENDING: usize = 4096;

struct RootSlot<R> {
    id: u32,
    last_use: u64,
    root: R,
}

pub struct ContextRegistry<R, P> {
    roots: Vec<RootSlot<R>>,
    uses: u64,
    /// The stream context Envoy created last, and its root.
    created: Option<(u32, u32)>,
    pending: HashMap<u32, P>,
    pending_cap: usize,
}

impl<R, P> Default for ContextRegistry<R, P> {
    fn default() -> Self {
        ContextRegistry::with_pending_cap(MAX_PENDING)
    }
}

impl<R, P> ContextRegistry<R, P> {
    /// A registry where at most `cap` kept values wait at once.
    pub fn with_pending_cap(cap: usize) -> Self {
        ContextRegistry { roots: Vec::new(), uses: 0, created: None, pending: HashMap::new(), pending_cap: cap.max(1) }
    }

    /// `proxy_on_context_create` of root `id`: a slot made by `new_root` (a root seen again keeps
    /// its state). Returns the root that made room for it, if any, with its id.
    pub fn create_root(&mut self, id: u32, new_root: impl FnOnce() -> R) -> Option<(u32, R)> {
        if self.roots.iter().any(|slot| slot.id == id) {
            return None;
        }
        let evicted = (self.roots.len() >= MAX_ROOTS).then(|| self.evict_least_used()).flatten();
        self.uses += 1;
        self.roots.push(RootSlot { id, last_use: self.uses, root: new_root() });
        evicted
    }

    /// `proxy_on_context_create` of stream `context_id` under root `root_id`: remembered as the
    /// stream whose request headers come next ([`ContextRegistry::stream_root`]).
    pub fn stream_created(&mut self, context_id: u32, root_id: u32) {
        self.created = Some((context_id, root_id));
    }

    fn evict_least_used(&mut self) -> Option<(u32, R)> {
        let at = self.roots.iter().enumerate().min_by_key(|(_, slot)| slot.last_use).map(|(i, _)| i)?;
        let slot = self.roots.swap_remove(at);
        Some((slot.id, slot.root))
    }

    /// Root context `id`, if kept.
    pub fn root(&mut self, id: u32) -> Option<&mut R> {
        self.uses += 1;
        let uses = self.uses;
        let slot = self.roots.iter_mut().find(|slot| slot.id == id)?;
        slot.last_use = uses;
        Some(&mut slot.root)
    }

    /// The root of stream `context_id` in its request-headers callback; `None` if it is not the
    /// stream created last (never, with Envoy) or its root is no longer kept.
    pub fn stream_root(&mut self, context_id: u32) -> Option<&mut R> {
        match self.created {
            Some((stream, root)) if stream == context_id => self.root(root),
            _ => None,
        }
    }

    /// Keeps `value` for stream `context_id` until [`ContextRegistry::take`]. Returns what was
    /// dropped to make room (the oldest stream's), if anything.
    pub fn keep(&mut self, context_id: u32, value: P) -> Option<(u32, P)> {
        let dropped = if self.pending.len() >= self.pending_cap && !self.pending.contains_key(&context_id) {
            // Context ids grow: the smallest waited longest.
            let oldest = self.pending.keys().min().copied();
            oldest.and_then(|id| self.pending.remove(&id).map(|value| (id, value)))
        } else {
            None
        };
        self.pending.insert(context_id, value);
        dropped
    }

    /// What stream `context_id` kept, taken.
    pub fn take(&mut self, context_id: u32) -> Option<P> {
        if self.pending.is_empty() {
            return None;
        }
        self.pending.remove(&context_id)
    }

    /// What stream `context_id` kept, in place.
    pub fn kept(&mut self, context_id: u32) -> Option<&mut P> {
        self.pending.get_mut(&context_id)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    type Registry = ContextRegistry<&'static str, u32>;

    #[test]
    fn a_stream_belongs_to_the_root_of_the_context_created_last() {
        let mut r = Registry::default();
        assert!(r.create_root(1, || "inbound").is_none());
        assert!(r.create_root(2, || "outbound").is_none());
        r.stream_created(10, 2);
        assert_eq!(r.stream_root(10).copied(), Some("outbound"));
        r.stream_created(11, 1);
        assert_eq!(r.stream_root(11).copied(), Some("inbound"));
        // Only the stream created last is known.
        assert_eq!(r.stream_root(10), None);
        // A root seen again (configure after create) keeps its state.
        assert!(r.create_root(1, || "replaced").is_none());
        assert_eq!(r.root(1).copied(), Some("inbound"));
    }

    #[test]
    fn roots_beyond_the_cap_retire_the_least_used_one() {
        let mut r = ContextRegistry::<u32, ()>::default();
        for id in 1..=MAX_ROOTS as u32 {
            assert!(r.create_root(id, || id).is_none());
        }
        // Root 1 carries traffic; root 2 is now the least used.
        r.stream_created(1000, 1);
        assert_eq!(r.stream_root(1000).copied(), Some(1));
        let evicted = r.create_root(500, || 500).unwrap();
        assert_eq!(evicted, (2, 2));
        assert!(r.root(2).is_none());
        assert_eq!(r.root(1).copied(), Some(1));
        assert_eq!(r.root(500).copied(), Some(500));
        // A stream of the retired root has none.
        r.stream_created(1001, 2);
        assert!(r.stream_root(1001).is_none());
    }

    #[test]
    fn kept_values_wait_for_their_stream_and_the_oldest_go_when_full() {
        let mut r = Registry::default();
        assert_eq!(r.take(7), None);
        assert!(r.keep(7, 70).is_none());
        assert_eq!(r.take(7), Some(70));
        assert_eq!(r.take(7), None);
        for id in 100..100 + MAX_PENDING as u32 {
            assert!(r.keep(id, id).is_none());
        }
        assert_eq!(r.keep(99_999, 1), Some((100, 100)));
        assert_eq!(r.take(100), None);
        assert_eq!(r.take(101), Some(101));
        // Keeping again for a waiting stream replaces its value without dropping another.
        assert!(r.keep(102, 5).is_none());
        *r.kept(102).unwrap() += 1;
        assert_eq!(r.take(102), Some(6));
        let mut small = Registry::with_pending_cap(2);
        small.keep(1, 1);
        small.keep(2, 2);
        assert_eq!(small.keep(3, 3), Some((1, 1)));
    }
}
