//! A FlatBuffers `FlatNode` (`flat_node.fbs`) written by hand: the emulator needs one table
//! shape, so a small builder replaces the `flatbuffers` crate.
//!
//! FlatBuffers builders usually write back to front; this one writes front to back, which the
//! format allows as long as every `uoffset` points forward: the root offset, then each table's
//! vtable and table, then what the table refers to (strings, vectors, nested tables), each
//! patched into its slot once placed. Tables, strings and vectors start 4-aligned, vtables
//! 2-aligned, as the FlatBuffers verifier requires.

/// The FlatNode fields the emulator fills (the others, marked "do not use" by Istio 1.23, stay
/// unset: `platform_metadata`, `istio_version`, `mesh_id`, `app_containers`, `instance_ips`).
pub struct FlatNode<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    /// Pod labels (`key`, `value`); written sorted by key, as the schema's `(key)` attribute
    /// requires for lookups.
    pub labels: &'a [(&'a str, &'a str)],
    pub owner: &'a str,
    pub workload_name: &'a str,
    pub cluster_id: &'a str,
    pub identity: Option<&'a str>,
}

/// A field value of a table.
enum Field<'a> {
    Str(&'a str),
    Tables(Vec<Vec<Option<Field<'a>>>>),
}

impl FlatNode<'_> {
    /// The FlatBuffer, root `Wasm.Common.FlatNode`.
    pub fn encode(&self) -> Vec<u8> {
        let mut labels: Vec<(&str, &str)> = self.labels.to_vec();
        labels.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let labels: Vec<Vec<Option<Field<'_>>>> =
            labels.into_iter().map(|(k, v)| vec![Some(Field::Str(k)), Some(Field::Str(v))]).collect();
        // In schema order, which gives the vtable slots: name, namespace, labels, owner,
        // workload_name, platform_metadata, istio_version, mesh_id, app_containers, cluster_id,
        // instance_ips, identity.
        let fields = vec![
            Some(Field::Str(self.name)),
            Some(Field::Str(self.namespace)),
            Some(Field::Tables(labels)),
            Some(Field::Str(self.owner)),
            Some(Field::Str(self.workload_name)),
            None,
            None,
            None,
            None,
            Some(Field::Str(self.cluster_id)),
            None,
            self.identity.map(Field::Str),
        ];
        let mut buf = vec![0u8; 4];
        let root = table(&mut buf, &fields);
        patch(&mut buf, 0, root);
        buf
    }
}

fn align(buf: &mut Vec<u8>, to: usize) {
    buf.resize(buf.len().next_multiple_of(to), 0);
}

/// Writes `target - at` (a forward `uoffset`) into the slot at `at`.
fn patch(buf: &mut [u8], at: usize, target: usize) {
    let offset = u32::try_from(target - at).unwrap_or(0);
    if let Some(slot) = buf.get_mut(at..at + 4) {
        slot.copy_from_slice(&offset.to_le_bytes());
    }
}

/// Appends a vtable, the table (every present field is a 4-byte offset) and what it refers to;
/// returns the table's position.
fn table(buf: &mut Vec<u8>, fields: &[Option<Field<'_>>]) -> usize {
    align(buf, 2);
    let vtable = buf.len();
    let vtable_len = 4 + 2 * fields.len();
    let present = fields.iter().filter(|f| f.is_some()).count();
    buf.extend_from_slice(&(vtable_len as u16).to_le_bytes());
    buf.extend_from_slice(&((4 + 4 * present) as u16).to_le_bytes());
    let mut slot = 4u16;
    for field in fields {
        let at = if field.is_some() {
            slot += 4;
            slot - 4
        } else {
            0
        };
        buf.extend_from_slice(&at.to_le_bytes());
    }
    // The table starts 4-aligned after the vtable; the padding lies between them.
    align(buf, 4);
    let table_at = buf.len();
    // soffset: the vtable is at `table - soffset`.
    buf.extend_from_slice(&((table_at - vtable) as i32).to_le_bytes());
    let slots: Vec<(usize, &Field<'_>)> = fields
        .iter()
        .flatten()
        .map(|f| {
            let at = buf.len();
            buf.extend_from_slice(&[0; 4]);
            (at, f)
        })
        .collect();
    for (at, field) in slots {
        let target = match field {
            Field::Str(s) => string(buf, s),
            Field::Tables(tables) => vector_of_tables(buf, tables),
        };
        patch(buf, at, target);
    }
    table_at
}

/// A string: u32 length, the bytes, a NUL.
fn string(buf: &mut Vec<u8>, s: &str) -> usize {
    align(buf, 4);
    let at = buf.len();
    buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
    at
}

/// A vector of tables: u32 count, an offset per table, then the tables.
fn vector_of_tables(buf: &mut Vec<u8>, tables: &[Vec<Option<Field<'_>>>]) -> usize {
    align(buf, 4);
    let at = buf.len();
    buf.extend_from_slice(&(tables.len() as u32).to_le_bytes());
    let first_slot = buf.len();
    buf.resize(first_slot + 4 * tables.len(), 0);
    for (i, fields) in tables.iter().enumerate() {
        let t = table(buf, fields);
        patch(buf, first_slot + 4 * i, t);
    }
    at
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn u32_at(b: &[u8], at: usize) -> usize {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
    }

    fn u16_at(b: &[u8], at: usize) -> usize {
        u16::from_le_bytes(b[at..at + 2].try_into().unwrap()) as usize
    }

    /// A reader of what `encode` writes, as FlatBuffers defines it: the string in `slot` of the
    /// table at `table`, if set.
    fn field(b: &[u8], table: usize, slot: usize) -> Option<usize> {
        let vtable = table - i32::from_le_bytes(b[table..table + 4].try_into().unwrap()) as usize;
        let at = 4 + 2 * slot;
        if at >= u16_at(b, vtable) {
            return None;
        }
        let off = u16_at(b, vtable + at);
        (off != 0).then(|| table + off + u32_at(b, table + off))
    }

    fn str_at(b: &[u8], at: usize) -> &str {
        std::str::from_utf8(&b[at + 4..at + 4 + u32_at(b, at)]).unwrap()
    }

    #[test]
    fn reads_back_as_flat_buffers() {
        let node = FlatNode {
            name: "reviews-v3-0",
            namespace: "default",
            labels: &[("version", "v3"), ("app", "reviews")],
            owner: "o",
            workload_name: "reviews-v3",
            cluster_id: "Kubernetes",
            identity: None,
        };
        let b = node.encode();
        let root = u32_at(&b, 0);
        assert_eq!(root % 4, 0);
        assert_eq!(str_at(&b, field(&b, root, 0).unwrap()), "reviews-v3-0");
        assert_eq!(str_at(&b, field(&b, root, 1).unwrap()), "default");
        assert_eq!(str_at(&b, field(&b, root, 4).unwrap()), "reviews-v3");
        assert_eq!(str_at(&b, field(&b, root, 9).unwrap()), "Kubernetes");
        assert_eq!(field(&b, root, 11), None, "identity unset");
        assert_eq!(field(&b, root, 6), None, "istio_version unset");
        let labels = field(&b, root, 2).unwrap();
        assert_eq!(u32_at(&b, labels), 2);
        let kv = |i: usize| {
            let t = labels + 4 + 4 * i + u32_at(&b, labels + 4 + 4 * i);
            (str_at(&b, field(&b, t, 0).unwrap()), str_at(&b, field(&b, t, 1).unwrap()))
        };
        assert_eq!((kv(0), kv(1)), (("app", "reviews"), ("version", "v3")), "sorted by key");
        let with_identity = FlatNode { identity: Some("spiffe://x"), ..node }.encode();
        assert_eq!(str_at(&with_identity, field(&with_identity, u32_at(&with_identity, 0), 11).unwrap()), "spiffe://x");
    }
}
