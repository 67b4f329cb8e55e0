//! The registry of Mixer's adapters and templates: one row per adapter and per template that
//! Mixer shipped, saying whether wasmixer runs it and where. Everything that used to name
//! adapters and templates by string reads it: the legacy kinds ([`super::resource::classify`]),
//! the filters' plans (`DenyPlan::compile`, `MetricPlan::compile`, `LogPlan::compile`: which
//! handlers are theirs and which instance templates those handlers take) and `wasmixer convert`
//! (where each handler and instance goes, the messages for what is not implemented, which
//! instance fields hold expressions).
//!
//! # Adding an adapter
//!
//! Say `memquota`, served by the deny filter:
//!
//! 1. A variant of [`Module`] (`Module::MemQuota`), with its [`Module::component`] and a doc
//!    comment naming the function that parses a handler's params.
//! 2. Its row in [`ADAPTERS`]: `support: Support::Served(Module::MemQuota)` instead of
//!    `Unsupported`, the templates its handlers take (`&["quota"]`), and its own metrics (declare
//!    them in [`crate::self_metrics`], add them to `TAGGED` there, and reference them here). If
//!    a template it takes is new to wasmixer, make that template's row in [`TEMPLATES`]
//!    `Served(Component::Deny)` and list its expression fields.
//! 3. One module with the adapter (`policy/memquota.rs`: params parser, runtime), and the arm
//!    for `Module::MemQuota` in the component's handler compiler (`policy::deny`'s
//!    `compile_handler` and, for a new template, `compile_rule`; the metrics and access-log
//!    plans have one module each and pick their handlers by [`Module`]).
//! 4. Tests: the module's own, a plan test that a handler of the adapter compiles and one that
//!    a wrong template is refused, and the tests below (every served module has a row, the
//!    self-metrics are all linked). `wasmixer convert` then routes it and lists it among the
//!    compiled-in adapters without further change.
//!
//! Nothing here is a function pointer on purpose: every filter reads this table, and a pointer
//! to a parser would link that parser into filters that never run it.

use crate::expr::ValueType;
use crate::self_metrics::{self, SelfMetric};

/// A part of wasmixer that does the work of Mixer adapters (one filter, or its share of
/// `mixer.wasm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    Deny,
    Metrics,
    AccessLog,
    PeerMetadata,
}

impl Component {
    /// Every component, in the order of [`self_metrics::TAGGED`].
    pub const ALL: [Component; 4] =
        [Component::Deny, Component::PeerMetadata, Component::Metrics, Component::AccessLog];

    /// The filter's name (`filters/<name>`).
    pub const fn name(self) -> &'static str {
        match self {
            Component::Deny => "deny",
            Component::Metrics => "metrics",
            Component::AccessLog => "access-log",
            Component::PeerMetadata => "peer-metadata",
        }
    }

    /// The component's own metrics beyond those of its adapters' rows (and beyond
    /// [`self_metrics::CONFIG_REJECTED`], which every filter has).
    pub const fn own_metrics(self) -> &'static [SelfMetric] {
        match self {
            Component::Deny => {
                &[self_metrics::POLICY_CHECKS, self_metrics::POLICY_HEADER_VALUES_SKIPPED, self_metrics::POLICY_LOST]
            }
            Component::Metrics => &self_metrics::METRICS_FILTER,
            Component::AccessLog => &[
                self_metrics::ACCESS_LOG_INSTANCE_ERRORS,
                self_metrics::ACCESS_LOG_MATCH_ERRORS,
                self_metrics::ACCESS_LOG_NETWORK_DROPPED,
            ],
            Component::PeerMetadata => &[self_metrics::PEER_METADATA],
        }
    }
}

/// A compiled-in adapter: the hook its component dispatches on to parse a handler's params and
/// run it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Module {
    /// `policy::deny` (`compile_handler`): `status.code`, `status.message`.
    Denier,
    /// [`crate::policy::listchecker::ListParams::from_json`].
    ListChecker,
    /// [`crate::telemetry::metrics::params::parse_prometheus_params`].
    Prometheus,
    /// `telemetry::logs::handler` (`compile_handler`).
    Stdio,
}

impl Module {
    /// The component that runs the module.
    pub const fn component(self) -> Component {
        match self {
            Module::Denier | Module::ListChecker => Component::Deny,
            Module::Prometheus => Component::Metrics,
            Module::Stdio => Component::AccessLog,
        }
    }
}

/// What wasmixer does with an adapter (`Support<Module>`) or a template (`Support<Component>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support<S> {
    /// Compiled in.
    Served(S),
    /// Done another way (`why` says how): not an omission.
    Superseded { by: Component, why: &'static str },
    /// Not implemented; `hint` (possibly empty) says what to use instead.
    Unsupported { hint: &'static str },
}

/// One of Mixer's adapters. Every adapter's name is also a legacy handler kind (`kind: denier`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdapterRow {
    pub name: &'static str,
    pub support: Support<Module>,
    /// The instance templates a handler of the adapter takes, in the order messages list them.
    pub templates: &'static [&'static str],
    /// Its own metrics, beyond its component's.
    pub own_metrics: &'static [SelfMetric],
}

/// One of Mixer's templates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TemplateRow {
    pub name: &'static str,
    /// The component its instances go to.
    pub support: Support<Component>,
    /// Whether `kind: <name>` declares an instance of it.
    pub legacy_kind: bool,
    /// Params fields that hold one expression, with the type it must have (if any).
    pub expressions: &'static [(&'static str, Option<ValueType>)],
    /// Params fields that hold a map of name to expression.
    pub expression_maps: &'static [&'static str],
}

/// The reason the kubernetesenv adapter and its `kubernetes` template are not needed.
pub const KUBERNETESENV_SUPERSEDED: &str = "the kubernetesenv adapter only produced workload attributes (source.workload.name, destination.labels, ...); wasmixer's peer-metadata filter provides them from the proxies' node metadata";

const BY_PEER_METADATA: Support<Module> =
    Support::Superseded { by: Component::PeerMetadata, why: KUBERNETESENV_SUPERSEDED };

const fn served(name: &'static str, module: Module, templates: &'static [&'static str]) -> AdapterRow {
    AdapterRow { name, support: Support::Served(module), templates, own_metrics: &[] }
}

const fn unsupported(name: &'static str, hint: &'static str) -> AdapterRow {
    AdapterRow { name, support: Support::Unsupported { hint }, templates: &[], own_metrics: &[] }
}

const QUOTA_HINT: &str = "rate limiting: use Envoy's local or global rate limit filter";
const TRACING_HINT: &str = "tracing and Stackdriver export are configured on Envoy and Istio directly";

/// Every adapter Mixer shipped. The compiled-in ones are listed in this order in messages.
pub const ADAPTERS: &[AdapterRow] = &[
    // wasmixer takes checknothing instances for a listchecker too (they pass); Mixer's took only
    // listentry.
    served("denier", Module::Denier, &["checknothing", "listentry"]),
    AdapterRow {
        own_metrics: &[self_metrics::POLICY_LIST_FETCHES],
        ..served("listchecker", Module::ListChecker, &["checknothing", "listentry"])
    },
    unsupported("memquota", QUOTA_HINT),
    served("prometheus", Module::Prometheus, &["metric"]),
    served("stdio", Module::Stdio, &["logentry", "metric"]),
    unsupported("bypass", ""),
    unsupported("circonus", ""),
    unsupported("cloudwatch", ""),
    unsupported("dogstatsd", ""),
    unsupported("fluentd", "send the stdio access log to a log collector instead"),
    AdapterRow { support: BY_PEER_METADATA, ..unsupported("kubernetesenv", "") },
    unsupported("noop", ""),
    unsupported("opa", "use an ext_authz filter with OPA"),
    unsupported("rbac", "use Istio's AuthorizationPolicy"),
    unsupported("redisquota", QUOTA_HINT),
    unsupported("signalfx", ""),
    unsupported("solarwinds", ""),
    unsupported("stackdriver", TRACING_HINT),
    unsupported("statsd", ""),
    unsupported("zipkin", TRACING_HINT),
    unsupported("apigee", ""),
    // Not an adapter: the kubernetesenv adapter's attribute-generation template. Its legacy
    // kind has always been filed as a handler kind, so `kind: kubernetes` resources and
    // references to them resolve as handlers.
    AdapterRow { support: BY_PEER_METADATA, ..unsupported("kubernetes", "") },
];

const fn tmpl(
    name: &'static str,
    support: Support<Component>,
    expressions: &'static [(&'static str, Option<ValueType>)],
    expression_maps: &'static [&'static str],
) -> TemplateRow {
    TemplateRow { name, support, legacy_kind: true, expressions, expression_maps }
}

const NOT_IMPLEMENTED: Support<Component> = Support::Unsupported { hint: "" };

/// Every template Mixer shipped. The compiled-in ones are listed in this order in messages.
pub const TEMPLATES: &[TemplateRow] = &[
    tmpl("checknothing", Support::Served(Component::Deny), &[], &[]),
    tmpl("listentry", Support::Served(Component::Deny), &[("value", None)], &[]),
    tmpl(
        "metric",
        Support::Served(Component::Metrics),
        &[("value", None), ("monitored_resource_type", Some(ValueType::String))],
        &["dimensions", "monitored_resource_dimensions"],
    ),
    tmpl(
        "logentry",
        Support::Served(Component::AccessLog),
        &[
            ("timestamp", Some(ValueType::Timestamp)),
            ("severity", Some(ValueType::String)),
            ("monitored_resource_type", Some(ValueType::String)),
        ],
        &["variables", "monitored_resource_dimensions"],
    ),
    tmpl("quota", NOT_IMPLEMENTED, &[], &["dimensions"]),
    tmpl("reportnothing", NOT_IMPLEMENTED, &[], &[]),
    tmpl("tracespan", NOT_IMPLEMENTED, &[], &[]),
    tmpl("apikey", NOT_IMPLEMENTED, &[], &[]),
    tmpl("authorization", NOT_IMPLEMENTED, &[], &[]),
    tmpl("edge", NOT_IMPLEMENTED, &[], &[]),
    // Its legacy kind is a handler kind (see the `kubernetes` adapter row).
    TemplateRow {
        legacy_kind: false,
        ..tmpl(
            "kubernetes",
            Support::Superseded { by: Component::PeerMetadata, why: KUBERNETESENV_SUPERSEDED },
            &[],
            &[],
        )
    },
];

/// The row of adapter `name`.
pub fn adapter(name: &str) -> Option<&'static AdapterRow> {
    ADAPTERS.iter().find(|a| a.name == name)
}

/// The row of template `name`.
pub fn template(name: &str) -> Option<&'static TemplateRow> {
    TEMPLATES.iter().find(|t| t.name == name)
}

/// The module that runs adapter `name`, if it is compiled in.
pub fn module_of(adapter_name: &str) -> Option<Module> {
    match adapter(adapter_name)?.support {
        Support::Served(m) => Some(m),
        _ => None,
    }
}

/// Whether a handler of adapter `name` belongs to `component`.
pub fn runs_in(adapter_name: &str, component: Component) -> bool {
    module_of(adapter_name).is_some_and(|m| m.component() == component)
}

/// The templates a handler of adapter `name` takes (none for an adapter not compiled in).
pub fn templates_of(adapter_name: &str) -> &'static [&'static str] {
    adapter(adapter_name).map_or(&[], |a| a.templates)
}

/// The compiled-in adapters, in table order.
pub fn served_adapters() -> impl Iterator<Item = &'static AdapterRow> {
    ADAPTERS.iter().filter(|a| matches!(a.support, Support::Served(_)))
}

/// The compiled-in templates, in table order.
pub fn served_templates() -> impl Iterator<Item = &'static TemplateRow> {
    TEMPLATES.iter().filter(|t| matches!(t.support, Support::Served(_)))
}

/// Every own metric of `component`: its own, then its adapters'.
pub fn own_metrics(component: Component) -> impl Iterator<Item = &'static SelfMetric> {
    let adapters =
        ADAPTERS.iter().filter(move |a| matches!(a.support, Support::Served(m) if m.component() == component));
    component.own_metrics().iter().chain(adapters.flat_map(|a| a.own_metrics.iter()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        for (i, a) in ADAPTERS.iter().enumerate() {
            assert!(!ADAPTERS[..i].iter().any(|b| b.name == a.name), "adapter {} listed twice", a.name);
        }
        for (i, t) in TEMPLATES.iter().enumerate() {
            assert!(!TEMPLATES[..i].iter().any(|u| u.name == t.name), "template {} listed twice", t.name);
        }
    }

    #[test]
    fn every_module_has_one_row_and_takes_served_templates() {
        for m in [Module::Denier, Module::ListChecker, Module::Prometheus, Module::Stdio] {
            let rows: Vec<&AdapterRow> = ADAPTERS.iter().filter(|a| a.support == Support::Served(m)).collect();
            assert_eq!(rows.len(), 1, "{m:?}");
            for t in rows[0].templates {
                let served = template(t).is_some_and(|row| matches!(row.support, Support::Served(_)));
                assert!(served, "{m:?} takes template {t}, not a compiled-in template");
            }
        }
        for a in ADAPTERS {
            if !matches!(a.support, Support::Served(_)) {
                assert!(a.templates.is_empty() && a.own_metrics.is_empty(), "{}", a.name);
            }
        }
    }

    /// Every tagged self-metric belongs to one component or adapter, in `TAGGED`'s order, so
    /// what `stats-config` and `convert` tag is what the components define.
    #[test]
    fn own_metrics_are_the_declared_self_metrics() {
        let linked: Vec<SelfMetric> =
            Component::ALL.iter().flat_map(|&c| own_metrics(c).copied()).filter(|m| !m.tags.is_empty()).collect();
        assert_eq!(linked, self_metrics::TAGGED);
        assert!(own_metrics(Component::Deny).any(|m| *m == self_metrics::POLICY_LOST));
    }

    #[test]
    fn lookups() {
        assert_eq!(module_of("listchecker"), Some(Module::ListChecker));
        assert_eq!(module_of("memquota"), None);
        assert_eq!(module_of("nosuch"), None);
        assert!(runs_in("stdio", Component::AccessLog) && !runs_in("stdio", Component::Metrics));
        assert_eq!(templates_of("stdio"), ["logentry", "metric"]);
        let names: Vec<&str> = served_adapters().map(|a| a.name).collect();
        assert_eq!(names, ["denier", "listchecker", "prometheus", "stdio"]);
        let names: Vec<&str> = served_templates().map(|t| t.name).collect();
        assert_eq!(names, ["checknothing", "listentry", "metric", "logentry"]);
    }
}
