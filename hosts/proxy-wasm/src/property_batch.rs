//! The log-phase properties a configuration reads, fetched with one host call per request
//! instead of one call each.
//!
//! Every value Envoy hands a module costs a call back into the VM to allocate it, so a
//! `get_property` that returns a value costs several times one that finds nothing (see
//! bench/README.md, `make bench-instructions`). Envoy's official build also offers CEL through
//! the foreign functions `expr_create` / `expr_evaluate`, over the same attributes
//! `get_property` serves: a CEL list of the properties, created once per configuration and
//! evaluated once per request, comes back as one buffer (the pairs encoding, each element a key
//! in `get_property`'s own encoding). For the handful of properties the log phase reads, one
//! evaluation and one allocation cost far less than a read and an allocation for each.
//!
//! CEL fails the whole list when one element is absent, so only properties every finished HTTP
//! stream has are batched ([`BATCHABLE`]); when the evaluation fails anyway (a stream reset
//! before its response has no `response.code`) the reader falls back to single reads. A batch
//! that keeps failing is tried only now and then.
//!
//! [`BATCHABLE`]: wasmixer_engine::attr::batch::BATCHABLE

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wasmixer_engine::attr::batch::{decode, expression, log_phase_paths, BatchValues};
use wasmixer_engine::attr::envoy_bag::SourceTable;
use wasmixer_engine::bytes::strs_equal;

use crate::abi;

/// After this many failures in a row a batch is tried once every [`RETRY_EVERY`] requests.
const GIVE_UP_AFTER: u32 = 16;
/// Distinct property paths remembered by address (the vocabulary has fewer).
const MAX_KNOWN_PATHS: usize = 64;
const RETRY_EVERY: u32 = 256;

/// A `'static` path's address and length.
type PathAddress = (usize, usize);

/// One configuration's batch: the CEL list registered with Envoy, and its paths in order.
#[derive(Debug)]
pub struct PropertyBatch {
    paths: Vec<&'static [&'static str]>,
    /// Paths looked up so far: their index in `paths`, if any.
    known: RefCell<Vec<(PathAddress, Option<usize>)>>,
    token: u32,
    failures: Cell<u32>,
    warned: Cell<bool>,
}

impl PropertyBatch {
    /// Registers the batch for the configurations whose attributes come from `tables`. `None`
    /// when they read fewer than two batchable properties after the response, or when the host
    /// cannot evaluate expressions (every property is then read on its own, as before).
    pub fn register(tables: &[&SourceTable]) -> Option<PropertyBatch> {
        let paths = log_phase_paths(tables);
        if paths.len() < 2 {
            return None;
        }
        let answer = abi::call_foreign_function("expr_create", expression(&paths).as_bytes());
        let token = answer.as_deref().and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
        if token.is_none() {
            log::info!("wasmixer: the host does not evaluate CEL expressions (expr_create); log-phase properties are read one by one");
        }
        Some(PropertyBatch {
            paths,
            known: RefCell::new(Vec::new()),
            token: token?,
            failures: Cell::new(0),
            warned: Cell::new(false),
        })
    }

    /// Where `path` is in the batch. Paths are `'static`, so each one read is remembered by its
    /// address: the strings are compared once per path, not on every request.
    pub fn index_of(&self, path: &'static [&'static str]) -> Option<usize> {
        let address = (path.as_ptr() as usize, path.len());
        if let Ok(known) = self.known.try_borrow() {
            if let Some(&(_, index)) = known.iter().find(|(a, _)| *a == address) {
                return index;
            }
        }
        let index = self.paths.iter().position(|p| strs_equal(p, path));
        if let Ok(mut known) = self.known.try_borrow_mut() {
            if known.len() < MAX_KNOWN_PATHS {
                known.push((address, index));
            }
        }
        index
    }

    /// This request's values, in the batch's order; `None` when the evaluation failed or the
    /// batch is resting after repeated failures.
    pub fn fetch(&self) -> Option<BatchValues> {
        let failures = self.failures.get();
        if failures >= GIVE_UP_AFTER {
            self.failures.set(failures.wrapping_add(1).max(GIVE_UP_AFTER));
            if !failures.is_multiple_of(RETRY_EVERY) {
                return None;
            }
        }
        let values = abi::call_foreign_function("expr_evaluate", &self.token.to_le_bytes())
            .and_then(|bytes| decode(bytes, self.paths.len()));
        let failures = if values.is_some() { 0 } else { failures.saturating_add(1) };
        self.failures.set(failures);
        if failures == GIVE_UP_AFTER && !self.warned.replace(true) {
            log::warn!(
                "wasmixer: evaluating {} failed for {GIVE_UP_AFTER} requests in a row; those properties are read one by one, and the batch is retried every {RETRY_EVERY} requests (logged once)",
                expression(&self.paths)
            );
        }
        values
    }

    /// Identifies the batch within one request's carry.
    pub fn key(&self) -> usize {
        self as *const PropertyBatch as usize
    }
}

impl Drop for PropertyBatch {
    fn drop(&mut self) {
        let _ = abi::call_foreign_function("expr_delete", &self.token.to_le_bytes());
    }
}

/// Gives a configuration just applied `batch` in place of its own (the components of a combined
/// filter share one); once streams hold the configuration it keeps its own. `slot` picks the
/// configuration's batch field.
pub fn share_with<C>(
    config: &mut Option<Rc<C>>,
    slot: impl FnOnce(&mut C) -> &mut Option<Rc<PropertyBatch>>,
    batch: Option<Rc<PropertyBatch>>,
) {
    if let Some(c) = config.as_mut().and_then(Rc::get_mut) {
        *slot(c) = batch;
    }
}

#[cfg(test)]
mod tests {
    use wasmixer_engine::attr::envoy_bag::Direction;
    use wasmixer_engine::expr::Manifest;

    use super::*;

    #[test]
    fn index_of_finds_paths_by_content_and_then_by_address() {
        static CODE: [&str; 2] = ["response", "code"];
        static CODE_AGAIN: [&str; 2] = ["response", "code"];
        static PATH: [&str; 2] = ["request", "path"];
        let batch = PropertyBatch {
            paths: vec![&Direction::PROPERTY, &["response", "code"]],
            known: RefCell::new(Vec::new()),
            token: 0,
            failures: Cell::new(0),
            warned: Cell::new(false),
        };
        for _ in 0..2 {
            assert_eq!(batch.index_of(&CODE), Some(1));
            assert_eq!(batch.index_of(&CODE_AGAIN), Some(1), "the same path at another address");
            assert_eq!(batch.index_of(&PATH), None);
            assert_eq!(batch.index_of(&Direction::PROPERTY), Some(0));
        }
        assert_eq!(batch.known.borrow().len(), 4);
    }

    #[test]
    fn no_batch_without_two_batchable_properties_or_off_the_proxy() {
        let manifest = Manifest::istio();
        let ids =
            |names: &[&str]| -> Vec<_> { names.iter().filter_map(|n| manifest.lookup(n).map(|(id, _)| id)).collect() };
        let table = SourceTable::new(manifest, &ids(&["response.code", "response.duration", "request.total_size"]));
        let nothing = SourceTable::new(manifest, &ids(&["request.path", "request.headers"]));
        assert!(PropertyBatch::register(&[&nothing]).is_none());
        // Off the proxy there is no CEL host: no batch, single reads.
        assert!(PropertyBatch::register(&[&table]).is_none());
    }
}
