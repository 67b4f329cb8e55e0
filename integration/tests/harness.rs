//! The harness's own failure paths against a real Envoy.

use wasmixer_integration::{ensure, EnvoyProcess, HarnessError};

#[test]
fn bad_bootstrap_fails_fast_with_the_log() -> Result<(), HarnessError> {
    let yaml = "admin:\n  address:\n    socket_address: { address: 127.0.0.1, port_value: 0 }\nstatic_resources:\n  clusters:\n  - name: broken\n    type: NO_SUCH_TYPE\n";
    let started = std::time::Instant::now();
    match EnvoyProcess::start(yaml, "bad-bootstrap") {
        Ok(envoy) => Err(HarnessError::check(format!("envoy started on a broken bootstrap (pid {})", envoy.pid()))),
        Err(HarnessError::Envoy { message, log }) => {
            ensure!(message.contains("exited during startup"), "message: {message}");
            ensure!(log.contains("NO_SUCH_TYPE"), "the error's log does not name the bad value:\n{log}");
            ensure!(
                started.elapsed() < std::time::Duration::from_secs(15),
                "took {:?} to notice the exit",
                started.elapsed()
            );
            Ok(())
        }
        Err(other) => Err(HarnessError::check(format!("unexpected error: {other}"))),
    }
}
