//! The proxy-wasm glue: the root context declares the property once configured; each stream
//! sets it from the peer its request names.

use std::collections::HashMap;
use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use crate::{declare_property_args, Config, PEER_HEADER, PROPERTY};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::<EmulatorRoot>::default() });
}}

/// Each configured peer's encoded state, by name.
type Encoded = Rc<HashMap<String, Vec<u8>>>;

#[derive(Default)]
struct EmulatorRoot {
    peers: Encoded,
    declared: bool,
}

impl Context for EmulatorRoot {}

impl RootContext for EmulatorRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let config = match Config::parse(&bytes) {
            Ok(c) => c,
            Err(e) => {
                log::error!("istio-state-emulator: {e}");
                return false;
            }
        };
        // A property is declared once per root context; Envoy refuses a second declaration.
        if !self.declared {
            if let Err(e) = hostcalls::call_foreign_function("declare_property", Some(&declare_property_args(&config)))
            {
                log::error!("istio-state-emulator: declare_property {PROPERTY}: {e:?}");
                return false;
            }
            self.declared = true;
        }
        self.peers =
            Rc::new(config.peers.iter().map(|(name, peer)| (name.clone(), peer.encode(config.format))).collect());
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(EmulatorStream { peers: Rc::clone(&self.peers) }))
    }
}

struct EmulatorStream {
    peers: Encoded,
}

impl Context for EmulatorStream {}

impl HttpContext for EmulatorStream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let Some(name) = self.get_http_request_header(PEER_HEADER) else { return Action::Continue };
        let Some(state) = self.peers.get(&name) else { return Action::Continue };
        // Envoy keeps it as `wasm.downstream_peer`, typed by this root's declaration.
        if let Err(e) = hostcalls::set_property(vec![PROPERTY], Some(state)) {
            log::error!("istio-state-emulator: set_property {PROPERTY}: {e:?}");
        }
        Action::Continue
    }
}
