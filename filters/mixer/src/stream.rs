//! One request through every component, in the order the separate filters would run in a
//! chain `peer-metadata, deny, metrics, access-log` (responses in reverse).

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use wasmixer_access_log::stream::AccessLogStream;
use wasmixer_deny::stream::{DenyStream, Flow};
use wasmixer_engine::attr::envoy_bag::Direction;
use wasmixer_engine::attr::request_carry::RequestCarry;
use wasmixer_metrics::stream::MetricsStream;
use wasmixer_peer_metadata::stream::PeerStream;
use wasmixer_proxy_wasm_host::identity::listener_direction;

pub struct MixerStream {
    pub carry: Rc<RequestCarry>,
    pub peer: PeerStream,
    pub deny: DenyStream,
    pub metrics: MetricsStream,
    pub access_log: AccessLogStream,
}

impl Context for MixerStream {}

impl HttpContext for MixerStream {
    fn on_http_request_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        // Peer metadata never stops a request; the deny verdict decides. Mixer's checks ran in the
        // server's sidecar: outbound requests are not checked.
        self.peer.on_http_request_headers(num_headers, end_of_stream);
        if self.carry.direction(listener_direction) == Some(Direction::Outbound) {
            return Action::Continue;
        }
        match self.deny.on_request_headers() {
            Flow::Continue => Action::Continue,
            Flow::Stop => Action::Pause,
        }
    }

    fn on_http_response_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        self.deny.on_response_headers();
        self.peer.on_http_response_headers(num_headers, end_of_stream)
    }

    fn on_log(&mut self) {
        self.metrics.on_log();
        self.access_log.on_log();
    }
}
