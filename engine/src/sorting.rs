//! Stable sorting that costs little code per element type.
//!
//! Core's `sort_by` / `sort_unstable` are fast but generic through and through: each element
//! type and comparator gets its own few kilobytes of quicksort, driftsort and small-sort code,
//! and the filters sort a dozen different things, almost all of them small and at configure
//! time. Here only a short insertion sort and an in-place permutation are generic; a longer
//! slice is ordered by one shared, non-generic merge sort over indices.

use std::cmp::Ordering;

/// Slices up to this length are insertion-sorted in place (no allocation).
const INSERTION_MAX: usize = 24;

/// Sorts `v` stably by `cmp`.
pub fn sort_by<T>(v: &mut [T], mut cmp: impl FnMut(&T, &T) -> Ordering) {
    if v.len() <= INSERTION_MAX {
        insertion_sort(v, &mut cmp);
        return;
    }
    let order = {
        let items: &[T] = v;
        stable_order(items.len(), &mut |a, b| match (items.get(a), items.get(b)) {
            (Some(x), Some(y)) => cmp(x, y) == Ordering::Less,
            _ => false,
        })
    };
    permute(v, &order);
}

/// Sorts `v` stably by the key `key` extracts.
pub fn sort_by_key<T, K: Ord>(v: &mut [T], mut key: impl FnMut(&T) -> K) {
    sort_by(v, |a, b| key(a).cmp(&key(b)));
}

/// Sorts `v` and removes repeated elements.
pub fn sort_dedup<T: Ord>(v: &mut Vec<T>) {
    sort_by(v, T::cmp);
    v.dedup();
}

fn insertion_sort<T>(v: &mut [T], cmp: &mut impl FnMut(&T, &T) -> Ordering) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 {
            let less = match (v.get(j), v.get(j - 1)) {
                (Some(x), Some(y)) => cmp(x, y) == Ordering::Less,
                _ => false,
            };
            if !less {
                break;
            }
            v.swap(j, j - 1);
            j -= 1;
        }
    }
}

/// The stable sorted order of `n` items (`order[i]` is the index of the item that belongs at
/// `i`), by a bottom-up merge sort; `less(a, b)` compares items `a` and `b`.
fn stable_order(n: usize, less: &mut dyn FnMut(usize, usize) -> bool) -> Vec<usize> {
    let mut from: Vec<usize> = (0..n).collect();
    let mut to: Vec<usize> = vec![0; n];
    let mut width = 1;
    while width < n {
        let mut start = 0;
        while start < n {
            let mid = (start + width).min(n);
            let end = (start + 2 * width).min(n);
            merge(&from[start..mid], &from[mid..end], &mut to[start..end], less);
            start = end;
        }
        std::mem::swap(&mut from, &mut to);
        width *= 2;
    }
    from
}

/// Merges two sorted runs into `out`; on ties the left run goes first (stability).
fn merge(left: &[usize], right: &[usize], out: &mut [usize], less: &mut dyn FnMut(usize, usize) -> bool) {
    let (mut l, mut r) = (left.iter().peekable(), right.iter().peekable());
    for slot in out.iter_mut() {
        let take_right = match (l.peek(), r.peek()) {
            (Some(&&a), Some(&&b)) => less(b, a),
            (None, _) => true,
            (_, None) => false,
        };
        let next = if take_right { r.next() } else { l.next() };
        *slot = next.copied().unwrap_or_default();
    }
}

/// Rearranges `v` so that `v[i]` becomes the old `v[order[i]]`, following each cycle of the
/// permutation with swaps.
fn permute<T>(v: &mut [T], order: &[usize]) {
    let mut placed = vec![false; v.len()];
    for start in 0..v.len() {
        if placed.get(start).copied().unwrap_or(true) {
            continue;
        }
        let mut at = start;
        loop {
            if let Some(p) = placed.get_mut(at) {
                *p = true;
            }
            let from = order.get(at).copied().unwrap_or(start);
            if from == start || from >= v.len() {
                break;
            }
            v.swap(at, from);
            at = from;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), so the tests need no crate.
    fn numbers(seed: u64, n: usize, modulo: u64) -> Vec<u64> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % modulo
            })
            .collect()
    }

    #[test]
    fn sorts_like_the_standard_library_at_every_length() {
        for n in [0, 1, 2, 3, 23, 24, 25, 31, 32, 33, 100, 257, 1000] {
            for modulo in [3, 1000] {
                let input = numbers(n as u64 + modulo, n, modulo);
                let mut ours = input.clone();
                sort_by(&mut ours, u64::cmp);
                let mut std = input.clone();
                std.sort();
                assert_eq!(ours, std, "n={n} modulo={modulo}");
            }
        }
    }

    #[test]
    fn is_stable_short_and_long() {
        for n in [10, 24, 25, 500] {
            // Sort by the key only; the second field records the original position.
            let mut items: Vec<(u64, usize)> = numbers(7, n, 5).into_iter().zip(0..).collect();
            sort_by_key(&mut items, |&(k, _)| k);
            assert!(items.windows(2).all(|w| w[0].0 < w[1].0 || (w[0].0 == w[1].0 && w[0].1 < w[1].1)), "n={n}");
        }
    }

    #[test]
    fn moves_owned_values() {
        let mut v: Vec<String> = numbers(3, 60, 40).iter().map(|n| format!("s{n:02}")).collect();
        let mut expected = v.clone();
        expected.sort();
        sort_by(&mut v, |a, b| a.cmp(b));
        assert_eq!(v, expected);
    }

    #[test]
    fn sort_dedup_removes_repeats() {
        let mut v = vec![5u16, 1, 5, 3, 1, 1];
        sort_dedup(&mut v);
        assert_eq!(v, [1, 3, 5]);
    }
}
