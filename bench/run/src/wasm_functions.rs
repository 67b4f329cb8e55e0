//! `--functions N` (with `--instructions`): where a filter's own WebAssembly code spends its
//! instructions inside real Envoy, by function.
//!
//! V8's generated code has no symbols, so callgrind names each piece by the address it was
//! entered at. Calls between a module's functions go through the module's jump table, one
//! 8-byte slot per defined function in index order at the start of its code space (V8 on
//! x86-64), and callgrind charges a function's instructions to the slot its callers jumped
//! through. So the slots that took instructions, read against the module's name section, name
//! the functions. The table's address is not printed anywhere: it is the page-aligned address
//! that puts the most of the run's code addresses on slot boundaries of a table that size.
//! Entries outside any table are V8's own code (the wrappers around calls into and out of the
//! module, builtins). Modules need a name section: `make profile-instructions` builds them so.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::leb128;

/// Bytes per jump-table slot (V8, x86-64).
const SLOT: u64 = 8;
const PAGE: u64 = 4096;
/// V8 reserves its code space above 4 GiB; Envoy's own text and libraries sit elsewhere and
/// have names or a file. Callgrind names an anonymous piece of code by its address.
const CODE_SPACE_START: u64 = 1 << 32;

/// A module's functions as its name section names them.
#[derive(Debug, Default)]
pub struct ModuleNames {
    pub file: PathBuf,
    /// Name of each defined function (imports excluded), in index order.
    pub defined: Vec<String>,
}

/// Reads `file`'s defined functions and their names; `None` when it has no name section.
pub fn module_names(file: &Path) -> Result<Option<ModuleNames>, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let parsed =
        parse_module(&bytes).ok_or_else(|| format!("{}: not a WebAssembly module it can read", file.display()))?;
    Ok(parsed.map(|defined| ModuleNames { file: file.to_path_buf(), defined }))
}

/// Defined functions' names (a placeholder where the name section has none); `Some(None)` for a
/// module without function names.
fn parse_module(bytes: &[u8]) -> Option<Option<Vec<String>>> {
    let mut r = Reader { bytes, at: 8 };
    if bytes.get(..4)? != b"\0asm" {
        return None;
    }
    let (mut imported, mut defined, mut names) = (0u64, 0u64, HashMap::new());
    while r.at < bytes.len() {
        let id = r.byte()?;
        let size = r.leb()? as usize;
        let end = r.at.checked_add(size)?;
        let mut s = Reader { bytes: bytes.get(..end)?, at: r.at };
        match id {
            2 => imported = count_function_imports(&mut s)?,
            3 => defined = s.leb()?,
            0 if s.name()? == "name" => names = function_names(&mut s)?,
            _ => {}
        }
        r.at = end;
    }
    if names.is_empty() {
        return Some(None);
    }
    Some(Some(
        (imported..imported + defined).map(|i| names.remove(&i).unwrap_or_else(|| format!("function {i}"))).collect(),
    ))
}

fn count_function_imports(s: &mut Reader) -> Option<u64> {
    let mut functions = 0;
    for _ in 0..s.leb()? {
        s.name()?;
        s.name()?;
        match s.byte()? {
            0 => {
                s.leb()?;
                functions += 1;
            }
            1 => {
                s.byte()?;
                s.limits()?;
            }
            2 => s.limits()?,
            3 => {
                s.byte()?;
                s.byte()?;
            }
            4 => {
                s.byte()?;
                s.leb()?;
            }
            _ => return None,
        }
    }
    Some(functions)
}

/// The name section's function names (subsection 1), by function index.
fn function_names(s: &mut Reader) -> Option<HashMap<u64, String>> {
    let mut names = HashMap::new();
    while s.at < s.bytes.len() {
        let id = s.byte()?;
        let size = s.leb()? as usize;
        let end = s.at.checked_add(size)?;
        if id == 1 {
            for _ in 0..s.leb()? {
                let index = s.leb()?;
                names.insert(index, s.name()?.to_string());
            }
        }
        s.at = end;
    }
    Some(names)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn leb(&mut self) -> Option<u64> {
        let (value, used) = leb128::read_unsigned(self.bytes.get(self.at..)?)?;
        self.at += used;
        Some(value)
    }

    fn name(&mut self) -> Option<&'a str> {
        let len = self.leb()? as usize;
        let text = self.bytes.get(self.at..self.at.checked_add(len)?)?;
        self.at += len;
        std::str::from_utf8(text).ok()
    }

    fn limits(&mut self) -> Option<()> {
        let flags = self.byte()?;
        self.leb()?;
        if flags & 1 == 1 {
            self.leb()?;
        }
        Some(())
    }
}

/// Self instructions of each anonymous code address (V8's code space) in a callgrind dump.
pub fn code_space_costs(dump: &str) -> HashMap<u64, u64> {
    let mut objects: HashMap<&str, &str> = HashMap::new();
    let mut functions: HashMap<&str, &str> = HashMap::new();
    let (mut anonymous, mut current) = (false, None::<u64>);
    let mut costs = HashMap::new();
    let mut skip_cost_line = false;
    for line in dump.lines() {
        if skip_cost_line {
            skip_cost_line = false;
            continue;
        }
        if line.starts_with("calls=") {
            // The next line is the call's inclusive cost, not this function's own.
            skip_cost_line = true;
            continue;
        }
        if let Some((key, id, name)) = compressed(line) {
            match key {
                "ob" | "cob" => {
                    let name = resolve(&mut objects, id, name);
                    if key == "ob" {
                        anonymous = name == "???";
                    }
                }
                "fn" | "cfn" => {
                    let name = resolve(&mut functions, id, name);
                    if key == "fn" {
                        current = name
                            .strip_prefix("0x")
                            .and_then(|h| u64::from_str_radix(h, 16).ok())
                            .filter(|a| anonymous && *a >= CODE_SPACE_START);
                    }
                }
                _ => {}
            }
            continue;
        }
        let (Some(address), Some(cost)) = (current, cost_line(line)) else { continue };
        *costs.entry(address).or_insert(0) += cost;
    }
    costs
}

/// `key=(id) name` or `key=(id)`: callgrind's compressed names.
fn compressed(line: &str) -> Option<(&str, &str, Option<&str>)> {
    let (key, rest) = line.split_once("=(")?;
    let (id, name) = rest.split_once(')')?;
    let name = name.strip_prefix(' ');
    Some((key, id, name))
}

fn resolve<'a>(table: &mut HashMap<&'a str, &'a str>, id: &'a str, name: Option<&'a str>) -> &'a str {
    match name {
        Some(n) => {
            table.insert(id, n);
            n
        }
        None => table.get(id).copied().unwrap_or(""),
    }
}

/// The instructions of a cost line (`<position> <Ir>`, positions absolute, relative or `*`).
fn cost_line(line: &str) -> Option<u64> {
    let (position, cost) = line.split_once(' ')?;
    let position_ok = position == "*" || position.trim_start_matches(['+', '-']).bytes().all(|b| b.is_ascii_digit());
    if !position_ok || position.is_empty() {
        return None;
    }
    cost.trim().parse().ok()
}

/// Where one module's jump table is: the page-aligned base that puts the most `addresses` on
/// its slots (the highest such base when several do), and how many it puts there.
pub fn jump_table(addresses: &[u64], functions: usize) -> Option<(u64, usize)> {
    let size = functions as u64 * SLOT;
    let pages = size.div_ceil(PAGE);
    let mut best: Option<(u64, usize)> = None;
    let mut candidates: Vec<u64> = addresses
        .iter()
        .flat_map(|a| (0..=pages).filter_map(move |k| (a / PAGE).checked_sub(k).map(|p| p * PAGE)))
        .collect();
    candidates.sort_unstable();
    candidates.dedup();
    for base in candidates {
        let on_slots =
            addresses.iter().filter(|&&a| a >= base && a < base + size && (a - base).is_multiple_of(SLOT)).count();
        if best.is_none_or(|(_, n)| on_slots >= n) {
            best = Some((base, on_slots));
        }
    }
    best.filter(|(_, n)| *n > 0)
}

/// Every `.wasm` file a setup's filters load.
pub fn setup_modules(filters: &[Value]) -> Vec<PathBuf> {
    fn walk(v: &Value, out: &mut Vec<PathBuf>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x.as_str()) {
                        ("filename", Some(f)) if f.ends_with(".wasm") => out.push(PathBuf::from(f)),
                        _ => walk(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    filters.iter().for_each(|f| walk(f, &mut out));
    out.dedup();
    out
}

/// The report for one setup: its modules' functions by instructions per request, then what
/// V8 ran outside them.
pub fn report(dump: &str, requests: f64, modules: &[ModuleNames], top: usize) -> String {
    let costs = code_space_costs(dump);
    let mut addresses: Vec<u64> = costs.keys().copied().collect();
    addresses.sort_unstable();
    let total: u64 = costs.values().sum();
    let per = |c: u64| c as f64 / requests.max(1.0);
    let mut rows: Vec<(u64, String)> = Vec::new();
    let mut placed = std::collections::HashSet::new();
    let mut notes = Vec::new();
    for m in modules {
        let free: Vec<u64> = addresses.iter().copied().filter(|a| !placed.contains(a)).collect();
        let Some((base, on_slots)) = jump_table(&free, m.defined.len()) else {
            notes.push(format!("{}: no jump table found", m.file.display()));
            continue;
        };
        let module = m.file.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        notes.push(format!("{module}: jump table at {base:#x}, {on_slots} code addresses on its slots"));
        for a in free {
            let Some(name) =
                a.checked_sub(base).filter(|o| o % SLOT == 0).and_then(|o| m.defined.get((o / SLOT) as usize))
            else {
                continue;
            };
            placed.insert(a);
            let label = if modules.len() > 1 { format!("{module}: {}", demangle(name)) } else { demangle(name) };
            rows.push((costs.get(&a).copied().unwrap_or(0), label));
        }
    }
    let in_modules: u64 = rows.iter().map(|(c, _)| c).sum();
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut out = format!(
        "V8 code {:.0} instructions/request: the modules' functions {:.0}, V8's wrappers and builtins {:.0}\n",
        per(total),
        per(in_modules),
        per(total - in_modules)
    );
    for (cost, name) in rows.iter().take(top) {
        out.push_str(&format!("  {:>8.0}  {name}\n", per(*cost)));
    }
    for n in notes {
        out.push_str(&format!("  ({n})\n"));
    }
    out
}

/// A symbol as Rust wrote it (without the hash); other names as they are.
pub fn demangle(name: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_self_costs_of_code_space_addresses_only() {
        let dump = "events: Ir\nob=(1) /usr/bin/envoy\nfn=(1) 0x0000000000401000\n0 50\nob=(2) ???\nfn=(2) 0x00003b98eaad8000\n0 7\n+2 3\ncalls=1 0\n0 1000\nfn=(3) 0x0000000000001000\n0 9\nfn=(2)\n* 5\nsummary: 1074\n";
        let costs = code_space_costs(dump);
        assert_eq!(costs.get(&0x3b98eaad8000), Some(&15), "own lines only, not the call's inclusive cost");
        assert_eq!(costs.len(), 1, "{costs:?}");
    }

    #[test]
    fn finds_the_table_that_puts_the_most_addresses_on_slots() {
        let base = 0x3b98_eaad_8000u64;
        let mut addresses: Vec<u64> = [0u64, 0x58, 0x98, 0x2f8, 0x1f48, 0x2898].iter().map(|o| base + o).collect();
        // V8 code elsewhere, and an address inside the table but off the slot grid.
        addresses.extend([base + 0x9_fec0, base + 0x123]);
        assert_eq!(jump_table(&addresses, 1320), Some((base, 6)));
        assert_eq!(jump_table(&[], 10), None);
    }

    #[test]
    fn names_come_from_the_name_section_after_the_imports() {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        // One imported function, two defined ones, names for 1 and 2.
        leb128::tagged(2, &[1, 3, b'e', b'n', b'v', 1, b'f', 0, 0], &mut m);
        leb128::tagged(3, &[2, 0, 0], &mut m);
        let mut names = vec![4, b'n', b'a', b'm', b'e'];
        leb128::tagged(1, &[2, 1, 1, b'a', 2, 1, b'b'], &mut names);
        leb128::tagged(0, &names, &mut m);
        assert_eq!(parse_module(&m), Some(Some(vec!["a".to_string(), "b".to_string()])));
        let bare = b"\0asm\x01\0\0\0".to_vec();
        assert_eq!(parse_module(&bare), Some(None));
        assert_eq!(parse_module(b"nope"), None);
    }

    #[test]
    fn demangles_rust_names_only() {
        assert_eq!(demangle("_ZN4core3ptr13drop_in_place17h0123456789abcdefE"), "core::ptr::drop_in_place");
        assert_eq!(demangle("dlmalloc"), "dlmalloc");
    }

    #[test]
    fn finds_the_modules_a_setup_loads() {
        let filters = vec![
            serde_json::json!({"typed_config": {"config": {"vm_config": {"code": {"local": {"filename": "/d/deny.wasm"}}}}}}),
        ];
        assert_eq!(setup_modules(&filters), [PathBuf::from("/d/deny.wasm")]);
    }
}
