//! Logs a panic at critical level before the VM aborts, so the cause is in Envoy's log.

/// Installs the hook; `filter` names the filter in the message.
pub fn install(filter: &'static str) {
    std::panic::set_hook(Box::new(move |info| {
        log::error!("{filter}: panic (the VM will stop; Envoy applies the plugin's failure policy): {info}");
    }));
}
