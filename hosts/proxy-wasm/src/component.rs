//! One interface for the parts a filter is made of (peer metadata, deny, metrics, access log),
//! so that a filter composing several (`mixer`) drives them with loops instead of a hand-written
//! call per component and phase.
//!
//! Why this shape:
//!
//! * **Envoy's callbacks, as Envoy makes them.** The methods are the proxy's own events: a root's
//!   configuration, tick and outbound-call answers ([`Component`]), and a stream's creation,
//!   request headers, response headers and log phase ([`ComponentStream`]). A component is
//!   therefore its standalone filter's root and stream, unchanged; there is no second model of a
//!   request to translate into.
//! * **One set of components per root.** Envoy makes a root context per configuration, and
//!   every stream belongs to one root: a composed filter's root owns one value of each component
//!   (configured from the one document), and each stream one value of each component's stream,
//!   held inline (no allocation per request). Streams share what the request revealed through
//!   one [`RequestCarry`].
//! * **Composition order.** The composed filter keeps a fixed order: request phases run in it
//!   (a [`Flow::Stop`] ends the request there, as a local reply ends Envoy's filter chain),
//!   response phases in reverse, as Envoy runs a chain of separate filters; the log phase and
//!   root events in order. What is specific to a composition (sharing work between components,
//!   one tick period, a component that runs only on one side) stays explicit in the composed
//!   filter, after the loop or around a component's stream.

use std::rc::Rc;

use wasmixer_engine::attr::request_carry::RequestCarry;
use wasmixer_engine::config::FilterConfig;

/// Whether a request goes on after a component's request phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// A local reply was sent; the request stops here.
    Stop,
}

/// A component's root: what a configuration compiles to, and the root's events.
pub trait Component {
    /// One request's part of this component.
    type Stream: ComponentStream
    where
        Self: Sized;

    /// Takes the configuration document (the component reads its own part), or rejects it
    /// (logged and counted by the component); `false` fails the root's `on_configure`.
    fn configure(&mut self, config: &FilterConfig) -> bool;

    /// A stream of the current configuration, sharing `carry` with the request's other components.
    fn stream(&self, context_id: u32, carry: Rc<RequestCarry>) -> Self::Stream
    where
        Self: Sized;

    /// The root's tick: hand counts to Envoy, send what is due.
    fn on_tick(&mut self) {}

    /// The answer to an outbound call (`proxy_dispatch_http_call`) with `token`; `true` when the
    /// call was this component's (later components are not asked).
    fn on_http_call_response(&mut self, _token: u32, _body_size: usize) -> bool {
        false
    }
}

/// One request's part of a component.
pub trait ComponentStream {
    /// The request headers: go on, or stop after a local reply.
    fn on_request_headers(&mut self) -> Flow {
        Flow::Continue
    }

    /// The response headers.
    fn on_response_headers(&mut self) {}

    /// The log phase (the stream's last callback: response code, sizes and duration known).
    fn on_log(&mut self) {}
}
