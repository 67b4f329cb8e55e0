//! The attribute bag: the only input of evaluation. Filters implement it over Envoy (fetching
//! lazily, once per request); [`MapBag`] holds explicit values for tests and the CLI.

use super::manifest::{AttrId, Manifest};
use super::Value;

/// A source of attribute values for one evaluation context (one request).
pub trait AttributeBag {
    /// The value of attribute `id`, or `None` when it is absent. Called at most once per
    /// attribute reference during an evaluation; implementations cache as they see fit.
    fn get(&self, id: AttrId) -> Option<Value<'_>>;
}

/// A bag of explicitly set values, indexed by the ids of one manifest.
#[derive(Clone, Debug, Default)]
pub struct MapBag {
    values: Vec<Option<Value<'static>>>,
}

impl MapBag {
    /// An empty bag for attributes of `manifest`.
    pub fn new(manifest: &Manifest) -> MapBag {
        MapBag { values: vec![None; manifest.len()] }
    }

    /// Sets attribute `name` (which must be declared in `manifest`).
    pub fn set(&mut self, manifest: &Manifest, name: &str, value: Value<'_>) -> Result<(), String> {
        let (id, _) = manifest.lookup(name).ok_or_else(|| format!("unknown attribute {name}"))?;
        if let Some(slot) = self.values.get_mut(usize::from(id)) {
            *slot = Some(value.into_owned());
        }
        Ok(())
    }
}

impl AttributeBag for MapBag {
    fn get(&self, id: AttrId) -> Option<Value<'_>> {
        self.values.get(usize::from(id))?.as_ref().map(Value::reborrow)
    }
}
