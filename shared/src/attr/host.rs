//! The boundary between the attribute layer and the proxy: everything the layer asks of Envoy.
//! Filters implement it with proxy-wasm host calls; tests implement it with a fake that counts.

use std::rc::Rc;

use super::envoy_bag::Direction;
use super::workload_attributes::WorkloadAttributes;

/// Envoy, as the attribute layer sees it. Every method is one host call (or none).
pub trait Host {
    /// `get_property(path)`: `None` when absent or not available in this phase.
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
    /// All request (or response) headers, lowercase names.
    fn headers(&self, response: bool) -> Vec<(String, String)>;
    /// One request (or response) header.
    fn header(&self, response: bool, name: &str) -> Option<String>;
    /// One response trailer.
    fn response_trailer(&self, name: &str) -> Option<String>;
    /// Wall-clock time, nanoseconds since the Unix epoch.
    fn now_nanos(&self) -> i64;
    /// This proxy's own workload (from `xds.node` metadata), resolved at configure time.
    fn local_workload(&self) -> Option<Rc<WorkloadAttributes>>;
    /// The other side's workload, when known and trusted (see the README's security model).
    fn peer_workload(&self) -> Option<Rc<WorkloadAttributes>>;
    /// Asked before the direction is known: the verified caller the metadata exchange
    /// announced on this stream. Only a listener that is not outbound has one, so when it is
    /// present the local workload is the destination and this is the source, without reading
    /// the listener's direction. `None` when absent or unknown (the direction then decides).
    fn announced_caller(&self) -> Option<Rc<WorkloadAttributes>> {
        None
    }
    /// The listener's direction (`xds.listener_direction`: 1 inbound, 2 outbound).
    fn listener_direction(&self) -> Option<Direction> {
        Direction::from_property(&self.property(&Direction::PROPERTY)?)
    }
}
