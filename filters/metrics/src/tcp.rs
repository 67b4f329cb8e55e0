//! The metrics filter as an Envoy network filter: Mixer's TCP reports for one connection.
//!
//! * Bytes are counted in `on_downstream_data` (received) and `on_upstream_data` (sent), with no
//!   host call.
//! * `open` is reported at the first data callback, in the connection's context: by then
//!   `tcp_proxy` has connected upstream and chosen the cluster, so the destination is known. Its
//!   Envoy attributes are kept in an [`AttributeSnapshot`].
//! * `continue` is reported from the root's tick, against the snapshot (no host call but the
//!   records), for connections that carried bytes since their last report at least
//!   `metrics.tcp_report_interval` ago (`MetricOptions::tcp_report_interval_nanos`).
//! * `close` is reported in `on_log` (Envoy calls it when the connection closes), with the
//!   attributes read afresh (final response flags); preceded by `open` for a connection that
//!   never carried data.

use std::cell::RefCell;
use std::rc::Rc;

use hashbrown::HashMap;
use wasmixer_engine::attr::tcp_bag::{AttributeSnapshot, TcpBag, TcpReport};
use wasmixer_engine::expr::AttributeBag;
use wasmixer_engine::telemetry::metrics::tcp_traffic::TcpTraffic;
use wasmixer_proxy_wasm_host::abi;

use crate::stream::Shared;

/// One open connection, shared by its stream context and the root's registry.
pub struct LiveConnection {
    context_id: u32,
    shared: Rc<Shared>,
    traffic: TcpTraffic,
    snapshot: RefCell<Option<AttributeSnapshot>>,
}

impl LiveConnection {
    fn record(&self, report: TcpReport, bag: &dyn AttributeBag) {
        self.shared.record(&TcpBag::new(bag, &self.shared.table, report), self.context_id);
    }

    /// In the connection's own context.
    fn report_open(&self) {
        let Some(report) = self.traffic.open(abi::now_nanos()) else {
            return;
        };
        let shared = &self.shared;
        let snapshot =
            shared.with_envoy_bag(|bag| AttributeSnapshot::capture(&shared.table, bag, shared.plan.attributes()));
        self.record(report, &snapshot);
        if let Ok(mut slot) = self.snapshot.try_borrow_mut() {
            *slot = Some(snapshot);
        }
    }

    /// From the root's tick, in the root's context: only the snapshot is read.
    fn report_continue(&self, now_nanos: i64) {
        let Ok(snapshot) = self.snapshot.try_borrow() else {
            return;
        };
        let Some(snapshot) = snapshot.as_ref() else {
            return;
        };
        let interval = self.shared.plan.options.tcp_report_interval_nanos;
        if let Some(report) = self.traffic.continue_due(now_nanos, interval) {
            self.record(report, snapshot);
        }
    }

    /// In the connection's own context, at its end.
    fn report_close(&self) {
        let end = self.traffic.close(abi::now_nanos());
        if end.close.is_none() {
            return;
        }
        self.shared.with_envoy_bag(|bag| {
            for report in [end.open, end.close].into_iter().flatten() {
                self.record(report, bag);
            }
        });
    }
}

/// The open connections of one plugin, for the root's periodic reports.
#[derive(Default)]
pub struct ConnectionRegistry {
    live: RefCell<HashMap<u32, Rc<LiveConnection>>>,
}

impl ConnectionRegistry {
    fn insert(&self, connection: Rc<LiveConnection>) {
        if let Ok(mut live) = self.live.try_borrow_mut() {
            live.insert(connection.context_id, connection);
        }
    }

    fn remove(&self, context_id: u32) {
        if let Ok(mut live) = self.live.try_borrow_mut() {
            live.remove(&context_id);
        }
    }

    /// Reports `continue` for every connection that is due.
    pub fn report_due(&self, now_nanos: i64) {
        // Cloned out, so recording never runs under the registry's borrow.
        let connections: Vec<Rc<LiveConnection>> = match self.live.try_borrow() {
            Ok(live) => live.values().cloned().collect(),
            Err(_) => return,
        };
        for connection in connections {
            connection.report_continue(now_nanos);
        }
    }
}

/// One TCP connection through the filter.
pub struct TcpMetricsStream {
    registry: Rc<ConnectionRegistry>,
    /// `None` without a valid configuration: nothing is counted.
    connection: Option<Rc<LiveConnection>>,
}

impl TcpMetricsStream {
    pub fn new(context_id: u32, shared: Option<Rc<Shared>>, registry: Rc<ConnectionRegistry>) -> TcpMetricsStream {
        let connection = shared.map(|shared| {
            Rc::new(LiveConnection {
                context_id,
                shared,
                traffic: TcpTraffic::new(abi::now_nanos()),
                snapshot: RefCell::new(None),
            })
        });
        if let Some(c) = &connection {
            registry.insert(c.clone());
        }
        TcpMetricsStream { registry, connection }
    }
}

impl TcpMetricsStream {
    /// Bytes from the client; the first data of the connection reports it open.
    pub fn on_downstream_data(&mut self, data_size: usize) {
        if let Some(c) = &self.connection {
            c.traffic.add_received(data_size);
            if !c.traffic.is_opened() {
                c.report_open();
            }
        }
    }

    /// Bytes from the server; the first data of the connection reports it open.
    pub fn on_upstream_data(&mut self, data_size: usize) {
        if let Some(c) = &self.connection {
            c.traffic.add_sent(data_size);
            if !c.traffic.is_opened() {
                c.report_open();
            }
        }
    }

    /// The connection closed: its last report.
    pub fn on_log(&mut self) {
        if let Some(c) = &self.connection {
            c.report_close();
            self.registry.remove(c.context_id);
        }
    }
}

impl Drop for TcpMetricsStream {
    fn drop(&mut self) {
        if let Some(c) = &self.connection {
            self.registry.remove(c.context_id);
        }
    }
}
