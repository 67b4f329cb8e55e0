//! What `wasmixer convert` and `wasmixer validate` tell the user: one diagnostic per problem,
//! located by file, line and column, document, resource, field and expression position.

use std::fmt;

use serde_json::{json, Value as Json};

use wasmixer_engine::expr::excerpt;

use crate::mixer_yaml::Pos;

/// How much a diagnostic matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The configuration is wrong: nothing is written.
    Error,
    /// Something wasmixer does not implement: the rest is converted, the output is incomplete.
    Unsupported,
    /// Converted, but the user should look (a behaviour that differs, an assumption made).
    Warning,
    /// For information (ignored or superseded resources).
    Note,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Unsupported => "unsupported",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// Where a diagnostic points.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Location {
    pub file: Option<String>,
    pub pos: Option<Pos>,
    /// 1-based document number in the file.
    pub document: Option<usize>,
    /// Mixer's resource key `name.kind.namespace` (or `name.Kind.namespace` for other kinds).
    pub resource: Option<String>,
    /// The field, as a path in the document (`spec.actions[0].handler`).
    pub field: Option<String>,
    /// 1-based character position in the field's expression.
    pub position: Option<usize>,
}

/// One problem or remark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub location: Location,
    pub message: String,
    /// The expression at fault, shown with a caret under `location.position`.
    pub expression: Option<String>,
}

impl Diagnostic {
    pub fn new(severity: Severity, location: Location, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity, location, message: message.into(), expression: None }
    }

    pub fn to_json(&self) -> Json {
        let l = &self.location;
        json!({
            "severity": self.severity.name(),
            "file": l.file,
            "line": l.pos.map(|p| p.line),
            "column": l.pos.map(|p| p.col),
            "document": l.document,
            "resource": l.resource,
            "field": l.field,
            "position": l.position,
            "message": self.message,
            "expression": self.expression,
        })
    }
}

impl fmt::Display for Diagnostic {
    /// `file:line:col: severity: document N: resource: field F: position P: message`, then the
    /// expression with a caret for expression errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.location;
        if let Some(file) = &l.file {
            write!(f, "{file}:")?;
            if let Some(p) = l.pos {
                write!(f, "{}:{}:", p.line, p.col)?;
            }
            f.write_str(" ")?;
        }
        write!(f, "{}: ", self.severity.name())?;
        if let Some(d) = l.document {
            write!(f, "document {d}: ")?;
        }
        if let Some(r) = &l.resource {
            write!(f, "{r}: ")?;
        }
        if let Some(field) = &l.field {
            write!(f, "field {field}: ")?;
        }
        if let Some(p) = l.position {
            write!(f, "position {p}: ")?;
        }
        f.write_str(&self.message)?;
        if let (Some(expr), Some(p)) = (&self.expression, l.position) {
            // A window of the expression around the position: a whole million-term expression
            // (and a caret line as long) would bury the message.
            let (window, col) = excerpt(expr, p);
            write!(f, "\n    {window}\n    {}^", " ".repeat(col.saturating_sub(1)))?;
        }
        Ok(())
    }
}

/// All diagnostics of a run, in the order found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn push(&mut self, d: Diagnostic) {
        if !self.diagnostics.contains(&d) {
            self.diagnostics.push(d);
        }
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == severity).count()
    }

    pub fn has_errors(&self) -> bool {
        self.count(Severity::Error) > 0
    }

    pub fn complete(&self) -> bool {
        !self.has_errors() && self.count(Severity::Unsupported) == 0
    }

    /// Diagnostics sorted by file, position and severity (the order a user reads them).
    pub fn sorted(&self) -> Vec<&Diagnostic> {
        let mut all: Vec<&Diagnostic> = self.diagnostics.iter().collect();
        all.sort_by(|a, b| {
            (&a.location.file, a.location.document, a.location.pos, a.severity).cmp(&(
                &b.location.file,
                b.location.document,
                b.location.pos,
                b.severity,
            ))
        });
        all
    }

    /// The closing line: counts and what they mean for the output.
    pub fn summary(&self, wrote: bool) -> String {
        let (e, u, w, n) = (
            self.count(Severity::Error),
            self.count(Severity::Unsupported),
            self.count(Severity::Warning),
            self.count(Severity::Note),
        );
        let verdict = if e > 0 {
            "the configuration is invalid; nothing was written".to_string()
        } else if u > 0 {
            format!(
                "INCOMPLETE: the parts marked unsupported were not converted{}",
                if wrote { "; the rest was written" } else { "" }
            )
        } else if wrote {
            "complete: everything was converted".to_string()
        } else {
            "valid: everything can be converted".to_string()
        };
        format!("{e} error(s), {u} unsupported, {w} warning(s), {n} note(s): {verdict}")
    }
}
