//! `wasmixer validate` on YAML alias bombs: the file is rejected with a clear message, and the
//! memory it takes stays small. The whole test binary counts its heap (a counting global
//! allocator), so the bound is on bytes allocated, not on time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use wasmixer_cli::validate;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// The tests of this file run one at a time, as each resets the peak.
static SERIAL: Mutex<()> = Mutex::new(());

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// `refs` aliases of the previous level on each of `levels` levels.
fn bomb(refs: usize, levels: usize) -> String {
    let mut text = format!("l0: &l0 [{}]\n", vec!["\"lol\""; refs].join(","));
    for level in 1..levels {
        let prev = level - 1;
        text.push_str(&format!("l{level}: &l{level} [{}]\n", vec![format!("*l{prev}"); refs].join(",")));
    }
    text
}

/// Runs `wasmixer validate` on `text`; its exit status, its output and the peak heap growth.
fn validate_text(name: &str, text: &str) -> (ExitCode, String, usize) {
    let path = std::env::temp_dir().join(format!("wasmixer-alias-bomb-{}-{name}.yaml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let mut out = Vec::new();
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let code = validate::run(&[path.to_str().unwrap()], &mut out).unwrap();
    let peak = PEAK.load(Ordering::Relaxed) - base;
    std::fs::remove_file(&path).unwrap();
    (code, String::from_utf8(out).unwrap(), peak)
}

#[test]
fn billion_laughs_is_rejected_in_little_memory() {
    let _serial = SERIAL.lock().unwrap();
    let text = bomb(9, 10);
    assert!(text.len() < 600, "{}", text.len());
    let (code, out, peak) = validate_text("laughs", &text);
    assert_eq!(code, ExitCode::from(1), "{out}");
    assert!(out.contains(":4:") && out.contains("document contains excessive aliasing"), "{out}");
    assert!(peak < 4 << 20, "peak heap {peak} bytes");
}

#[test]
fn wider_and_deeper_bombs_are_rejected_too() {
    let _serial = SERIAL.lock().unwrap();
    for (refs, levels) in [(100, 5), (9, 30), (2, 64)] {
        let (code, out, peak) = validate_text(&format!("{refs}x{levels}"), &bomb(refs, levels));
        assert_eq!(code, ExitCode::from(1), "{refs}x{levels}: {out}");
        assert!(out.contains("document contains excessive aliasing"), "{refs}x{levels}: {out}");
        assert!(peak < 4 << 20, "{refs}x{levels}: peak heap {peak} bytes");
    }
}
