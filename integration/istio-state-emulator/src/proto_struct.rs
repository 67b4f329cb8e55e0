//! The few protobuf encodings the emulator needs: a `google.protobuf.Struct` of string values,
//! and the fields of Envoy's `DeclarePropertyArguments`.

/// A base-128 varint.
fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let low = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// A length-delimited field (wire type 2).
pub fn bytes_field(field: u32, data: &[u8], out: &mut Vec<u8>) {
    varint(u64::from(field) << 3 | 2, out);
    varint(data.len() as u64, out);
    out.extend_from_slice(data);
}

/// A varint field (wire type 0).
pub fn varint_field(field: u32, value: u64, out: &mut Vec<u8>) {
    varint(u64::from(field) << 3, out);
    varint(value, out);
}

/// `Struct{fields: map<string, Value>}` (field 1, entries key=1, value=2) whose values are all
/// `Value{string_value}` (field 3).
pub fn string_struct(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in fields {
        let mut string_value = Vec::new();
        bytes_field(3, value.as_bytes(), &mut string_value);
        let mut entry = Vec::new();
        bytes_field(1, key.as_bytes(), &mut entry);
        bytes_field(2, &string_value, &mut entry);
        bytes_field(1, &entry, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_struct_of_one_string() {
        // fields { key: "app" value { string_value: "r" } }
        let want = [0x0a, 10, 0x0a, 3, b'a', b'p', b'p', 0x12, 3, 0x1a, 1, b'r'];
        assert_eq!(string_struct(&[("app", "r")]), want);
    }

    #[test]
    fn long_varints() {
        let mut out = Vec::new();
        varint(300, &mut out);
        assert_eq!(out, [0xac, 0x02]);
    }
}
