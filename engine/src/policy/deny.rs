//! The check path of Mixer, evaluated locally: rules whose actions send `checknothing` /
//! `listentry` instances to `denier` / `listchecker` handlers, combined into one status the way
//! Mixer's dispatcher did (`mixer/pkg/runtime/dispatcher/session.go`), plus header operations.

use std::borrow::Cow;
use std::cell::RefCell;

use serde_json::Value as Json;

use super::header_ops::{compile_header_operations, HeaderEdit, HeaderOperation, SkippedValue};
use super::listchecker::{self, FetchedList, List, ListParams};
use super::peer_identity::IdentityGuard;
use super::status::{parse_code, Status};
use crate::config::expressions::{compile_field, compile_match};
use crate::config::registry::{self, Component, Module};
use crate::config::scope::NamespaceScope;
use crate::config::{ConfigError, ConfigErrors, FilterConfig, Snapshot};
use crate::expr::{AttrId, AttributeBag, EvalError, Manifest, Program};

const INTERNAL: i32 = 13;
const PERMISSION_DENIED: i32 = 7;

/// A handler the deny filter runs.
#[derive(Debug)]
// A configuration holds a few handlers, built once: their size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum CheckHandler {
    Denier { display_name: String, status: Status },
    List { display_name: String, params: ListParams, list: RefCell<ListSource> },
}

/// Where a listchecker's entries come from.
#[derive(Debug)]
pub enum ListSource {
    Static(List),
    Fetched(FetchedList),
}

impl CheckHandler {
    pub fn display_name(&self) -> &str {
        match self {
            CheckHandler::Denier { display_name, .. } | CheckHandler::List { display_name, .. } => display_name,
        }
    }
}

#[derive(Debug)]
enum CheckInstance {
    Nothing,
    ListEntry { fqn: String, value: Program },
}

#[derive(Debug)]
struct CheckAction {
    handler: usize,
    instances: Vec<CheckInstance>,
}

/// A compiled rule of the check path.
#[derive(Debug)]
pub struct CheckRule {
    /// Rule key, `name.rule.namespace`.
    pub label: String,
    /// `Some(ns)` when the rule is outside the config namespace and so scoped to `ns`.
    pub scope: Option<String>,
    matcher: Option<Program>,
    actions: Vec<CheckAction>,
    request_headers: Vec<HeaderOperation>,
    response_headers: Vec<HeaderOperation>,
    pub dry_run: bool,
    pub fail_closed: bool,
    /// Set when every action goes to a denier with `checknothing` instances: the rule then
    /// answers the same way every time it matches.
    fixed: Option<FixedVerdict>,
}

/// A rule's constant verdict, its body (`Status::ToString()`) built at configure time so a
/// denial costs no allocation.
#[derive(Debug, PartialEq, Eq)]
struct FixedVerdict {
    status: Status,
    body: String,
}

/// How one rule took part in a check, for per-rule counters and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleOutcome {
    Allow,
    Deny,
    Error,
    DryRunDeny,
    /// The match failed because the peer identity it reads is absent on an mTLS connection
    /// (see [`super::peer_identity`]); denied only with `deny.require_peer_identity`.
    NoIdentity,
}

impl CheckRule {
    /// Whether the rule edits responses (`responseHeaderOperations`).
    pub fn edits_responses(&self) -> bool {
        !self.response_headers.is_empty()
    }
}

impl RuleOutcome {
    pub fn name(self) -> &'static str {
        match self {
            RuleOutcome::Allow => "allow",
            RuleOutcome::Deny => "deny",
            RuleOutcome::Error => "error",
            RuleOutcome::DryRunDeny => "dry_run_deny",
            RuleOutcome::NoIdentity => "no_identity",
        }
    }
}

/// Receives what a check did, so filters can count and log without the plan allocating.
pub trait CheckObserver {
    fn rule(&mut self, rule_index: usize, rule: &CheckRule, outcome: RuleOutcome, detail: &dyn std::fmt::Display);

    /// A value of one of the rule's header operations on `header` was left out (see
    /// [`SkippedValue`]); the request goes on without it.
    fn header_value_skipped(&mut self, _rule_index: usize, _rule: &CheckRule, _header: &str, _why: &SkippedValue) {}
}

/// Everything the deny filter evaluates, compiled at configure time.
#[derive(Debug)]
pub struct DenyPlan {
    pub rules: Vec<CheckRule>,
    pub handlers: Vec<CheckHandler>,
    scope: Option<NamespaceScope>,
    identity: Option<IdentityGuard>,
    attributes: Vec<AttrId>,
}

/// The result of a check: the combined status and the header edits for an allowed request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CheckResult<'p> {
    denial: Denial<'p>,
    pub request_edits: Vec<HeaderEdit>,
    pub response_edits: Vec<HeaderEdit>,
}

impl CheckResult<'_> {
    /// Whether the request may go on.
    pub fn is_ok(&self) -> bool {
        self.code() == 0
    }

    /// The combined gRPC code (0 when allowed).
    pub fn code(&self) -> i32 {
        self.denial.fixed.map_or(self.denial.status.code, |v| v.status.code)
    }

    /// The combined status as Mixer's proxy sent it (`Status::ToString()`).
    pub fn body(&self) -> Cow<'_, str> {
        match self.denial.fixed {
            Some(v) => Cow::Borrowed(&v.body),
            None => Cow::Owned(self.denial.status.body()),
        }
    }
}

/// The denials of a check so far: one rule's constant verdict (`fixed`, while it is the only
/// denial), or a status combined from several (`status`; OK while nothing denied).
#[derive(Debug, Default, PartialEq, Eq)]
struct Denial<'p> {
    fixed: Option<&'p FixedVerdict>,
    status: Status,
}

impl<'p> Denial<'p> {
    fn is_empty(&self) -> bool {
        self.fixed.is_none() && self.status.is_ok()
    }

    /// The combined status, built from the constant verdict if that was the only denial.
    fn status_mut(&mut self) -> &mut Status {
        if let Some(v) = self.fixed.take() {
            self.status = v.status.clone();
        }
        &mut self.status
    }

    /// Adds a denying rule's status (see [`merge`]).
    fn add_rule(&mut self, rule_status: Status) {
        if self.is_empty() {
            self.status = rule_status;
        } else {
            merge(self.status_mut(), rule_status);
        }
    }

    fn add_fixed(&mut self, verdict: &'p FixedVerdict) {
        if self.is_empty() {
            self.fixed = Some(verdict);
        } else {
            merge(self.status_mut(), verdict.status.clone());
        }
    }
}

impl DenyPlan {
    /// Compiles the check rules of a configuration. Rules whose actions go only to other
    /// (telemetry) adapters are left out; any error rejects the whole configuration.
    #[inline(never)] // configure-time code: see WASM_OPT_FLAGS in the Makefile
    pub fn compile(config: &FilterConfig, manifest: &Manifest) -> Result<DenyPlan, ConfigErrors> {
        let snap = Snapshot::resolve(&config.resources, &config.default_namespace, &config.config_namespace)?;
        let mut errors = Vec::new();
        let (handlers, handler_index) = snap.compile_handlers(
            |h| registry::runs_in(&h.adapter, Component::Deny),
            |h| compile_handler(h).map_err(|e| vec![e]),
            &mut errors,
        );
        let mut rules = Vec::new();
        for r in &snap.rules {
            let has_headers =
                r.spec.get("requestHeaderOperations").is_some() || r.spec.get("responseHeaderOperations").is_some();
            let check_actions: Vec<_> = r
                .actions
                .iter()
                .filter_map(|a| handler_index.get(a.handler).copied().flatten().map(|h| (h, a)))
                .collect();
            if check_actions.is_empty() && !has_headers {
                continue;
            }
            match compile_rule(&snap, r, &check_actions, config, manifest) {
                Ok(rule) => rules.push(rule),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let scope = if rules.iter().any(|r| r.scope.is_some()) { NamespaceScope::new(manifest) } else { None };
        let mut attributes: Vec<AttrId> = Vec::new();
        for r in &rules {
            attributes.extend(r.matcher.iter().flat_map(|p| p.attributes()));
            for a in &r.actions {
                for i in &a.instances {
                    if let CheckInstance::ListEntry { value, .. } = i {
                        attributes.extend(value.attributes());
                    }
                }
            }
            for op in r.request_headers.iter().chain(&r.response_headers) {
                attributes.extend(op.values.iter().flat_map(|p| p.attributes()));
            }
        }
        if let Some(s) = &scope {
            attributes.extend(s.attributes());
        }
        let identity = IdentityGuard::new(manifest, config.deny.require_peer_identity);
        // Only the opt-in reads them (see `peer_identity`).
        if let (Some(guard), false) = (&identity, rules.is_empty()) {
            if guard.require {
                attributes.extend(guard.attributes());
            }
        }
        crate::sorting::sort_dedup(&mut attributes);
        for rule in &mut rules {
            rule.fixed = fixed_verdict(&rule.actions, &handlers);
        }
        Ok(DenyPlan { rules, handlers, scope, identity, attributes })
    }

    /// Whether checks need the wall clock (only fetched lists expire).
    pub fn needs_clock(&self) -> bool {
        self.handlers.iter().any(|h| matches!(h, CheckHandler::List { params, .. } if params.provider_url.is_some()))
    }

    /// Settles Mixer's namespace scoping for a proxy whose own workload is in `own_namespace`.
    pub fn settle_scope_for_proxy(&mut self, own_namespace: Option<&str>) {
        NamespaceScope::settle_for_proxy(&mut self.scope, own_namespace);
    }

    /// Every attribute a check may read: what a filter needs to be able to fetch.
    pub fn attributes(&self) -> &[AttrId] {
        &self.attributes
    }

    /// Runs the check for one request.
    pub fn check(&self, bag: &dyn AttributeBag, now_ns: i64, observer: &mut dyn CheckObserver) -> CheckResult<'_> {
        let mut result = CheckResult::default();
        for (index, rule) in self.rules.iter().enumerate() {
            if rule.actions.is_empty() || !self.applies(rule, bag) {
                continue;
            }
            let matched = match rule.matcher.as_ref().map(|m| m.evaluate_bool(bag)) {
                None | Some(Ok(true)) => true,
                Some(Ok(false)) => false,
                Some(Err(e)) => {
                    let missing = self.identity.as_ref().and_then(|g| g.classify(&e, bag));
                    let outcome = if missing.is_some() { RuleOutcome::NoIdentity } else { RuleOutcome::Error };
                    observer.rule(index, rule, outcome, &e);
                    if rule.dry_run {
                        continue;
                    }
                    if let Some(missing) = missing.filter(|m| m.deny) {
                        let message = format!(
                            "no verified peer identity ({}); deny.require_peer_identity is on",
                            missing.attribute
                        );
                        add_denial(
                            result.denial.status_mut(),
                            &rule.label,
                            &Status { code: PERMISSION_DENIED, message },
                        );
                    } else if rule.fail_closed {
                        add_denial(
                            result.denial.status_mut(),
                            &rule.label,
                            &Status { code: INTERNAL, message: format!("match evaluation failed: {e}") },
                        );
                    }
                    continue;
                }
            };
            if !matched {
                continue;
            }
            if let Some(verdict) = &rule.fixed {
                let outcome = rule_outcome(&verdict.status, rule.dry_run);
                observer.rule(index, rule, outcome, &verdict.status.message);
                if outcome == RuleOutcome::Deny {
                    result.denial.add_fixed(verdict);
                }
                continue;
            }
            let mut rule_status = Status::default();
            let mut failed: Option<String> = None;
            for action in &rule.actions {
                let Some(handler) = self.handlers.get(action.handler) else { continue };
                for instance in &action.instances {
                    match self.run(handler, instance, bag, now_ns) {
                        Ok(s) if s.is_ok() => {}
                        Ok(s) => add_denial(&mut rule_status, handler.display_name(), &s),
                        Err(e) => failed = Some(e),
                    }
                }
            }
            if let Some(e) = failed {
                observer.rule(index, rule, RuleOutcome::Error, &e);
                if !rule.dry_run {
                    // Mixer failed the whole Check RPC; the proxy then failed closed.
                    add_denial(
                        result.denial.status_mut(),
                        "",
                        &Status { code: INTERNAL, message: format!("performing check operation failed: {e}") },
                    );
                }
                continue;
            }
            let outcome = rule_outcome(&rule_status, rule.dry_run);
            observer.rule(index, rule, outcome, &rule_status.message);
            if outcome == RuleOutcome::Deny {
                result.denial.add_rule(rule_status);
            }
        }
        if result.is_ok() {
            self.header_edits(bag, &mut result, observer);
        }
        result
    }

    fn header_edits(&self, bag: &dyn AttributeBag, result: &mut CheckResult<'_>, observer: &mut dyn CheckObserver) {
        for (index, rule) in self.rules.iter().enumerate() {
            if rule.request_headers.is_empty() && rule.response_headers.is_empty() {
                continue;
            }
            if !self.applies(rule, bag)
                || !matches!(rule.matcher.as_ref().map(|m| m.evaluate_bool(bag)), None | Some(Ok(true)))
            {
                continue;
            }
            let mut skipped =
                |header: &str, why: SkippedValue| observer.header_value_skipped(index, rule, header, &why);
            for op in &rule.request_headers {
                op.edits(bag, &mut result.request_edits, &mut skipped);
            }
            for op in &rule.response_headers {
                op.edits(bag, &mut result.response_edits, &mut skipped);
            }
        }
    }

    fn applies(&self, rule: &CheckRule, bag: &dyn AttributeBag) -> bool {
        NamespaceScope::applies(self.scope.as_ref(), rule.scope.as_deref(), bag)
    }

    fn run<'p>(
        &self,
        handler: &'p CheckHandler,
        instance: &CheckInstance,
        bag: &dyn AttributeBag,
        now_ns: i64,
    ) -> Result<Cow<'p, Status>, String> {
        let value = match instance {
            CheckInstance::Nothing => None,
            CheckInstance::ListEntry { fqn, value } => {
                Some(value.evaluate(bag).map_err(|e: EvalError<'_>| format!("{fqn}: Value: {e}"))?)
            }
        };
        match handler {
            CheckHandler::Denier { status, .. } => Ok(Cow::Borrowed(status)),
            CheckHandler::List { params, list, display_name } => {
                let Some(value) = value else { return Ok(Cow::Owned(Status::default())) };
                let mut source = list.try_borrow_mut().map_err(|_| format!("{display_name}: list busy"))?;
                let list = match &mut *source {
                    ListSource::Static(l) => l,
                    ListSource::Fetched(f) => f.current(params, now_ns).map_err(|e| format!("{display_name}: {e}"))?,
                };
                Ok(Cow::Owned(listchecker::check(params, list, &value)))
            }
        }
    }
}

fn rule_outcome(rule_status: &Status, dry_run: bool) -> RuleOutcome {
    match (rule_status.is_ok(), dry_run) {
        (true, _) => RuleOutcome::Allow,
        (false, true) => RuleOutcome::DryRunDeny,
        (false, false) => RuleOutcome::Deny,
    }
}

/// The verdict of a rule whose every action goes to a denier with `checknothing` instances,
/// combined as [`DenyPlan::check`] would; `None` for any other rule.
fn fixed_verdict(actions: &[CheckAction], handlers: &[CheckHandler]) -> Option<FixedVerdict> {
    if actions.is_empty() {
        return None;
    }
    let mut status = Status::default();
    for action in actions {
        let Some(handler) = handlers.get(action.handler) else { continue };
        let CheckHandler::Denier { display_name, status: denial } = handler else { return None };
        for instance in &action.instances {
            if !matches!(instance, CheckInstance::Nothing) {
                return None;
            }
            if !denial.is_ok() {
                add_denial(&mut status, display_name, denial);
            }
        }
    }
    let body = status.body();
    Some(FixedVerdict { status, body })
}

/// Adds one handler's denial: the first code wins, every message is kept, joined by ", ".
fn add_denial(status: &mut Status, handler: &str, denial: &Status) {
    status.message.reserve(2 + handler.len() + 1 + denial.message.len());
    if status.is_ok() {
        status.code = denial.code;
    } else {
        status.message.push_str(", ");
    }
    if !handler.is_empty() {
        status.message.push_str(handler);
        status.message.push(':');
    }
    status.message.push_str(&denial.message);
}

fn merge(status: &mut Status, rule_status: Status) {
    if status.is_ok() {
        *status = rule_status;
    } else {
        status.message.push_str(", ");
        status.message.push_str(&rule_status.message);
    }
}

fn compile_handler(h: &crate::config::Handler) -> Result<CheckHandler, ConfigError> {
    let label = h.label();
    match registry::module_of(&h.adapter) {
        Some(Module::Denier) => {
            // Mixer merged params over the defaults: code 9 FAILED_PRECONDITION, empty message.
            let status = h.params.get("status");
            let code = match status.and_then(|s| s.get("code")) {
                None | Some(Json::Null) => 9,
                Some(c) => parse_code(c).ok_or_else(|| {
                    ConfigError::new(
                        &label,
                        "params.status.code",
                        format!("not a gRPC status code (0..16 or its name): {}", crate::config::json_text(c)),
                    )
                })?,
            };
            let message = status.and_then(|s| s.get("message")).and_then(Json::as_str).unwrap_or("").to_string();
            Ok(CheckHandler::Denier { display_name: h.display_name.clone(), status: Status { code, message } })
        }
        Some(Module::ListChecker) => {
            let params = ListParams::from_json(&h.params).map_err(|e| ConfigError::new(&label, "params", e))?;
            let source = if params.provider_url.is_some() {
                ListSource::Fetched(FetchedList::default())
            } else {
                ListSource::Static(
                    List::build(params.entry_type, params.overrides.iter().map(String::as_str))
                        .map_err(|e| ConfigError::new(&label, "params.overrides", e))?,
                )
            };
            Ok(CheckHandler::List { display_name: h.display_name.clone(), params, list: RefCell::new(source) })
        }
        // Only the deny component's modules get here (see `DenyPlan::compile`).
        _ => Err(ConfigError::new(&label, "compiledAdapter", format!("adapter {} is not a check adapter", h.adapter))),
    }
}

fn compile_rule(
    snap: &Snapshot,
    r: &crate::config::Rule,
    check_actions: &[(usize, &crate::config::Action)],
    config: &FilterConfig,
    manifest: &Manifest,
) -> Result<CheckRule, ConfigError> {
    let matcher = compile_match(&r.label, &r.match_source, manifest)?;
    let mut actions = Vec::new();
    for (handler, action) in check_actions {
        let mut instances = Vec::new();
        for &i in &action.instances {
            let Some(inst) = snap.instances.get(i) else { continue };
            let accepted = snap.handlers.get(action.handler).map_or(&[][..], |h| registry::templates_of(&h.adapter));
            let wrong_template = || {
                ConfigError::new(
                    &r.label,
                    "actions",
                    format!(
                        "instance {} of template {} cannot be sent to a check handler (use {})",
                        inst.fqn,
                        inst.template,
                        accepted.join(" or ")
                    ),
                )
            };
            if !accepted.contains(&inst.template.as_str()) {
                return Err(wrong_template());
            }
            instances.push(match inst.template.as_str() {
                "checknothing" => CheckInstance::Nothing,
                "listentry" => {
                    let src = inst.params.get("value").and_then(Json::as_str).unwrap_or("");
                    if src.trim().is_empty() {
                        return Err(ConfigError::new(
                            inst.label(),
                            "params.value",
                            "a listentry instance needs a value expression",
                        ));
                    }
                    CheckInstance::ListEntry {
                        fqn: inst.fqn.clone(),
                        value: compile_field(&inst.label(), "params.value", src, None, manifest)?,
                    }
                }
                // A template the registry lists for the handler but this module cannot compile.
                _ => return Err(wrong_template()),
            });
        }
        actions.push(CheckAction { handler: *handler, instances });
    }
    let flag = |name: &str| r.spec.get(name).and_then(Json::as_bool).unwrap_or(false);
    Ok(CheckRule {
        label: r.label.clone(),
        scope: NamespaceScope::of_rule(&r.namespace, &snap.config_namespace),
        matcher,
        actions,
        request_headers: compile_header_operations(
            &r.label,
            "requestHeaderOperations",
            r.spec.get("requestHeaderOperations"),
            manifest,
        )?,
        response_headers: compile_header_operations(
            &r.label,
            "responseHeaderOperations",
            r.spec.get("responseHeaderOperations"),
            manifest,
        )?,
        dry_run: flag("dry_run") || flag("dryRun"),
        fail_closed: flag("fail_closed") || flag("failClosed") || config.deny.fail_closed,
        fixed: None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::expr::{MapBag, StringMap, Value};
    use std::borrow::Cow;

    /// Rule outcomes, and `rule header: why` for every skipped header value.
    struct Recorder(Vec<(String, RuleOutcome)>, Vec<String>);

    impl CheckObserver for Recorder {
        fn rule(&mut self, _: usize, rule: &CheckRule, outcome: RuleOutcome, _: &dyn std::fmt::Display) {
            self.0.push((rule.label.clone(), outcome));
        }

        fn header_value_skipped(&mut self, _: usize, rule: &CheckRule, header: &str, why: &SkippedValue) {
            self.1.push(format!("{} {header}: {why}", rule.label));
        }
    }

    /// The templates a check handler takes come from the registry.
    #[test]
    fn a_wrong_template_names_what_check_handlers_take() {
        let e = plan(
            r#"{"resources": [
          {"kind": "handler", "metadata": {"name": "h"}, "spec": {"compiledAdapter": "listchecker", "params": {"overrides": ["a"]}}},
          {"kind": "instance", "metadata": {"name": "i"}, "spec": {"compiledTemplate": "metric", "params": {"value": "1"}}},
          {"kind": "rule", "metadata": {"name": "r"}, "spec": {"actions": [{"handler": "h", "instances": ["i"]}]}}
        ]}"#,
        )
        .unwrap_err();
        assert_eq!(e, "r.rule.default: field actions: instance i.instance.default of template metric cannot be sent to a check handler (use checknothing or listentry)");
    }

    fn plan(json: &str) -> Result<DenyPlan, String> {
        let config = FilterConfig::parse(json.as_bytes()).map_err(|e| e.to_string())?;
        DenyPlan::compile(&config, Manifest::istio()).map_err(|e| e.to_string())
    }

    fn labels(pairs: &[(&str, &str)]) -> Value<'static> {
        Value::StringMap(Cow::Owned(StringMap::from_pairs(pairs.iter().copied())))
    }

    fn s(v: &str) -> Value<'static> {
        Value::String(Cow::Owned(v.to_string()))
    }

    fn bag(attrs: &[(&str, Value<'static>)]) -> MapBag {
        let m = Manifest::istio();
        let mut b = MapBag::new(m);
        for (n, v) in attrs {
            b.set(m, n, v.clone()).unwrap();
        }
        b
    }

    fn run<'p>(p: &'p DenyPlan, attrs: &[(&str, Value<'static>)]) -> (CheckResult<'p>, Vec<(String, RuleOutcome)>) {
        let mut rec = Recorder(Vec::new(), Vec::new());
        let r = p.check(&bag(attrs), 0, &mut rec);
        (r, rec.0)
    }

    const SEED: &str = r#"{"resources": [
      {"kind": "handler", "metadata": {"name": "denyreviewsv3handler"}, "spec": {"compiledAdapter": "denier", "params": {"status": {"code": 7, "message": "Not allowed"}}}},
      {"kind": "instance", "metadata": {"name": "denyreviewsv3request"}, "spec": {"compiledTemplate": "checknothing"}},
      {"kind": "rule", "metadata": {"name": "denyreviewsv3"}, "spec": {
        "match": "destination.labels[\"app\"] == \"ratings\" && source.labels[\"app\"]==\"reviews\" && source.labels[\"version\"] == \"v3\"",
        "actions": [{"handler": "denyreviewsv3handler", "instances": ["denyreviewsv3request"]}]}}
    ]}"#;

    fn seed_request(version: &str) -> Vec<(&'static str, Value<'static>)> {
        vec![
            ("context.reporter.kind", s("inbound")),
            ("destination.namespace", s("default")),
            ("destination.labels", labels(&[("app", "ratings")])),
            ("source.labels", labels(&[("app", "reviews"), ("version", if version == "v3" { "v3" } else { "v2" })])),
        ]
    }

    #[test]
    fn seed_scenario_denies_reviews_v3_only() {
        let p = plan(SEED).unwrap();
        let (r, outcomes) = run(&p, &seed_request("v3"));
        assert_eq!(r.code(), 7);
        assert_eq!(r.body(), "PERMISSION_DENIED:denyreviewsv3handler.default:Not allowed");
        assert_eq!(outcomes, [("denyreviewsv3.rule.default".to_string(), RuleOutcome::Deny)]);
        let (r, _) = run(&p, &seed_request("v2"));
        assert!(r.is_ok());
    }

    #[test]
    fn match_errors_do_not_match_unless_fail_closed() {
        let p = plan(SEED).unwrap();
        // No identity at all: lookup errors, the rule does not match, the request is allowed;
        // the error is a missing peer identity (`source.labels`), counted as such.
        let (r, outcomes) =
            run(&p, &[("context.reporter.kind", s("inbound")), ("destination.namespace", s("default"))]);
        assert!(r.is_ok());
        assert_eq!(outcomes, [("denyreviewsv3.rule.default".to_string(), RuleOutcome::NoIdentity)]);
        let closed = SEED.replacen("{\"resources\"", "{\"deny\": {\"fail_closed\": true}, \"resources\"", 1);
        let p = plan(&closed).unwrap();
        let (r, _) = run(&p, &[("context.reporter.kind", s("inbound")), ("destination.namespace", s("default"))]);
        assert_eq!(r.code(), 13);
        assert!(
            r.body().starts_with("INTERNAL:denyreviewsv3.rule.default:match evaluation failed: lookup failed: "),
            "{}",
            r.body()
        );
    }

    #[test]
    fn namespace_scoping() {
        let p = plan(SEED).unwrap();
        let mut req = seed_request("v3");
        req[1] = ("destination.namespace", s("other"));
        let (r, outcomes) = run(&p, &req);
        assert!(r.is_ok());
        assert!(outcomes.is_empty(), "a rule of namespace default does not apply to namespace other");
        // Outbound: the identity namespace is the source's.
        req[0] = ("context.reporter.kind", s("outbound"));
        req.push(("source.namespace", s("default")));
        let (r, _) = run(&p, &req);
        assert_eq!(r.code(), 7);
        // Rules in the config namespace apply everywhere.
        let global = SEED
            .replace(
                "\"metadata\": {\"name\": \"denyreviewsv3\"}",
                "\"metadata\": {\"name\": \"denyreviewsv3\", \"namespace\": \"istio-system\"}",
            )
            .replace("\"handler\": \"denyreviewsv3handler\"", "\"handler\": \"denyreviewsv3handler.default\"")
            .replace("[\"denyreviewsv3request\"]", "[\"denyreviewsv3request.instance.default\"]");
        let p = plan(&global).unwrap();
        let mut req = seed_request("v3");
        req[1] = ("destination.namespace", s("elsewhere"));
        assert_eq!(run(&p, &req).0.code(), 7);
    }

    #[test]
    fn a_proxy_settles_scoping_with_its_own_namespace() {
        // A proxy's identity namespace is its own workload's, so the request's attributes
        // (here claiming namespace "other" and an outbound reporter) no longer matter.
        let mut req = seed_request("v3");
        req[1] = ("destination.namespace", s("other"));
        let mut p = plan(SEED).unwrap();
        p.settle_scope_for_proxy(Some("default"));
        assert_eq!(run(&p, &req).0.code(), 7, "a ratings proxy in namespace default applies the rule");
        for own in [Some("other"), None] {
            let mut p = plan(SEED).unwrap();
            p.settle_scope_for_proxy(own);
            let (r, outcomes) = run(&p, &seed_request("v3"));
            assert!(r.is_ok() && outcomes.is_empty(), "a proxy in {own:?} skips a rule of namespace default");
        }
    }

    #[test]
    fn denials_combine_first_code_all_messages() {
        let p = plan(r#"{"resources": [
          {"kind": "handler", "metadata": {"name": "a", "namespace": "istio-system"}, "spec": {"compiledAdapter": "denier", "params": {"status": {"code": 8, "message": "slow down"}}}},
          {"kind": "handler", "metadata": {"name": "b", "namespace": "istio-system"}, "spec": {"compiledAdapter": "denier"}},
          {"kind": "instance", "metadata": {"name": "i", "namespace": "istio-system"}, "spec": {"compiledTemplate": "checknothing"}},
          {"kind": "rule", "metadata": {"name": "r1", "namespace": "istio-system"}, "spec": {"actions": [{"handler": "a", "instances": ["i"]}]}},
          {"kind": "rule", "metadata": {"name": "r2", "namespace": "istio-system"}, "spec": {"match": "true", "actions": [{"handler": "b", "instances": ["i"]}]}}
        ]}"#).unwrap();
        let (r, _) = run(&p, &[]);
        assert_eq!(r.code(), 8);
        assert_eq!(r.body(), "RESOURCE_EXHAUSTED:a.istio-system:slow down, b.istio-system:");
    }

    #[test]
    fn constant_and_evaluated_denials_combine_alike() {
        // r1 goes to a listchecker (evaluated per request), r2 to two deniers (its verdict is
        // built at configure time), r3 to a denier answering OK, r4 is a dry run.
        let p = plan(r#"{"resources": [
          {"kind": "handler", "metadata": {"name": "allowed", "namespace": "istio-system"}, "spec": {"compiledAdapter": "listchecker", "params": {"overrides": ["v1"], "blacklist": false}}},
          {"kind": "handler", "metadata": {"name": "a", "namespace": "istio-system"}, "spec": {"compiledAdapter": "denier", "params": {"status": {"code": 8, "message": "slow down"}}}},
          {"kind": "handler", "metadata": {"name": "b", "namespace": "istio-system"}, "spec": {"compiledAdapter": "denier", "params": {"status": {"code": 16}}}},
          {"kind": "handler", "metadata": {"name": "ok", "namespace": "istio-system"}, "spec": {"compiledAdapter": "denier", "params": {"status": {"code": 0, "message": "fine"}}}},
          {"kind": "instance", "metadata": {"name": "version", "namespace": "istio-system"}, "spec": {"compiledTemplate": "listentry", "params": {"value": "source.labels[\"version\"]"}}},
          {"kind": "instance", "metadata": {"name": "i", "namespace": "istio-system"}, "spec": {"compiledTemplate": "checknothing"}},
          {"kind": "rule", "metadata": {"name": "r1", "namespace": "istio-system"}, "spec": {"actions": [{"handler": "allowed", "instances": ["version"]}]}},
          {"kind": "rule", "metadata": {"name": "r2", "namespace": "istio-system"}, "spec": {"actions": [{"handler": "a", "instances": ["i"]}, {"handler": "b", "instances": ["i"]}]}},
          {"kind": "rule", "metadata": {"name": "r3", "namespace": "istio-system"}, "spec": {"actions": [{"handler": "ok", "instances": ["i"]}]}},
          {"kind": "rule", "metadata": {"name": "r4", "namespace": "istio-system"}, "spec": {"dry_run": true, "actions": [{"handler": "b", "instances": ["i"]}]}}
        ]}"#).unwrap();
        let v3 = [("source.labels", labels(&[("version", "v3")]))];
        let (r, outcomes) = run(&p, &v3);
        assert_eq!(r.code(), 7);
        assert_eq!(
            r.body(),
            "PERMISSION_DENIED:allowed.istio-system:v3 is not whitelisted, a.istio-system:slow down, b.istio-system:"
        );
        let outcomes: Vec<RuleOutcome> = outcomes.into_iter().map(|(_, o)| o).collect();
        assert_eq!(outcomes, [RuleOutcome::Deny, RuleOutcome::Deny, RuleOutcome::Allow, RuleOutcome::DryRunDeny]);
        // Without the evaluated denial, the constant one is the whole answer.
        let (r, _) = run(&p, &[("source.labels", labels(&[("version", "v1")]))]);
        assert_eq!(
            (r.code(), r.body().into_owned()),
            (8, "RESOURCE_EXHAUSTED:a.istio-system:slow down, b.istio-system:".into())
        );
    }

    #[test]
    fn default_denier_and_legacy_names() {
        let p = plan(r#"{"resources": [
          {"kind": "denier", "metadata": {"name": "d", "namespace": "ns"}, "spec": {}},
          {"kind": "checknothing", "metadata": {"name": "i", "namespace": "ns"}, "spec": {}},
          {"kind": "rule", "metadata": {"name": "r", "namespace": "istio-system"}, "spec": {"actions": [{"handler": "d.denier.ns", "instances": ["i.checknothing.ns"]}]}}
        ]}"#).unwrap();
        let (r, _) = run(&p, &[]);
        assert_eq!((http_status_of(&r), r.body().into_owned()), (400, "FAILED_PRECONDITION:d.denier.ns:".to_string()));
    }

    fn http_status_of(r: &CheckResult) -> u32 {
        super::super::status::http_status(r.code())
    }

    #[test]
    fn listentry_whitelist_and_value_errors() {
        let p = plan(r#"{"resources": [
          {"kind": "handler", "metadata": {"name": "whitelist", "namespace": "istio-system"}, "spec": {"compiledAdapter": "listchecker", "params": {"overrides": ["v1", "v2"], "blacklist": false}}},
          {"kind": "instance", "metadata": {"name": "appversion", "namespace": "istio-system"}, "spec": {"compiledTemplate": "listentry", "params": {"value": "source.labels[\"version\"]"}}},
          {"kind": "rule", "metadata": {"name": "checkversion", "namespace": "istio-system"}, "spec": {"match": "destination.labels[\"app\"] == \"ratings\"", "actions": [{"handler": "whitelist", "instances": ["appversion"]}]}}
        ]}"#).unwrap();
        let ratings = ("destination.labels", labels(&[("app", "ratings")]));
        let (r, _) = run(&p, &[ratings.clone(), ("source.labels", labels(&[("version", "v3")]))]);
        assert_eq!(r.body(), "PERMISSION_DENIED:whitelist.istio-system:v3 is not whitelisted");
        assert!(run(&p, &[ratings.clone(), ("source.labels", labels(&[("version", "v1")]))]).0.is_ok());
        // The instance cannot be built: Mixer failed the check (INTERNAL, the proxy failed closed).
        let (r, outcomes) = run(&p, &[ratings]);
        assert_eq!(r.code(), 13);
        assert!(r.body().starts_with("INTERNAL:performing check operation failed: appversion.instance.istio-system: Value: lookup failed: 'source.labels'"), "{}", r.body());
        assert_eq!(outcomes[0].1, RuleOutcome::Error);
    }

    #[test]
    fn dry_run_counts_but_allows() {
        let p =
            plan(&SEED.replace("\"spec\": {\n        \"match\"", "\"spec\": {\"dry_run\": true,\n        \"match\""))
                .unwrap();
        let (r, outcomes) = run(&p, &seed_request("v3"));
        assert!(r.is_ok());
        assert_eq!(outcomes[0].1, RuleOutcome::DryRunDeny);
    }

    #[test]
    fn header_operations_for_allowed_requests() {
        let p = plan(r#"{"resources": [
          {"kind": "rule", "metadata": {"name": "h", "namespace": "istio-system"}, "spec": {
            "match": "request.method == \"GET\"",
            "requestHeaderOperations": [
              {"name": "x-user", "values": ["source.labels[\"app\"] | \"unknown\"", "\"\"", "request.headers[\"nope\"]"]},
              {"name": "x-extra", "values": ["\"a\"", "\"b\""], "operation": "APPEND"},
              {"name": "x-drop", "values": ["\"ignored\""], "operation": "REMOVE"}],
            "responseHeaderOperations": [{"name": "X-Served-By", "values": ["destination.workload.name | \"?\""]}]}}
        ]}"#).unwrap();
        let (r, _) = run(&p, &[("request.method", s("GET")), ("request.headers", labels(&[]))]);
        assert!(r.is_ok());
        assert_eq!(
            r.request_edits,
            [
                HeaderEdit::Replace("x-user".into(), "unknown".into()),
                HeaderEdit::Append("x-extra".into(), "a".into()),
                HeaderEdit::Append("x-extra".into(), "b".into()),
                HeaderEdit::Remove("x-drop".into()),
            ]
        );
        assert_eq!(r.response_edits, [HeaderEdit::Replace("x-served-by".into(), "?".into())]);
        let (r, _) = run(&p, &[("request.method", s("POST"))]);
        assert!(r.request_edits.is_empty());
    }

    #[test]
    fn header_values_no_header_can_carry_are_skipped_and_reported() {
        let p = plan(
            r#"{"resources": [
          {"kind": "rule", "metadata": {"name": "h", "namespace": "istio-system"}, "spec": {
            "requestHeaderOperations": [
              {"name": "x-user", "values": ["\"a\\r\\nx-injected: 1\"", "\"tab\\tand é\"", "request.path"]}],
            "responseHeaderOperations": [{"name": "x-nul", "values": ["\"a\\x00b\"", "\"a\\x7fb\""]}]}}
        ]}"#,
        )
        .unwrap();
        let mut rec = Recorder(Vec::new(), Vec::new());
        let r = p.check(&bag(&[("request.headers", labels(&[]))]), 0, &mut rec);
        assert!(r.is_ok(), "a skipped value never denies");
        assert_eq!(r.request_edits, [HeaderEdit::Replace("x-user".into(), "tab\tand é".into())]);
        assert!(r.response_edits.is_empty());
        assert_eq!(
            rec.1,
            [
                "h.rule.istio-system x-user: the value has a control character no HTTP header can carry",
                "h.rule.istio-system x-user: evaluation failed: lookup failed: 'request.path'",
                "h.rule.istio-system x-nul: the value has a control character no HTTP header can carry",
                "h.rule.istio-system x-nul: the value has a control character no HTTP header can carry",
            ]
        );
    }

    #[test]
    fn header_names_envoy_would_refuse_are_configuration_errors() {
        for bad in ["x user", "x-user:", "", ":", "x\\u00e9"] {
            let doc = format!(
                r#"{{"resources": [{{"kind": "rule", "metadata": {{"name": "r"}}, "spec": {{"requestHeaderOperations": [{{"name": "{bad}", "values": ["\"v\""]}}]}}}}]}}"#
            );
            let e = plan(&doc).unwrap_err();
            assert!(e.starts_with("r.rule.default: field requestHeaderOperations[0].name: "), "{bad:?}: {e}");
        }
        let doc = r#"{"resources": [{"kind": "rule", "metadata": {"name": "r"}, "spec": {"requestHeaderOperations": [{"name": "x user", "values": ["\"v\""]}]}}]}"#;
        assert_eq!(
            plan(doc).unwrap_err(),
            r#"r.rule.default: field requestHeaderOperations[0].name: "x user" is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~, after an optional ':')"#
        );
        assert!(plan(r#"{"resources": [{"kind": "rule", "metadata": {"name": "r"}, "spec": {"requestHeaderOperations": [{"name": ":path", "values": ["\"/v2\""]}, {"name": "X-B3-TraceId", "operation": "REMOVE"}]}}]}"#).is_ok());
    }

    #[test]
    fn configuration_errors_name_resource_field_and_position() {
        let e =
            plan(&SEED.replace(
                "source.labels[\\\"version\\\"] == \\\"v3\\\"",
                "source.labelz[\\\"version\\\"] == \\\"v3\\\"",
            ))
            .unwrap_err();
        assert!(
            e.starts_with("denyreviewsv3.rule.default: field match: position 78: unknown attribute source.labelz"),
            "{e}"
        );
        let e = plan(r#"{"resources": [{"kind": "handler", "metadata": {"name": "d"}, "spec": {"compiledAdapter": "denier", "params": {"status": {"code": 77}}}}]}"#).unwrap_err();
        assert_eq!(e, "d.handler.default: field params.status.code: not a gRPC status code (0..16 or its name): 77");
        let e = plan(r#"{"resources": [{"kind": "rule", "metadata": {"name": "r"}, "spec": {"requestHeaderOperations": [{"name": "x", "values": ["request.size"]}]}}]}"#).unwrap_err();
        assert_eq!(e, "r.rule.default: field requestHeaderOperations[0].values[0]: header operation value expression is not of string type");
    }

    #[test]
    fn only_referenced_attributes_are_announced() {
        let p = plan(SEED).unwrap();
        let m = Manifest::istio();
        let names: Vec<&str> = p.attributes().iter().map(|id| m.name(*id)).collect();
        assert_eq!(
            names,
            [
                "source.labels",
                "source.namespace",
                "destination.labels",
                "destination.namespace",
                "context.reporter.kind"
            ]
        );
    }
}
