//! [`Host`] over proxy-wasm: what the attribute layer asks, answered with host calls.

use std::rc::Rc;

use super::abi::{self, MapType};
use crate::attr::host::Host;
use crate::attr::workload_attributes::WorkloadAttributes;

/// The proxy as seen from one stream. The peer is resolved lazily, through `peer`.
pub struct ProxyHost<'a> {
    local: Option<Rc<WorkloadAttributes>>,
    peer: &'a dyn Fn() -> Option<Rc<WorkloadAttributes>>,
}

impl<'a> ProxyHost<'a> {
    pub fn new(
        local: Option<Rc<WorkloadAttributes>>,
        peer: &'a dyn Fn() -> Option<Rc<WorkloadAttributes>>,
    ) -> ProxyHost<'a> {
        ProxyHost { local, peer }
    }
}

impl Host for ProxyHost<'_> {
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        abi::get_property(path)
    }

    fn headers(&self, response: bool) -> Vec<(String, String)> {
        abi::get_header_map(if response { MapType::ResponseHeaders } else { MapType::RequestHeaders })
    }

    fn header(&self, response: bool, name: &str) -> Option<String> {
        abi::get_header(if response { MapType::ResponseHeaders } else { MapType::RequestHeaders }, name)
    }

    fn now_nanos(&self) -> i64 {
        abi::now_nanos()
    }

    fn local_workload(&self) -> Option<Rc<WorkloadAttributes>> {
        self.local.clone()
    }

    fn peer_workload(&self) -> Option<Rc<WorkloadAttributes>> {
        (self.peer)()
    }
}
