//! Go `net.IP`: parsing, equality and `String()`.

/// An IP address as Go holds it: 4 or 16 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpBytes {
    bytes: [u8; 16],
    len: u8,
}
