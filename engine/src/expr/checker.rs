//! Type checking of calls against the function table; mirrors `Function.EvalType` in
//! `mixer/pkg/lang/ast/expr.go` and the signatures of `ast/func.go` and `lang/externs.go`.

use super::ast::Expr;
use super::error::CompileError;
use super::ValueType::{self, *};

/// A function's signature. `None` in an argument or return slot is Mixer's generic
/// VALUE_TYPE_UNSPECIFIED: the first such operand fixes T, the others must equal it.
pub struct Signature {
    pub name: &'static str,
    pub instance: bool,
    pub target: Option<ValueType>,
    pub args: &'static [Option<ValueType>],
    pub ret: Option<ValueType>,
}

const fn sig(name: &'static str, args: &'static [Option<ValueType>], ret: Option<ValueType>) -> Signature {
    Signature { name, instance: false, target: None, args, ret }
}

const fn method(
    name: &'static str,
    target: ValueType,
    args: &'static [Option<ValueType>],
    ret: ValueType,
) -> Signature {
    Signature { name, instance: true, target: Some(target), args, ret: Some(ret) }
}

const T: Option<ValueType> = None;

/// The intrinsics and standard functions of CEXL. Anything else is `unknown function`.
pub const FUNCTIONS: &[Signature] = &[
    sig("EQ", &[T, T], Some(Bool)),
    sig("NEQ", &[T, T], Some(Bool)),
    sig("LT", &[T, T], Some(Bool)),
    sig("LEQ", &[T, T], Some(Bool)),
    sig("GT", &[T, T], Some(Bool)),
    sig("GEQ", &[T, T], Some(Bool)),
    sig("LAND", &[Some(Bool), Some(Bool)], Some(Bool)),
    sig("LOR", &[Some(Bool), Some(Bool)], Some(Bool)),
    sig("OR", &[T, T], T),
    sig("ADD", &[T, T], T),
    sig("INDEX", &[Some(StringMap), Some(String)], Some(String)),
    sig("conditional", &[Some(Bool), T, T], T),
    sig("size", &[Some(String)], Some(Int64)),
    sig("match", &[Some(String), Some(String)], Some(Bool)),
    method("matches", String, &[Some(String)], Bool),
    method("startsWith", String, &[Some(String)], Bool),
    method("endsWith", String, &[Some(String)], Bool),
    sig("ip", &[Some(String)], Some(IpAddress)),
    sig("timestamp", &[Some(String)], Some(Timestamp)),
    sig("dnsName", &[Some(String)], Some(DnsName)),
    sig("email", &[Some(String)], Some(EmailAddress)),
    sig("uri", &[Some(String)], Some(Uri)),
    sig("emptyStringMap", &[], Some(StringMap)),
    sig("toLower", &[Some(String)], Some(String)),
    sig("conditionalString", &[Some(Bool), Some(String), Some(String)], Some(String)),
];

/// Looks a function up by name.
pub fn lookup(name: &str) -> Option<&'static Signature> {
    FUNCTIONS.iter().find(|s| s.name == name)
}

/// Checks a call's shape before its arguments are typed: known name, instance-ness, target
/// type, arity. Returns the generic type fixed by the target, if any.
pub fn check_call_shape(
    call: &Expr,
    name: &str,
    target_type: Option<ValueType>,
    n_args: usize,
) -> Result<&'static Signature, CompileError> {
    let pos = call.pos;
    let sig = lookup(name).ok_or_else(|| CompileError::at(pos, format!("unknown function: {name}")))?;
    match (target_type, sig.instance) {
        (Some(_), false) => {
            return Err(CompileError::at(pos, format!("invoking regular function on instance method: {name}")))
        }
        (Some(t), true) => {
            if let Some(want) = sig.target {
                if t != want {
                    return Err(CompileError::at(pos, format!("{call} target typeError got {t}, expected {want}")));
                }
            }
        }
        (None, true) => {
            return Err(CompileError::at(pos, format!("invoking instance method without an instance: {name}")))
        }
        (None, false) => {}
    }
    // Mixer ignores surplus arguments; we reject them with the same message shape.
    if n_args != sig.args.len() {
        return Err(CompileError::at(
            pos,
            format!("{call} arity mismatch. Got {n_args} arg(s), expected {} arg(s)", sig.args.len()),
        ));
    }
    Ok(sig)
}

/// Tracks the generic type T while a call's arguments are checked left to right.
pub struct ArgChecker<'s> {
    sig: &'s Signature,
    generic: Option<ValueType>,
}

impl<'s> ArgChecker<'s> {
    pub fn new(sig: &'s Signature) -> ArgChecker<'s> {
        ArgChecker { sig, generic: None }
    }

    /// Checks argument `index` (0-based) of type `got`.
    pub fn check(&mut self, call: &Expr, index: usize, arg: &Expr, got: ValueType) -> Result<(), CompileError> {
        let declared = self.sig.args.get(index).copied().flatten();
        let expected = match (declared, self.generic) {
            (Some(t), _) => t,
            (None, Some(t)) => t,
            (None, None) => {
                self.generic = Some(got);
                return Ok(());
            }
        };
        if got != expected {
            return Err(CompileError::at(
                arg.pos,
                format!("{call} arg {} ({arg}) typeError got {got}, expected {expected}", index + 1),
            ));
        }
        Ok(())
    }

    /// The call's result type.
    pub fn result(&self) -> ValueType {
        self.sig.ret.or(self.generic).unwrap_or(ValueType::String)
    }

    /// The generic type T as fixed by the arguments.
    pub fn generic(&self) -> Option<ValueType> {
        self.generic
    }
}

/// Mixer's compiler class of a type, used in "not yet implemented" messages.
fn compiler_class(t: ValueType) -> &'static str {
    match t {
        String | DnsName | EmailAddress | Uri => "string",
        Int64 => "integer",
        Double => "double",
        Bool => "bool",
        Duration => "duration",
        Timestamp | IpAddress | StringMap => "interface",
    }
}

/// The code generator's rejections of operator/type pairs that type-check (spec 6.4).
pub fn check_operator_support(name: &str, t: ValueType, pos: usize) -> Result<(), CompileError> {
    let (what, supported) = match name {
        "EQ" | "NEQ" => ("equality", !matches!(t, Duration | StringMap)),
        "LT" => ("less than", !matches!(t, Bool | Duration | IpAddress | StringMap)),
        "LEQ" => ("less or equal", !matches!(t, Bool | Duration | IpAddress | StringMap)),
        "GT" => ("greater than", !matches!(t, Bool | Duration | IpAddress | StringMap)),
        "GEQ" => ("greater or equal", !matches!(t, Bool | Duration | IpAddress | StringMap)),
        "ADD" => ("Add", matches!(t, String | DnsName | EmailAddress | Uri | Int64 | Double)),
        _ => return Ok(()),
    };
    if supported {
        Ok(())
    } else {
        Err(CompileError::at(
            pos,
            format!("internal compiler error -- {what} for type not yet implemented: {}", compiler_class(t)),
        ))
    }
}
