//! Attribute manifests: which attribute names exist and their types (the type checker's input).
//! Istio's own vocabulary, the default manifest, is the attribute layer's
//! (`Manifest::istio`, in `attr::vocabulary`).

use hashbrown::HashMap;

use super::ValueType;

/// Index of an attribute within its manifest; evaluation looks attributes up by it.
pub type AttrId = u16;

/// A set of declared attributes. Ids are positions in declaration order.
#[derive(Clone, Debug, Default)]
pub struct Manifest {
    entries: Vec<(String, ValueType)>,
    by_name: HashMap<String, AttrId>,
}

impl Manifest {
    /// Builds a manifest; a repeated name keeps its first declaration. Beyond 65536
    /// attributes the rest are ignored (no real manifest comes close).
    pub fn new<I, S>(attributes: I) -> Manifest
    where
        I: IntoIterator<Item = (S, ValueType)>,
        S: Into<String>,
    {
        let mut m = Manifest::default();
        for (name, ty) in attributes {
            let name = name.into();
            let Ok(id) = AttrId::try_from(m.entries.len()) else { break };
            if !m.by_name.contains_key(&name) {
                m.by_name.insert(name.clone(), id);
                m.entries.push((name, ty));
            }
        }
        m
    }

    /// The id and type of `name`, if declared.
    pub fn lookup(&self, name: &str) -> Option<(AttrId, ValueType)> {
        let id = *self.by_name.get(name)?;
        self.entries.get(usize::from(id)).map(|(_, t)| (id, *t))
    }

    /// The name of attribute `id` (empty for an unknown id).
    pub fn name(&self, id: AttrId) -> &str {
        self.entries.get(usize::from(id)).map_or("", |(n, _)| n.as_str())
    }

    /// The type of attribute `id`.
    pub fn value_type(&self, id: AttrId) -> Option<ValueType> {
        self.entries.get(usize::from(id)).map(|(_, t)| *t)
    }

    /// All attributes in id order.
    pub fn iter(&self) -> impl Iterator<Item = (AttrId, &str, ValueType)> {
        self.entries.iter().enumerate().map(|(i, (n, t))| (i as AttrId, n.as_str(), *t))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
