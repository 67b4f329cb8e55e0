//! One request through every component, in the order the separate filters would run in a
//! chain `peer-metadata, deny, metrics, access-log` (responses in reverse).

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use wasmixer_access_log::stream::AccessLogStream;
use wasmixer_deny::stream::DenyStream;
use wasmixer_engine::attr::envoy_bag::Direction;
use wasmixer_engine::attr::request_carry::RequestCarry;
use wasmixer_metrics::stream::MetricsStream;
use wasmixer_peer_metadata::stream::PeerStream;
use wasmixer_proxy_wasm_host::component::{ComponentStream, Flow};
use wasmixer_proxy_wasm_host::identity::listener_direction;

/// A component whose request phase runs on inbound listeners only: Mixer's checks ran in the
/// server's sidecar, so outbound requests are not checked. The direction is the one the
/// components before it (peer metadata) already read into the request's carry.
pub struct InboundOnly<S> {
    stream: S,
    carry: Rc<RequestCarry>,
}

impl<S> InboundOnly<S> {
    pub fn new(stream: S, carry: Rc<RequestCarry>) -> InboundOnly<S> {
        InboundOnly { stream, carry }
    }
}

impl<S: ComponentStream> ComponentStream for InboundOnly<S> {
    fn on_request_headers(&mut self) -> Flow {
        if self.carry.direction(listener_direction) == Some(Direction::Outbound) {
            return Flow::Continue;
        }
        self.stream.on_request_headers()
    }

    fn on_response_headers(&mut self) {
        self.stream.on_response_headers();
    }

    fn on_log(&mut self) {
        self.stream.on_log();
    }
}

pub struct MixerStream {
    pub peer: PeerStream,
    pub deny: InboundOnly<DenyStream>,
    pub metrics: MetricsStream,
    pub access_log: AccessLogStream,
}

impl MixerStream {
    /// The components' streams in composition order.
    fn components(&mut self) -> [&mut dyn ComponentStream; 4] {
        [&mut self.peer, &mut self.deny, &mut self.metrics, &mut self.access_log]
    }
}

impl Context for MixerStream {}

impl HttpContext for MixerStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // In order; a local reply (the deny verdict) ends the request there.
        for component in self.components() {
            if component.on_request_headers() == Flow::Stop {
                return Action::Pause;
            }
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        for component in self.components().into_iter().rev() {
            component.on_response_headers();
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        for component in self.components() {
            component.on_log();
        }
    }
}
