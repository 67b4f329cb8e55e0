//! The boundary between the attribute layer and the proxy: everything the layer asks of Envoy.
//! A proxy host implements it (`wasmixer-proxy-wasm-host`'s `ProxyHost`, with proxy-wasm host
//! calls); tests implement it with a fake that counts.

use std::rc::Rc;

use super::envoy_bag::Direction;
use super::sources::Side;
use super::workload_attributes::WorkloadAttributes;
use crate::expr::StringMap;

/// Envoy, as the attribute layer sees it. Every method is one host call (or none).
pub trait AttributeSource {
    /// `get_property(path)`: `None` when absent or not available in this phase. Paths are the
    /// vocabulary's, fixed at build time (`'static`), so a host may remember facts about a path
    /// by its address.
    fn property(&self, path: &'static [&'static str]) -> Option<Vec<u8>>;
    /// All request (or response) headers, lowercase names; of a repeated name the last value.
    fn headers(&self, response: bool) -> StringMap;
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
    /// Asked before the direction is known: a verified peer the metadata exchange published on
    /// this stream, and its side. Only a listener that is not outbound publishes a caller
    /// (`Side::Source`), only an outbound one a callee (`Side::Destination`, after the
    /// response), so the peer alone settles both sides and the direction: one host call where
    /// the direction and the peer would take two. A host that answers `Some` answers
    /// [`AttributeSource::listener_direction`] from it without a call. `None` when there is none or the
    /// direction is already known.
    fn announced_peer(&self) -> Option<(Side, Rc<WorkloadAttributes>)> {
        None
    }
    /// The listener's direction (`xds.listener_direction`: 1 inbound, 2 outbound).
    fn listener_direction(&self) -> Option<Direction> {
        Direction::from_property(&self.property(&Direction::PROPERTY)?)
    }
}
