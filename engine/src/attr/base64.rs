//! Standard base64 (RFC 4648 §4, alphabet `A–Z a–z 0–9 + /`), as used by Istio's
//! `x-envoy-peer-metadata` header.
//!
//! Istio encodes the header with padding (`Base64::encode`) and decodes it with Envoy's
//! `Base64::decodeWithoutPadding`, which takes padded and unpadded input alike; [`decode`] does the
//! same. Decoding is strict otherwise: no whitespace, no URL-safe alphabet, no partial padding, no
//! non-zero bits in the last symbol, and a caller-given cap on the decoded size that is checked
//! before anything is allocated. It never panics, whatever the input.

use std::fmt;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Marks bytes outside the alphabet in [`DECODE_TABLE`].
const INVALID: u8 = 0xFF;

/// Byte → 6-bit value, or [`INVALID`].
const DECODE_TABLE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Why a base64 string was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base64Error {
    /// The number of symbols (padding removed) is 1 modulo 4, which no byte string encodes to.
    InvalidLength,
    /// A byte outside the standard alphabet (whitespace and `-`/`_` included) at this offset.
    InvalidByte { offset: usize },
    /// `=` somewhere other than the end, or padding that does not complete a 4-symbol group.
    InvalidPadding,
    /// The last symbol carries non-zero bits that no encoder would produce.
    NonCanonical,
    /// The decoded bytes would exceed the caller's limit.
    TooLarge { limit: usize },
}

impl fmt::Display for Base64Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Base64Error::InvalidLength => f.write_str("base64: invalid length"),
            Base64Error::InvalidByte { offset } => {
                write!(f, "base64: invalid byte at offset {offset}")
            }
            Base64Error::InvalidPadding => f.write_str("base64: invalid padding"),
            Base64Error::NonCanonical => f.write_str("base64: non-zero trailing bits"),
            Base64Error::TooLarge { limit } => {
                write!(f, "base64: decoded data exceeds {limit} bytes")
            }
        }
    }
}

impl std::error::Error for Base64Error {}

/// The padded encoding of `input` (length is always a multiple of 4).
pub fn encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(encoded_len(input.len()));
    let mut chunks = input.chunks_exact(3);
    for chunk in &mut chunks {
        if let [a, b, c] = *chunk {
            let n = (u32::from(a) << 16) | (u32::from(b) << 8) | u32::from(c);
            push_symbols(&mut out, n, 4);
        }
    }
    match *chunks.remainder() {
        [a] => {
            push_symbols(&mut out, u32::from(a) << 16, 2);
            out.push_str("==");
        }
        [a, b] => {
            push_symbols(&mut out, (u32::from(a) << 16) | (u32::from(b) << 8), 3);
            out.push('=');
        }
        _ => {}
    }
    out
}

/// Length of the padded encoding of `n` bytes (saturating; only a capacity hint).
fn encoded_len(n: usize) -> usize {
    n.div_ceil(3).saturating_mul(4)
}

/// Appends the top `count` 6-bit groups of the 24-bit value `n`.
fn push_symbols(out: &mut String, n: u32, count: usize) {
    for i in 0..count {
        let shift = 18 - 6 * i;
        let index = ((n >> shift) & 0x3F) as usize;
        out.push(char::from(ALPHABET[index]));
    }
}

/// The number of bytes `symbols` base64 symbols (padding excluded) decode to, or `None` when
/// no byte string encodes to that many symbols.
fn decoded_len(symbols: usize) -> Option<usize> {
    let full = (symbols / 4) * 3;
    match symbols % 4 {
        0 => Some(full),
        2 => Some(full + 1),
        3 => Some(full + 2),
        _ => None,
    }
}

/// Decodes standard base64, padded or not, into at most `max_decoded` bytes.
///
/// Accepts `""` (→ empty), `"QQ=="` and `"QQ"` alike; rejects `"QQ="`, `"Q"`, whitespace,
/// URL-safe symbols, `=` in the middle, and non-canonical trailing bits.
pub fn decode(input: &str, max_decoded: usize) -> Result<Vec<u8>, Base64Error> {
    let bytes = input.as_bytes();
    let symbols = bytes.iter().rposition(|&b| b != b'=').map_or(0, |last| last + 1);
    let padding = bytes.len() - symbols;
    if padding > 2 {
        return Err(Base64Error::InvalidPadding);
    }
    if padding > 0 && !bytes.len().is_multiple_of(4) {
        return Err(Base64Error::InvalidPadding);
    }
    let out_len = decoded_len(symbols).ok_or(Base64Error::InvalidLength)?;
    if out_len > max_decoded {
        return Err(Base64Error::TooLarge { limit: max_decoded });
    }
    let body = bytes.get(..symbols).unwrap_or_default();

    let mut out = Vec::with_capacity(out_len);
    let mut chunks = body.chunks_exact(4);
    let mut offset = 0usize;
    for chunk in &mut chunks {
        let n = gather(chunk, offset)?;
        out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
        offset += 4;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let n = gather(rest, offset)?;
        match rest.len() {
            2 => {
                if n & 0xFFFF != 0 {
                    return Err(Base64Error::NonCanonical);
                }
                out.push((n >> 16) as u8);
            }
            3 => {
                if n & 0xFF != 0 {
                    return Err(Base64Error::NonCanonical);
                }
                out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8]);
            }
            // decoded_len() already rejected a remainder of 1.
            _ => return Err(Base64Error::InvalidLength),
        }
    }
    Ok(out)
}

/// Packs up to four symbols into the top bits of a 24-bit value. `offset` is the input offset
/// of `symbols[0]`, for error reporting. A stray `=` is reported as bad padding.
fn gather(symbols: &[u8], offset: usize) -> Result<u32, Base64Error> {
    let mut n = 0u32;
    for (i, &b) in symbols.iter().enumerate() {
        let v = DECODE_TABLE[usize::from(b)];
        if v == INVALID {
            return Err(if b == b'=' {
                Base64Error::InvalidPadding
            } else {
                Base64Error::InvalidByte { offset: offset + i }
            });
        }
        n |= u32::from(v) << (18 - 6 * i);
    }
    Ok(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const BIG: usize = 1 << 20;

    #[test]
    fn rfc4648_vectors() {
        let vectors: &[(&str, &str)] = &[
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(encode(plain.as_bytes()), *encoded);
            assert_eq!(decode(encoded, BIG).unwrap(), plain.as_bytes());
            let unpadded = encoded.trim_end_matches('=');
            assert_eq!(decode(unpadded, BIG).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn all_byte_values_round_trip() {
        let data: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for len in 0..data.len() {
            let slice = &data[..len];
            let enc = encode(slice);
            assert_eq!(enc.len() % 4, 0);
            assert_eq!(decode(&enc, BIG).unwrap(), slice);
            assert_eq!(decode(enc.trim_end_matches('='), BIG).unwrap(), slice);
        }
        assert_eq!(encode(&[0xFB, 0xFF]), "+/8=");
    }

    #[test]
    fn rejects_malformed_input() {
        assert_eq!(decode("Z", BIG), Err(Base64Error::InvalidLength));
        assert_eq!(decode("Zm9vY", BIG), Err(Base64Error::InvalidLength));
        assert_eq!(decode("Zm8", BIG).unwrap(), b"fo");
        assert_eq!(decode("Zg=", BIG), Err(Base64Error::InvalidPadding));
        assert_eq!(decode("Zg===", BIG), Err(Base64Error::InvalidPadding));
        assert_eq!(decode("=", BIG), Err(Base64Error::InvalidPadding));
        assert_eq!(decode("====", BIG), Err(Base64Error::InvalidPadding));
        assert_eq!(decode("Zg==Zg==", BIG), Err(Base64Error::InvalidPadding));
        assert_eq!(decode("Z=g=", BIG), Err(Base64Error::InvalidPadding));
        assert_eq!(decode("Zm 9", BIG), Err(Base64Error::InvalidByte { offset: 2 }));
        assert_eq!(decode("Zm9v\nZm9", BIG), Err(Base64Error::InvalidByte { offset: 4 }));
        assert_eq!(decode("-_8=", BIG), Err(Base64Error::InvalidByte { offset: 0 }));
        assert_eq!(decode("Zm\u{e9}", BIG), Err(Base64Error::InvalidByte { offset: 2 }));
        // "Zh==" has non-zero bits in the 4 bits that "Zg==" leaves clear.
        assert_eq!(decode("Zh==", BIG), Err(Base64Error::NonCanonical));
        assert_eq!(decode("Zm9=", BIG), Err(Base64Error::NonCanonical));
        assert_eq!(decode("Zh", BIG), Err(Base64Error::NonCanonical));
    }

    #[test]
    fn enforces_size_limit_before_decoding() {
        assert_eq!(decode("Zm9v", 3).unwrap(), b"foo");
        assert_eq!(decode("Zm9v", 2), Err(Base64Error::TooLarge { limit: 2 }));
        assert_eq!(decode("Zm9vYg", 4).unwrap(), b"foob");
        assert_eq!(decode("Zm9vYg==", 3), Err(Base64Error::TooLarge { limit: 3 }));
        assert_eq!(decode("", 0).unwrap(), b"");
        // The limit is checked before the alphabet, so huge garbage costs nothing.
        let huge = "!".repeat(100_000);
        assert_eq!(decode(&huge, 16), Err(Base64Error::TooLarge { limit: 16 }));
    }

    #[test]
    fn never_panics_on_arbitrary_input() {
        // A cheap deterministic fuzz over short strings of interesting bytes.
        let pool = b"AZaz09+/=-_ \n\xc3\xa9";
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 12) as usize;
            let mut s = Vec::with_capacity(len);
            let mut x = state;
            for _ in 0..len {
                s.push(pool[(x % pool.len() as u64) as usize]);
                x /= 7;
            }
            if let Ok(text) = std::str::from_utf8(&s) {
                if let Ok(bytes) = decode(text, BIG) {
                    // Whatever decodes must re-encode to the same symbols.
                    assert_eq!(encode(&bytes).trim_end_matches('='), text.trim_end_matches('='));
                }
            }
        }
    }

    #[test]
    fn errors_display() {
        assert_eq!(Base64Error::InvalidByte { offset: 3 }.to_string(), "base64: invalid byte at offset 3");
        assert_eq!(Base64Error::TooLarge { limit: 9 }.to_string(), "base64: decoded data exceeds 9 bytes");
    }
}
