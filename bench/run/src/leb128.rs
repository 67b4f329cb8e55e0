//! The one encoding the binary formats the benchmark writes and reads use: unsigned LEB128
//! (protobuf's varint, WebAssembly's integers) and a tagged, length-prefixed field (a protobuf
//! length-delimited field, a WebAssembly section).

/// Appends `n` as unsigned LEB128.
pub fn unsigned(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Appends `tag`, the length of `data` (LEB128), then `data`.
pub fn tagged(tag: u8, data: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    unsigned(data.len(), out);
    out.extend_from_slice(data);
}

/// Reads an unsigned LEB128 number: its value and the bytes it took.
pub fn read_unsigned(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}
