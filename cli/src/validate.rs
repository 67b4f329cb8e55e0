//! `wasmixer validate FILES`: every check of `wasmixer convert`, nothing written.

use std::io::Write;
use std::process::ExitCode;

use crate::convert::{convert, parse_args, print_report, read_inputs};

/// `wasmixer validate ...`: exit 0 when everything converts, 1 on errors, 3 when some parts
/// are unsupported (see `wasmixer convert`).
pub fn run(words: &[&str], err: &mut impl Write) -> Result<ExitCode, String> {
    let mut args = parse_args(words)?;
    args.options.validate_only = true;
    if args.out.is_some() {
        return Err("validate writes nothing: use wasmixer convert --out DIR".to_string());
    }
    let inputs = read_inputs(&args.paths)?;
    let outcome = convert(&inputs, &args.options);
    print_report(&outcome.report, false, err).map_err(|e| format!("cannot write output: {e}"))?;
    Ok(ExitCode::from(outcome.exit_code()))
}
