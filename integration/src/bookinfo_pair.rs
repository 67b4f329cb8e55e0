//! The call most end-to-end tests make: bookinfo's reviews-v3 sidecar (outbound) calling the
//! ratings-v1 sidecar (inbound, in front of a test app) with Istio mTLS from a test CA, each
//! sidecar writing Envoy's access log to a file flushed every 100 ms.

use std::path::{Path, PathBuf};

use crate::pki::TestCa;
use crate::sidecar::{InboundTls, SidecarOptions, SidecarSpec, Workload};
use crate::{EnvoyProcess, HarnessError};

/// What each listener runs (HTTP filter entries, as `bootstrap::wasm_filter` writes them), and
/// the stat tags both bootstraps declare.
#[derive(Default)]
pub struct PairFilters {
    pub ratings_inbound: Vec<String>,
    pub ratings_outbound: Vec<String>,
    pub reviews_inbound: Vec<String>,
    pub reviews_outbound: Vec<String>,
    pub stats_tags: Vec<String>,
}

/// The two running sidecars and their access-log files.
pub struct ReviewsToRatings {
    pub ratings: EnvoyProcess,
    pub reviews: EnvoyProcess,
    pub ratings_log: PathBuf,
    pub reviews_log: PathBuf,
}

const FLUSH: [&str; 2] = ["--file-flush-interval-msec", "100"];

impl ReviewsToRatings {
    /// Starts both sidecars (Envoy names `<name>-ratings`, `<name>-reviews`); the CA, the
    /// certificates and the logs go to `dir`; ratings' inbound listener forwards to `app_port`.
    pub fn start(
        name: &str,
        dir: &Path,
        app_port: u16,
        filters: PairFilters,
    ) -> Result<ReviewsToRatings, HarnessError> {
        let ca = TestCa::create(dir, "cluster.local")?;
        let ca_cert = ca.ca_cert();
        // Listeners bind port 0 and Envoy says which port it took: pre-picked ports can race
        // with the admin ports of Envoys starting at the same time.

        let ratings_w = Workload::new("ratings", "v1", "default", "bookinfo-ratings");
        let ratings_cert = ca.issue("default", "bookinfo-ratings")?;
        let ratings_spec = SidecarSpec {
            inbound_filters: filters.ratings_inbound,
            outbound_filters: filters.ratings_outbound,
            stats_tags: filters.stats_tags.clone(),
            ..SidecarSpec::bookinfo_ratings(&ratings_w, &ratings_cert, &ca_cert, InboundTls::Strict, [0, 0], app_port)
        };
        let ratings_log = dir.join("ratings.log");
        let ratings = start_with_log(&ratings_spec, &ratings_log, &format!("{name}-ratings"))?;
        let ratings_inbound_port = ratings.listener_addr("inbound")?.port();

        let reviews_w = Workload::new("reviews", "v3", "default", "bookinfo-reviews");
        let reviews_cert = ca.issue("default", "bookinfo-reviews")?;
        let reviews_spec = SidecarSpec {
            inbound_filters: filters.reviews_inbound,
            outbound_filters: filters.reviews_outbound,
            stats_tags: filters.stats_tags,
            ..SidecarSpec::bookinfo_reviews(
                &reviews_w,
                &reviews_cert,
                &ca_cert,
                InboundTls::Strict,
                [0, 0],
                ratings_inbound_port,
            )
        };
        let reviews_log = dir.join("reviews.log");
        let reviews = start_with_log(&reviews_spec, &reviews_log, &format!("{name}-reviews"))?;
        Ok(ReviewsToRatings { ratings, reviews, ratings_log, reviews_log })
    }
}

fn start_with_log(spec: &SidecarSpec<'_>, log: &Path, name: &str) -> Result<EnvoyProcess, HarnessError> {
    let options = SidecarOptions { access_log_path: Some(log.to_path_buf()), ..SidecarOptions::default() };
    EnvoyProcess::start_with_args(&spec.bootstrap_with(&options), name, &FLUSH)
}
