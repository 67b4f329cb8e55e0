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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_port_is_nonzero() -> Result<(), HarnessError> {
        assert_ne!(free_port()?, 0);
        Ok(())
    }
}
