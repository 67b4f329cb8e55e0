//! Go `net` (Go 1.13/1.14) IP handling: `net.ParseIP`, `IP.Equal`, `IP.String()`,
//! `net.ParseCIDR` and `IPNet.Contains`.
//!
//! Go before 1.17 accepts leading zeros in dotted IPv4 octets and reads them as decimal
//! (`010.1.1.1` is 10.1.1.1); that is kept here.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IP address as Go holds it: 4 or 16 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpBytes {
    bytes: [u8; 16],
    len: u8,
}

/// The 12-byte prefix of an IPv4-mapped IPv6 address.
const V4_IN_V6_PREFIX: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/// Go's `big`: the bound at which `dtoi`/`xtoi` give up.
const BIG: u32 = 0xFF_FFFF;

impl IpBytes {
    /// Go's `net.ParseIP`: dotted IPv4 (returned in the 16-byte v4-mapped form) or IPv6 text
    /// with `::` and an embedded dotted tail. No zones, brackets or prefixes.
    pub fn parse(s: &str) -> Option<IpBytes> {
        match s.bytes().find(|&c| c == b'.' || c == b':')? {
            b'.' => parse_v4(s.as_bytes()).map(IpBytes::v4_mapped),
            _ => parse_v6(s.as_bytes()).map(IpBytes::from_v6),
        }
    }

    /// A 4-byte address (Go's `net.IPv4(a, b, c, d).To4()`).
    pub fn from_v4(b: [u8; 4]) -> IpBytes {
        let mut bytes = [0u8; 16];
        bytes[..4].copy_from_slice(&b);
        IpBytes { bytes, len: 4 }
    }

    /// A 16-byte address.
    pub fn from_v6(bytes: [u8; 16]) -> IpBytes {
        IpBytes { bytes, len: 16 }
    }

    /// Raw bytes as Go would hold them; `None` unless the slice has 4 or 16 bytes.
    pub fn from_slice(b: &[u8]) -> Option<IpBytes> {
        if let Ok(v4) = <[u8; 4]>::try_from(b) {
            return Some(IpBytes::from_v4(v4));
        }
        <[u8; 16]>::try_from(b).ok().map(IpBytes::from_v6)
    }

    /// The 4 or 16 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&self.bytes)
    }

    /// Go's `IP.Equal`: byte equality, where a 4-byte address equals its v4-mapped 16-byte form.
    pub fn equal(&self, o: &IpBytes) -> bool {
        match (self.to4(), o.to4()) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.as_bytes() == o.as_bytes(),
            _ => false,
        }
    }

    /// Appends Go's `IP.String()`: dotted quad for 4-byte and v4-mapped addresses, otherwise
    /// IPv6 with the longest run (two groups or more, first on ties) of zero groups as `::`.
    pub fn write_to(&self, out: &mut String) {
        match self.to4() {
            Some(v4) => {
                let _ = write!(out, "{}.{}.{}.{}", v4[0], v4[1], v4[2], v4[3]);
            }
            None => write_v6(&self.bytes, out),
        }
    }

    /// The std form: 4 bytes as `V4`, 16 bytes (v4-mapped included) as `V6`.
    pub fn to_std(&self) -> IpAddr {
        match self.len {
            4 => IpAddr::V4(Ipv4Addr::new(self.bytes[0], self.bytes[1], self.bytes[2], self.bytes[3])),
            _ => IpAddr::V6(Ipv6Addr::from(self.bytes)),
        }
    }

    fn v4_mapped(v4: [u8; 4]) -> IpBytes {
        let mut bytes = [0u8; 16];
        bytes[..12].copy_from_slice(&V4_IN_V6_PREFIX);
        bytes[12..].copy_from_slice(&v4);
        IpBytes { bytes, len: 16 }
    }

    /// Go's `IP.To4`.
    fn to4(&self) -> Option<[u8; 4]> {
        if self.len == 4 {
            return Some([self.bytes[0], self.bytes[1], self.bytes[2], self.bytes[3]]);
        }
        if self.bytes[..12] == V4_IN_V6_PREFIX {
            return Some([self.bytes[12], self.bytes[13], self.bytes[14], self.bytes[15]]);
        }
        None
    }
}

/// Go's `net.ParseCIDR`: the masked network address (4 bytes for an IPv4 prefix, 16 for IPv6)
/// and the prefix length. `None` where Go returns a `ParseError`.
pub fn parse_cidr(s: &str) -> Option<(IpBytes, u8)> {
    let slash = s.find('/')?;
    let addr = s.get(..slash)?.as_bytes();
    let mask = s.get(slash + 1..)?.as_bytes();
    let (ip, bits) = match parse_v4(addr) {
        Some(v4) => (IpBytes::from_v4(v4), 32u32),
        None => (IpBytes::from_v6(parse_v6(addr)?), 128u32),
    };
    let (n, used) = dtoi(mask)?;
    if used != mask.len() || n > bits {
        return None;
    }
    let prefix = u8::try_from(n).ok()?;
    Some((mask_ip(&ip, prefix), prefix))
}

/// Go's `IPNet.Contains` for a network built by [`parse_cidr`] (`net` is the network address,
/// whose length fixes the mask length). As in Go, a 16-byte network that is itself v4-mapped
/// matches IPv4 addresses using the low 32 bits of its 128-bit mask.
pub fn cidr_contains(net: &IpBytes, prefix: u8, ip: &IpBytes) -> bool {
    let mask_bits = u32::from(net.len) * 8;
    if u32::from(prefix) > mask_bits {
        return false;
    }
    let (nn, prefix) = match net.to4() {
        Some(v4) if net.len == 16 => (IpBytes::from_v4(v4), prefix.saturating_sub(96)),
        Some(v4) => (IpBytes::from_v4(v4), prefix),
        None => (*net, prefix),
    };
    let ip = ip.to4().map_or(*ip, IpBytes::from_v4);
    if ip.len != nn.len {
        return false;
    }
    mask_ip(&nn, prefix).as_bytes() == mask_ip(&ip, prefix).as_bytes()
}

/// Keeps the first `prefix` bits of `ip`.
fn mask_ip(ip: &IpBytes, prefix: u8) -> IpBytes {
    let mut out = *ip;
    let mut remaining = u32::from(prefix);
    for b in out.bytes.iter_mut().take(usize::from(ip.len)) {
        let keep = remaining.min(8);
        remaining -= keep;
        *b &= (0xff00u16 >> keep) as u8;
    }
    out
}

/// Go's `dtoi`: decimal digits, stopping at `BIG`; returns (value, bytes used).
fn dtoi(s: &[u8]) -> Option<(u32, usize)> {
    let mut n: u32 = 0;
    let mut i = 0;
    while let Some(c) = s.get(i).filter(|c| c.is_ascii_digit()) {
        n = n * 10 + u32::from(c - b'0');
        if n >= BIG {
            return None;
        }
        i += 1;
    }
    (i > 0).then_some((n, i))
}

/// Go's `xtoi`: hexadecimal digits, stopping at `BIG`; returns (value, bytes used).
fn xtoi(s: &[u8]) -> Option<(u32, usize)> {
    let mut n: u32 = 0;
    let mut i = 0;
    while let Some(d) = s.get(i).and_then(|c| char::from(*c).to_digit(16)) {
        n = n * 16 + d;
        if n >= BIG {
            return None;
        }
        i += 1;
    }
    (i > 0).then_some((n, i))
}

/// Go's `parseIPv4`: exactly four dot-separated decimal octets.
fn parse_v4(s: &[u8]) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut rest = s;
    for (i, octet) in out.iter_mut().enumerate() {
        if i > 0 {
            rest = rest.strip_prefix(b".")?;
        }
        let (n, used) = dtoi(rest)?;
        *octet = u8::try_from(n).ok()?;
        rest = rest.get(used..)?;
    }
    rest.is_empty().then_some(out)
}

/// Go's `parseIPv6` (no zone): hex groups, one optional `::`, an optional dotted IPv4 tail.
fn parse_v6(s: &[u8]) -> Option<[u8; 16]> {
    let mut ip = [0u8; 16];
    let mut ellipsis: Option<usize> = None;
    let mut rest = s;
    if rest.starts_with(b"::") {
        ellipsis = Some(0);
        rest = &rest[2..];
        if rest.is_empty() {
            return Some(ip);
        }
    }
    let mut i = 0;
    while i < 16 {
        let (n, used) = xtoi(rest)?;
        if n > 0xffff {
            return None;
        }
        if rest.get(used) == Some(&b'.') {
            if (ellipsis.is_none() && i != 12) || i + 4 > 16 {
                return None;
            }
            ip[i..i + 4].copy_from_slice(&parse_v4(rest)?);
            rest = &[];
            i += 4;
            break;
        }
        ip[i] = (n >> 8) as u8;
        ip[i + 1] = n as u8;
        i += 2;
        rest = rest.get(used..)?;
        if rest.is_empty() {
            break;
        }
        if rest[0] != b':' || rest.len() == 1 {
            return None;
        }
        rest = &rest[1..];
        if rest[0] == b':' {
            if ellipsis.is_some() {
                return None;
            }
            ellipsis = Some(i);
            rest = &rest[1..];
            if rest.is_empty() {
                break;
            }
        }
    }
    if !rest.is_empty() {
        return None;
    }
    expand_ellipsis(ip, i, ellipsis)
}

/// Moves the groups after `::` to the end and zero-fills the gap; `::` must stand for at
/// least one group, and without it all 16 bytes must have been given.
fn expand_ellipsis(mut ip: [u8; 16], filled: usize, ellipsis: Option<usize>) -> Option<[u8; 16]> {
    match ellipsis {
        None if filled == 16 => Some(ip),
        Some(e) if filled < 16 => {
            let n = 16 - filled;
            ip.copy_within(e..filled, e + n);
            ip[e..e + n].fill(0);
            Some(ip)
        }
        _ => None,
    }
}

/// Go's IPv6 `String()`: lowercase hex groups, the longest zero run (length ≥ 2) as `::`.
fn write_v6(p: &[u8; 16], out: &mut String) {
    let group = |i: usize| u16::from_be_bytes([p[2 * i], p[2 * i + 1]]);
    let (mut best_start, mut best_len) = (8usize, 0usize);
    let mut i = 0;
    while i < 8 {
        let run = (i..8).take_while(|&j| group(j) == 0).count();
        if run > best_len {
            (best_start, best_len) = (i, run);
        }
        i += run.max(1);
    }
    if best_len < 2 {
        best_start = 8;
    }
    let mut i = 0;
    while i < 8 {
        if i == best_start {
            out.push_str("::");
            i += best_len;
            continue;
        }
        if i > 0 && i != best_start + best_len {
            out.push(':');
        }
        let _ = write!(out, "{:x}", group(i));
        i += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn s(ip: &IpBytes) -> String {
        let mut out = String::new();
        ip.write_to(&mut out);
        out
    }

    fn round(text: &str) -> String {
        s(&IpBytes::parse(text).unwrap())
    }

    #[test]
    fn parses_ipv4_to_mapped_form() {
        let ip = IpBytes::parse("10.1.12.3").unwrap();
        assert_eq!(ip.as_bytes(), &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 12, 3]);
        assert_eq!(s(&ip), "10.1.12.3");
        assert_eq!(round("010.001.0.255"), "10.1.0.255", "Go 1.13 reads leading zeros as decimal");
    }

    #[test]
    fn rejects_bad_ipv4() {
        for bad in [
            "10.1.12",
            "1.2.3.4.5",
            "256.1.1.1",
            "1.2.3.",
            ".1.2.3",
            "1..2.3",
            "1.2.3.4 ",
            "a.b.c.d",
            "1.2.3.4/8",
            "1.2.3.4:80",
            "blah",
            "",
        ] {
            assert!(IpBytes::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn parses_ipv6() {
        assert_eq!(round("::"), "::");
        assert_eq!(round("::1"), "::1");
        assert_eq!(round("2001:DB8::1"), "2001:db8::1");
        assert_eq!(round("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
        assert_eq!(round("2001:0db8:0000:0000:0000:0000:0000:0001"), "2001:db8::1");
        assert_eq!(round("1:0:1:0:1:0:1:0"), "1:0:1:0:1:0:1:0");
        assert_eq!(round("1::"), "1::");
        assert_eq!(round("1:2:3:4:5:6:7::"), "1:2:3:4:5:6:7:0");
        assert_eq!(round("::ffff:1.2.3.4"), "1.2.3.4");
        assert_eq!(round("::ffff:0102:0304"), "1.2.3.4");
        assert_eq!(round("::1.2.3.4"), "::102:304");
        assert_eq!(round("1:2:3:4:5:6:1.2.3.4"), "1:2:3:4:5:6:102:304");
        assert_eq!(round("fe80:0:0:0:1::"), "fe80::1:0:0:0", "first of two equal runs wins");
        assert_eq!(round("0:0:1::"), "0:0:1::");
        assert_eq!(round("00001::"), "1::", "Go allows surplus leading zeros");
    }

    #[test]
    fn rejects_bad_ipv6() {
        for bad in [
            ":",
            ":::",
            "1:::2",
            "1::2::3",
            "12345::",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7",
            "::1%eth0",
            "[::1]",
            "::1/64",
            "1:2:3:4:5:6:7:8::",
            "::1.2.3",
            "1:2:3:4:5:1.2.3.4",
            "1:",
            "g::",
            "::ffff:1.2.3.4:5",
        ] {
            assert!(IpBytes::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn equality_across_forms() {
        let mapped = IpBytes::parse("1.2.3.4").unwrap();
        let four = IpBytes::from_v4([1, 2, 3, 4]);
        assert!(mapped.equal(&four) && four.equal(&mapped));
        assert!(!four.equal(&IpBytes::from_v4([1, 2, 3, 5])));
        assert!(!IpBytes::parse("::1").unwrap().equal(&IpBytes::from_v4([0, 0, 0, 1])));
        assert!(IpBytes::parse("::1").unwrap().equal(&IpBytes::parse("0::1").unwrap()));
        assert_ne!(mapped, four, "derived equality is byte-for-byte");
    }

    #[test]
    fn slices_and_std() {
        assert_eq!(IpBytes::from_slice(&[1, 0, 0, 127]).map(|ip| s(&ip)).unwrap(), "1.0.0.127");
        assert!(IpBytes::from_slice(&[1, 2, 3]).is_none());
        assert!(IpBytes::from_slice(&[0; 17]).is_none());
        assert_eq!(IpBytes::from_slice(&[0; 16]).unwrap().as_bytes().len(), 16);
        assert_eq!(IpBytes::from_v4([1, 2, 3, 4]).to_std(), "1.2.3.4".parse::<IpAddr>().unwrap());
        assert_eq!(IpBytes::parse("::1").unwrap().to_std(), "::1".parse::<IpAddr>().unwrap());
        assert_eq!(IpBytes::parse("1.2.3.4").unwrap().to_std(), "::ffff:1.2.3.4".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn cidr_parse_and_contains() {
        let (net, prefix) = parse_cidr("10.57.0.0/16").unwrap();
        assert_eq!((net.as_bytes(), prefix), (&[10u8, 57, 0, 0][..], 16));
        assert!(cidr_contains(&net, prefix, &IpBytes::parse("10.57.3.4").unwrap()));
        assert!(cidr_contains(&net, prefix, &IpBytes::from_v4([10, 57, 255, 255])));
        assert!(!cidr_contains(&net, prefix, &IpBytes::parse("10.58.0.1").unwrap()));
        assert!(!cidr_contains(&net, prefix, &IpBytes::parse("::1").unwrap()));
        let (net, prefix) = parse_cidr("10.57.3.4/32").unwrap();
        assert!(cidr_contains(&net, prefix, &IpBytes::parse("10.57.3.4").unwrap()));
        assert!(!cidr_contains(&net, prefix, &IpBytes::parse("10.57.3.5").unwrap()));
        let (net, prefix) = parse_cidr("0.0.0.0/0").unwrap();
        assert!(cidr_contains(&net, prefix, &IpBytes::parse("8.8.8.8").unwrap()));
    }

    #[test]
    fn cidr_ipv6() {
        let (net, prefix) = parse_cidr("2001:db8::1/32").unwrap();
        assert_eq!(prefix, 32);
        let mut text = String::new();
        net.write_to(&mut text);
        assert_eq!(text, "2001:db8::");
        assert!(cidr_contains(&net, prefix, &IpBytes::parse("2001:db8:ffff::9").unwrap()));
        assert!(!cidr_contains(&net, prefix, &IpBytes::parse("2001:db9::").unwrap()));
        assert!(!cidr_contains(&net, prefix, &IpBytes::parse("1.2.3.4").unwrap()));
        // A v4-mapped IPv6 network matches IPv4 addresses, as in Go.
        let (net, prefix) = parse_cidr("::ffff:10.0.0.0/104").unwrap();
        assert!(cidr_contains(&net, prefix, &IpBytes::parse("10.1.2.3").unwrap()));
        assert!(!cidr_contains(&net, prefix, &IpBytes::parse("11.1.2.3").unwrap()));
    }

    #[test]
    fn cidr_rejects() {
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/8x",
            "x/8",
            "/8",
            "10.0.0/8",
            "10.0.0.0/99999999",
        ] {
            assert!(parse_cidr(bad).is_none(), "{bad}");
        }
        assert_eq!(parse_cidr("10.0.0.0/08").map(|(_, p)| p), Some(8));
    }
}
