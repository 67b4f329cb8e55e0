//! The pairs encoding of Envoy's Wasm ABI: a count, a (key size, value size) per pair, then
//! the NUL-terminated data. Envoy hands header maps, map-valued properties (node metadata) and
//! CEL lists over in it; decoding it is data, not a proxy call, so it lives here for every
//! host and for the decoders of the attribute layer.

use std::ops::Range;

use crate::expr::{StringMap, StringMapBuilder};
use crate::gostd::byte_string;

/// The ABI's pairs encoding: count, (key size, value size) per pair, then NUL-terminated data.
pub fn serialize_pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// Decodes the pairs encoding; malformed input yields the pairs read so far. Values that are not
/// UTF-8 keep their bytes as raw-byte characters ([`byte_string`]).
pub fn deserialize_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    deserialize_pairs_bytes(bytes).into_iter().map(|(k, v)| (k, byte_string::from_bytes(v))).collect()
}

/// Decodes the pairs encoding keeping values as bytes (Envoy serializes map-valued
/// properties, such as `xds.node.metadata`, as pairs whose values may be nested pairs).
pub fn deserialize_pairs_bytes(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    pairs_raw(bytes).into_iter().map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v.to_vec())).collect()
}

/// The pairs of the encoding as borrowed bytes, keys included (Envoy serializes a CEL list as
/// pairs whose keys are the elements, in the `get_property` encoding, and whose values are
/// empty). Malformed input yields the pairs read so far; a broken header, none.
pub fn pairs_raw(bytes: &[u8]) -> Vec<(&[u8], &[u8])> {
    pairs_in(bytes).collect()
}

/// [`pairs_raw`] without collecting them.
fn pairs_in(bytes: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    pair_ranges(bytes).map_while(|(k, v)| Some((bytes.get(k)?, bytes.get(v)?)))
}

/// The number of pairs the encoding announces, if its sizes table is whole.
fn pair_count(bytes: &[u8]) -> Option<usize> {
    let count = u32_at(bytes, 0)?;
    count.checked_mul(8).and_then(|n| n.checked_add(4)).filter(|&end| end <= bytes.len()).map(|_| count)
}

/// The little-endian `u32` at `at`.
fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(b) as usize)
}

/// Where the keys and values of the pairs encoding lie in `bytes` (see [`pairs_raw`]).
pub fn pair_ranges(bytes: &[u8]) -> impl Iterator<Item = (Range<usize>, Range<usize>)> + '_ {
    let count = pair_count(bytes).unwrap_or(0);
    let mut at = 4 + count * 8;
    (0..count).map_while(move |i| {
        let (k, v) = (u32_at(bytes, 4 + i * 8)?, u32_at(bytes, 8 + i * 8)?);
        let key_end = at.checked_add(k)?;
        let value_start = key_end.checked_add(1)?;
        let value_end = value_start.checked_add(v)?;
        if value_end > bytes.len() {
            return None;
        }
        let pair = (at..key_end, value_start..value_end);
        at = value_end.checked_add(1)?;
        Some(pair)
    })
}

/// The pairs encoding as a [`StringMap`], read in place: two allocations for the whole map.
pub fn string_map_of_pairs(bytes: &[u8]) -> StringMap {
    // The encoding is longer than the text it holds (sizes, NULs), unless values need escaping.
    let mut map = StringMapBuilder::with_capacity(pair_count(bytes).unwrap_or(0), bytes.len());
    for (k, v) in pairs_in(bytes) {
        map.push_with(
            |text| match std::str::from_utf8(k) {
                Ok(name) => text.push_str(name),
                Err(_) => text.push_str(&String::from_utf8_lossy(k)),
            },
            |text| byte_string::push_bytes(text, v),
        );
    }
    map.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_and_truncation() {
        let bytes = serialize_pairs(&[(":status", "403"), ("content-type", "text/plain")]);
        assert_eq!(
            deserialize_pairs(&bytes),
            [(":status".to_string(), "403".to_string()), ("content-type".to_string(), "text/plain".to_string())]
        );
        assert!(deserialize_pairs(&bytes[..bytes.len() - 5]).len() < 2);
        assert!(deserialize_pairs(&[255, 255, 255, 255]).is_empty());
        // Sizes near usize::MAX must not overflow the offsets.
        assert!(pairs_raw(&[1, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255, 0, 0]).is_empty());
        // A CEL list: keys are the elements (not UTF-8), values empty.
        let list = [2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0xc8, 0, 0, 0];
        assert_eq!(pairs_raw(&list), [(&[0xff][..], &[][..]), (&[0xc8, 0][..], &[][..])]);
        // A header map from the pairs encoding: sorted, the last of a repeated name kept,
        // values' invalid bytes as raw-byte characters, names read lossily.
        let pairs = serialize_pairs(&[("b", "1"), (":path", "/"), ("b", "2")]);
        let m = string_map_of_pairs(&pairs);
        assert_eq!(m.iter().collect::<Vec<_>>(), [(":path", "/"), ("b", "2")]);
        let raw = [1, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, b'k', 0xff, 0, b'v', 0xfe, 0];
        let m = string_map_of_pairs(&raw);
        assert_eq!(m.iter().collect::<Vec<_>>(), [("k\u{fffd}", "v\u{10fffe}")]);
        assert!(string_map_of_pairs(&[9, 0, 0, 0, 1]).is_empty());
    }
}
