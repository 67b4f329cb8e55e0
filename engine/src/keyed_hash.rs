//! Hashing for maps whose keys a request chooses (metric label values, peer claims).
//!
//! hashbrown's default hasher is foldhash seeded, without `std`, from addresses: in a wasm32
//! module those are the same on every start, so anyone holding the public `.wasm` could compute
//! label values that all land in one bucket and make every lookup of a metric filter walk them.
//! [`KeyedState`] is the same foldhash (so the per-request cost is unchanged) keyed by a seed
//! drawn once per VM from the platform's random source, plus a per-map seed:
//!
//! * the random source is std's `RandomState`, which on wasm32-wasip1 asks the host through
//!   WASI `random_get` (Envoy serves it to every Wasm module) and natively the OS; on
//!   wasm32-unknown-unknown (the engine crate's tests under node) it has no source and its keys
//!   are fixed, but its per-instance counter still makes every map's seed differ;
//! * drawing costs one `random_get` per VM and a SipHash of eight bytes per map, never anything
//!   per request.
//!
//! `engine/tests/keyed_hash.rs` checks that two maps hash a key differently.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::OnceLock;

use foldhash::fast::SeedableRandomState;
use foldhash::SharedSeed;

/// The hasher of maps keyed by request data: foldhash with random seeds.
pub type KeyedState = SeedableRandomState;

/// The VM's shared seed, drawn on first use.
static SHARED: OnceLock<SharedSeed> = OnceLock::new();

/// A fresh random 64-bit value: std's `RandomState` is itself randomly keyed (once per thread,
/// then counted up per instance), so hashing a constant with a new one gives a new value.
fn random_u64() -> u64 {
    RandomState::new().hash_one(0x5741_534d_4958_4552u64)
}

/// A hasher state for one map: the VM's random shared seed and a random per-map seed.
pub fn keyed_state() -> KeyedState {
    let shared = SHARED.get_or_init(|| SharedSeed::from_u64(random_u64()));
    SeedableRandomState::with_seed(random_u64(), shared)
}
