//! One of the mesh's sample applications as a process (the compose mesh's application
//! containers): `mesh-app <app> <listen address> <sidecar outbound address> <pod name>`, e.g.
//! `mesh-app reviews-v3 127.0.0.1:9080 172.30.99.15:15001 reviews-v3-0`. Apps: productpage,
//! details, reviews-v1, reviews-v2, reviews-v3, ratings, httpbin, sleep.

use std::process::ExitCode;

use wasmixer_integration::apps::{parse_app, serve, AppContext};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [app, listen, outbound, pod] = args.as_slice() else {
        eprintln!("usage: mesh-app <app> <listen address> <sidecar outbound address> <pod name>");
        return ExitCode::from(2);
    };
    let Some(app) = parse_app(app) else {
        eprintln!("mesh-app: unknown app {app:?} (productpage, details, reviews-v1..v3, ratings, httpbin, sleep)");
        return ExitCode::from(2);
    };
    let Ok(outbound) = outbound.parse() else {
        eprintln!("mesh-app: bad outbound address {outbound:?}");
        return ExitCode::from(2);
    };
    eprintln!("mesh-app: {app:?} on {listen}, calling through {outbound}");
    match serve(&app, AppContext { pod_name: pod.clone(), outbound }, listen) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mesh-app: {e}");
            ExitCode::from(1)
        }
    }
}
