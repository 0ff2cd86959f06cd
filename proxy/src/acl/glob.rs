//! Redis-style glob matching for ACL key patterns (`~pattern` in Redis):
//! `*` any run of bytes, `?` one byte, `[abc]`, `[a-z]`, `[^a]` classes, and
//! `\x` for a literal `x`.
//!
//! Keys are client bytes, so matching never panics and takes time bounded by
//! `pattern.len() * key.len()`: the single backtracking point is the last
//! `*` seen, which is enough for globs (a later `*` subsumes earlier ones).

/// Whether `key` matches `pattern` as a whole.
pub fn glob_match(pattern: &[u8], key: &[u8]) -> bool {
    let (mut p, mut k) = (0usize, 0usize);
    // Where to resume after the last `*`: (pattern index after it, key index).
    let mut star: Option<(usize, usize)> = None;
    while k < key.len() {
        if let Some(&c) = pattern.get(p) {
            if c == b'*' {
                star = Some((p + 1, k));
                p += 1;
                continue;
            }
            if let Some(len) = single(pattern, p, key[k]) {
                p += len;
                k += 1;
                continue;
            }
        }
        match star {
            Some((sp, sk)) => {
                p = sp;
                k = sk + 1;
                star = Some((sp, sk + 1));
            }
            None => return false,
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// Matches one byte against the pattern element at `p` (not `*`); returns
/// the element's length in the pattern when it matches.
fn single(pattern: &[u8], p: usize, b: u8) -> Option<usize> {
    match pattern.get(p)? {
        b'?' => Some(1),
        b'\\' => match pattern.get(p + 1) {
            Some(&lit) => (lit == b).then_some(2),
            // A trailing backslash is a literal backslash, as in Redis.
            None => (b == b'\\').then_some(1),
        },
        b'[' => class(pattern, p, b),
        &c => (c == b).then_some(1),
    }
}

/// `[...]` at `p`. An unterminated class runs to the end of the pattern,
/// which is what Redis's `stringmatchlen` does.
fn class(pattern: &[u8], p: usize, b: u8) -> Option<usize> {
    let mut i = p + 1;
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut hit = false;
    while let Some(&c) = pattern.get(i) {
        if c == b']' {
            break;
        }
        if c == b'\\' && i + 1 < pattern.len() {
            hit |= pattern[i + 1] == b;
            i += 2;
        } else if pattern.get(i + 1) == Some(&b'-')
            && i + 2 < pattern.len()
            && pattern[i + 2] != b']'
        {
            let (lo, hi) = (c.min(pattern[i + 2]), c.max(pattern[i + 2]));
            hit |= (lo..=hi).contains(&b);
            i += 3;
        } else {
            hit |= c == b;
            i += 1;
        }
    }
    let end = if i < pattern.len() { i + 1 } else { i };
    (hit != negate).then_some(end - p)
}

#[cfg(test)]
mod tests {
    use super::glob_match as m;

    #[test]
    fn star_matches_any_run_including_none() {
        assert!(m(b"*", b""));
        assert!(m(b"*", b"anything"));
        assert!(m(b"jobs:*", b"jobs:"));
        assert!(m(b"jobs:*", b"jobs:42"));
        assert!(!m(b"jobs:*", b"job:42"));
        assert!(m(b"a*b*c", b"axxbyyc"));
        assert!(!m(b"a*b*c", b"axxbyy"));
        assert!(m(b"*:lock", b"x:y:lock"));
    }

    #[test]
    fn question_mark_matches_exactly_one_byte() {
        assert!(m(b"k?", b"k1"));
        assert!(!m(b"k?", b"k"));
        assert!(!m(b"k?", b"k12"));
    }

    #[test]
    fn classes_match_members_ranges_and_negations() {
        assert!(m(b"[abc]x", b"bx"));
        assert!(!m(b"[abc]x", b"dx"));
        assert!(m(b"k[0-9]", b"k7"));
        assert!(!m(b"k[0-9]", b"ka"));
        assert!(m(b"[^a]", b"b"));
        assert!(!m(b"[^a]", b"a"));
        assert!(!m(b"[^a]", b""));
    }

    #[test]
    fn escapes_make_metacharacters_literal() {
        assert!(m(br"a\*", b"a*"));
        assert!(!m(br"a\*", b"ab"));
        assert!(m(br"\?", b"?"));
        assert!(!m(br"\?", b"x"));
        assert!(m(br"[\]]", b"]"));
    }

    #[test]
    fn exact_patterns_match_only_themselves() {
        assert!(m(b"jobs:1", b"jobs:1"));
        assert!(!m(b"jobs:1", b"jobs:10"));
        assert!(!m(b"", b"x"));
        assert!(m(b"", b""));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_patterns_and_keys_never_panic(
            p in proptest::collection::vec(proptest::num::u8::ANY, 0..16),
            k in proptest::collection::vec(proptest::num::u8::ANY, 0..16),
        ) {
            let _ = m(&p, &k);
        }
    }
}
