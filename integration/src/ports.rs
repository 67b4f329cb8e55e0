//! Free loopback ports.
//!
//! Prefer port 0 in bootstraps and ask Envoy which port it bound
//! ([`crate::EnvoyProcess::listener_addr`]): that cannot race. When a port must be known before
//! Envoy starts (an LDS file, a collector the bootstrap names), take it from here: it is picked
//! *below* the kernel's ephemeral range, where nothing bound to port 0 (every other Envoy's
//! admin and listeners, every client socket) ever lands, so the only contenders are other
//! picks from here, spread at random over ~20,000 ports.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;

use crate::HarnessError;

/// The lowest port handed out.
const LOWEST: u16 = 10_000;
/// Candidates tried before giving up.
const ATTEMPTS: usize = 200;

/// A TCP port on 127.0.0.1 that was free a moment ago, outside the ephemeral range.
pub fn free_port() -> Result<u16, HarnessError> {
    let (lowest, end) = (LOWEST, ephemeral_start().max(LOWEST + 1000));
    let span = u64::from(end - lowest);
    for _ in 0..ATTEMPTS {
        let port = lowest + u16::try_from(next_random() % span).unwrap_or(0);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(HarnessError::check(format!("no free port among {ATTEMPTS} tried in {lowest}..{end}")))
}

/// The first port of the kernel's ephemeral range (`ip_local_port_range`; Linux's default 32768).
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

thread_local! {
    static STATE: Cell<u64> = Cell::new(RandomState::new().build_hasher().finish() | 1);
}

/// xorshift64* over a per-thread seed from the OS's randomness (std's `RandomState`): tests
/// running in parallel, in threads or processes, draw different sequences.
fn next_random() -> u64 {
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_bindable_and_below_the_ephemeral_range() -> Result<(), HarnessError> {
        let start = ephemeral_start();
        for _ in 0..20 {
            let port = free_port()?;
            assert!((LOWEST..start.max(LOWEST + 1000)).contains(&port), "{port}");
            TcpListener::bind(("127.0.0.1", port)).map_err(|e| HarnessError::io("binding the port again", e))?;
        }
        Ok(())
    }
}
