//! Free loopback ports.
//!
//! Prefer port 0 in bootstraps and ask Envoy which port it bound
//! ([`crate::EnvoyProcess::listener_addr`]): that cannot race. A port from here is free when
//! returned but may be taken by another process before it is used.

use std::net::TcpListener;

use crate::HarnessError;

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16, HarnessError> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| HarnessError::io("binding 127.0.0.1:0 to find a free port", e))?;
    let port =
        listener.local_addr().map_err(|e| HarnessError::io("reading the local address of a probe socket", e))?.port();
    Ok(port)
}

/// `n` distinct free ports (held together while picked, so they differ from each other).
pub fn free_ports(n: usize) -> Result<Vec<u16>, HarnessError> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(
            TcpListener::bind("127.0.0.1:0")
                .map_err(|e| HarnessError::io("binding 127.0.0.1:0 to find a free port", e))?,
        );
    }
    held.iter()
        .map(|l| {
            l.local_addr()
                .map(|a| a.port())
                .map_err(|e| HarnessError::io("reading the local address of a probe socket", e))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_nonzero() -> Result<(), HarnessError> {
        let ports = free_ports(3)?;
        assert_eq!(ports.len(), 3);
        assert!(ports.iter().all(|p| *p != 0));
        assert_ne!(ports[0], ports[1]);
        assert_ne!(ports[1], ports[2]);
        assert_ne!(free_port()?, 0);
        Ok(())
    }
}
