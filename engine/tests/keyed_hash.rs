//! Issue 25: maps keyed by request data (metric label values, peer claims) are hashed with
//! random seeds, so no one can precompute colliding keys from the public `.wasm`. Runs natively
//! and on wasm32 (under node, where std has no random source but still seeds each map apart).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::hash::BuildHasher;

use wasmixer_engine::keyed_hash::keyed_state;

#[test]
fn two_maps_hash_the_same_key_differently() {
    let (a, b) = (keyed_state(), keyed_state());
    for key in ["reviews-v3", "", "x-request-id: 7f3a"] {
        assert_ne!(a.hash_one(key), b.hash_one(key), "{key:?}");
        assert_eq!(a.hash_one(key), a.hash_one(key), "{key:?}");
    }
}
