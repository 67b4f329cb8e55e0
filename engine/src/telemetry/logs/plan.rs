//! Mixer's report path for the stdio adapter, evaluated in the proxy: rules whose actions send
//! `logentry` (or `metric`) instances to `stdio` handlers, compiled once, rendered per request
//! into exactly the lines the stdio adapter wrote (istio/istio 1.5 `mixer/adapter/stdio`,
//! reference `mixer-adapters.md` §5).
//!
//! Rendering streams straight into one caller-owned buffer: variables are sorted and their JSON
//! keys escaped at configure time, each value is encoded as it is evaluated, and an instance
//! whose field fails is cut back out of the buffer (Mixer dropped such instances). Nothing is
//! allocated per request beyond what the attribute bag itself fetches.
//!
//! Here: the plan and its compilation; the stdio handler in [`super::handler`], instances in
//! [`super::instance`], the per-request rendering in [`super::render`].

use super::handler::{compile_handler, StdioHandler};
use super::instance::{compile_instance, LogInstance};
use crate::config::expressions::compile_match;
use crate::config::registry;
use crate::config::scope::NamespaceScope;
use crate::config::{ConfigError, ConfigErrors, FilterConfig, Snapshot};
use crate::expr::{AttrId, Manifest, Program};

#[derive(Debug)]
pub(super) struct LogAction {
    pub(super) handler: usize,
    pub(super) instances: Vec<usize>,
}

/// A compiled rule of the report path (only its actions to stdio handlers).
#[derive(Debug)]
pub struct LogRule {
    /// `name.rule.namespace`.
    pub label: String,
    /// `Some(ns)` when the rule is outside the config namespace and so scoped to `ns`.
    pub scope: Option<String>,
    pub(super) matcher: Option<Program>,
    pub(super) actions: Vec<LogAction>,
}

/// Everything the access-log filter evaluates, compiled at configure time.
#[derive(Debug)]
pub struct LogPlan {
    pub rules: Vec<LogRule>,
    pub handlers: Vec<StdioHandler>,
    pub instances: Vec<LogInstance>,
    pub(super) scope: Option<NamespaceScope>,
    pub(super) attributes: Vec<AttrId>,
}

impl LogPlan {
    /// Compiles the rules of `config` that send instances to stdio handlers. Rules and handlers
    /// of other adapters are left to the other filters; any error rejects the configuration.
    #[inline(never)] // configure-time code: see WASM_OPT_FLAGS in the Makefile
    pub fn compile(config: &FilterConfig, manifest: &Manifest) -> Result<LogPlan, ConfigErrors> {
        let snap = Snapshot::resolve(&config.resources, &config.default_namespace, &config.config_namespace)?;
        let mut errors = Vec::new();
        let (handlers, handler_index) = snap.compile_handlers(
            |h| registry::module_of(&h.adapter) == Some(registry::Module::Stdio),
            compile_handler,
            &mut errors,
        );
        let mut instances: Vec<LogInstance> = Vec::new();
        let mut instance_index: Vec<Option<usize>> = vec![None; snap.instances.len()];
        let mut rules = Vec::new();
        for r in &snap.rules {
            let mut actions = Vec::new();
            let mut rule_errors = Vec::new();
            for a in &r.actions {
                let Some(handler) = handler_index.get(a.handler).copied().flatten() else {
                    continue;
                };
                let mut list = Vec::new();
                for &si in &a.instances {
                    let Some(inst) = snap.instances.get(si) else {
                        continue;
                    };
                    if let Some(Some(done)) = instance_index.get(si) {
                        list.push(*done);
                        continue;
                    }
                    let accepted = snap.handlers.get(a.handler).map_or(&[][..], |h| registry::templates_of(&h.adapter));
                    if !accepted.contains(&inst.template.as_str()) {
                        rule_errors.push(ConfigError::new(
                            &r.label,
                            "actions",
                            format!(
                                "instance {} of template {} cannot be sent to a stdio handler (use {})",
                                inst.fqn,
                                inst.template,
                                accepted.join(" or ")
                            ),
                        ));
                        continue;
                    }
                    match compile_instance(inst, manifest) {
                        Ok(li) => {
                            if let Some(slot) = instance_index.get_mut(si) {
                                *slot = Some(instances.len());
                            }
                            list.push(instances.len());
                            instances.push(li);
                        }
                        Err(mut e) => {
                            // Compile each failing instance's errors once.
                            if let Some(slot) = instance_index.get_mut(si) {
                                *slot = Some(usize::MAX);
                            }
                            rule_errors.append(&mut e);
                        }
                    }
                }
                actions.push(LogAction { handler, instances: list });
            }
            if actions.is_empty() {
                continue;
            }
            let matcher = match compile_match(&r.label, &r.match_source, manifest) {
                Ok(m) => m,
                Err(e) => {
                    rule_errors.push(e);
                    None
                }
            };
            if !rule_errors.is_empty() {
                errors.append(&mut rule_errors);
                continue;
            }
            rules.push(LogRule {
                label: r.label.clone(),
                scope: NamespaceScope::of_rule(&r.namespace, &snap.config_namespace),
                matcher,
                actions,
            });
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let scope = if rules.iter().any(|r| r.scope.is_some()) { NamespaceScope::new(manifest) } else { None };
        let mut attributes: Vec<AttrId> = Vec::new();
        for r in &rules {
            attributes.extend(r.matcher.iter().flat_map(|p| p.attributes()));
        }
        for i in &instances {
            for p in i.programs() {
                attributes.extend(p.attributes());
            }
        }
        if let Some(s) = &scope {
            attributes.extend(s.attributes());
        }
        crate::sorting::sort_dedup(&mut attributes);
        Ok(LogPlan { rules, handlers, instances, scope, attributes })
    }

    /// Settles Mixer's namespace scoping for a proxy whose own workload is in `own_namespace`.
    pub fn settle_scope_for_proxy(&mut self, own_namespace: Option<&str>) {
        NamespaceScope::settle_for_proxy(&mut self.scope, own_namespace);
    }

    /// Every attribute rendering may read: what a filter needs to be able to fetch.
    pub fn attributes(&self) -> &[AttrId] {
        &self.attributes
    }

    /// True when no rule sends anything to a stdio handler.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::telemetry::logs::test_support::*;

    /// The templates a stdio handler takes come from the registry.
    #[test]
    fn a_wrong_template_names_what_stdio_takes() {
        let e = plan(&SEED.replace("\"compiledTemplate\": \"logentry\"", "\"compiledTemplate\": \"listentry\""))
            .unwrap_err();
        assert!(e.contains("instance newlog.instance.istio-system of template listentry cannot be sent to a stdio handler (use logentry or metric)"), "{e}");
    }

    #[test]
    fn other_adapters_are_left_alone() {
        let p = plan(r#"{"resources": [
          {"kind": "handler", "metadata": {"name": "d", "namespace": "istio-system"}, "spec": {"compiledAdapter": "denier"}},
          {"kind": "instance", "metadata": {"name": "c", "namespace": "istio-system"}, "spec": {"compiledTemplate": "checknothing"}},
          {"kind": "rule", "metadata": {"name": "r", "namespace": "istio-system"}, "spec": {"match": "source.nam == \"x\"", "actions": [{"handler": "d", "instances": ["c"]}]}}
        ]}"#)
        .unwrap();
        assert!(p.is_empty());
        assert!(p.attributes().is_empty());
    }

    #[test]
    fn legacy_kinds() {
        let p = plan(r#"{"resources": [
          {"kind": "logentry", "metadata": {"name": "accesslog", "namespace": "istio-system"}, "spec": {"severity": "\"Info\"", "variables": {"a": "\"b\""}}},
          {"kind": "stdio", "metadata": {"name": "handler", "namespace": "istio-system"}, "spec": {"outputAsJson": true}},
          {"kind": "rule", "metadata": {"name": "stdio", "namespace": "istio-system"}, "spec": {"actions": [{"handler": "handler.stdio", "instances": ["accesslog.logentry"]}]}}
        ]}"#)
        .unwrap();
        assert_eq!(p.handlers[0].display_name, "handler.stdio.istio-system");
        let c = render(&p, &[]);
        assert_eq!(
            c.lines[0].2,
            r#"{"level":"info","time":"0001-01-01T00:00:00.000000Z","instance":"accesslog.logentry.istio-system","a":"b"}"#
        );
    }

    #[test]
    fn attributes_are_only_those_referenced() {
        let p = plan(SEED).unwrap();
        let m = Manifest::istio();
        let mut names: Vec<&str> = p.attributes().iter().map(|id| m.name(*id)).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "destination.labels",
                "destination.workload.name",
                "request.time",
                "response.code",
                "response.duration",
                "response.size",
                "source.labels",
                "source.user",
                "source.workload.name"
            ]
        );
    }
}
