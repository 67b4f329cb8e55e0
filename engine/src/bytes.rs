//! Byte comparison for the hot paths. On wasm32 every slice `==` ends in wasi-libc's `memcmp`,
//! which compares one byte at a time; comparing eight bytes at a time takes a fraction of the
//! instructions for values longer than a few words (a published peer claim, a metric's label
//! tuple). Short, one-off comparisons are better left to `==`.

/// `a == b`, eight bytes at a time.
pub fn words_equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a_words, a_tail) = a.as_chunks::<8>();
    let (b_words, b_tail) = b.as_chunks::<8>();
    a_words.iter().zip(b_words).all(|(x, y)| u64::from_ne_bytes(*x) == u64::from_ne_bytes(*y))
        && a_tail.iter().zip(b_tail).all(|(x, y)| x == y)
}

/// Two lists of strings, equal element by element (property paths: short strings compared
/// often, where a `memcmp` call costs more than the comparison).
pub fn strs_equal<A: AsRef<str>>(a: &[A], b: &[&str]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| words_equal(x.as_ref().as_bytes(), y.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_and_the_length_count() {
        for len in [0usize, 1, 7, 8, 9, 15, 16, 17, 466] {
            let a: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            assert!(words_equal(&a, &a.clone()), "{len} bytes");
            for i in 0..len {
                let mut b = a.clone();
                b[i] ^= 1;
                assert!(!words_equal(&a, &b), "{len} bytes, byte {i} differs");
            }
            assert!(!words_equal(&a, &a[..len.saturating_sub(1)]) || len == 0);
        }
    }

    #[test]
    fn string_lists_compare_element_by_element() {
        assert!(strs_equal(&["response", "code"], &["response", "code"]));
        assert!(strs_equal(&[String::from("a")], &["a"]));
        assert!(!strs_equal(&["response", "code"], &["response", "codes"]));
        assert!(!strs_equal(&["responsec", "ode"], &["response", "code"]));
        assert!(!strs_equal(&["response"], &["response", "code"]));
        assert!(strs_equal::<&str>(&[], &[]));
    }
}
