//! Resource patterns: a full-string glob where `*` is the only metacharacter
//! (NVIDIA's anchored matcher), paired with the resource name it selects.

/// A pattern and the resource that devices matching it are advertised as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPattern {
    pub pattern: String,
    /// Fully qualified resource name.
    pub name: String,
}

impl NamedPattern {
    pub fn new(pattern: impl Into<String>, name: impl Into<String>) -> Self {
        NamedPattern {
            pattern: pattern.into(),
            name: name.into(),
        }
    }

    pub fn matches(&self, s: &str) -> bool {
        glob_match(&self.pattern, s)
    }
}

/// True when `s` matches `pattern` as a whole, `*` matching any run of characters.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or("");
    let Some(mut rest) = s.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        // No `*` at all: the whole string must equal the pattern.
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn anchored_glob_vectors_from_nvidia() {
        let cases = [
            ("1g.24gb", "1g.24gb", true),
            ("1g.24gb", "2g.48gb", false),
            ("1g.24gb", "1g.24gb-me", false),
            ("1g.24gb", "1g.24gb+me.all", false),
            ("1g.24gb", "x1g.24gb", false),
            ("1g.24gb-me", "1g.24gb-me", true),
            ("1g.24gb+me.all", "1g.24gb+me.all", true),
            ("*", "1g.24gb-me", true),
            ("1g.*", "1g.24gb", true),
            ("1g.*", "2g.48gb", false),
            ("1g.24gb+gfx", "1g.24gb+gfx", true),
            ("1g.24gb", "1g.24gb+gfx", false),
            ("1g.24gb+gfx", "1g.24gb", false),
            ("1g.24gb+gfx", "1g.24gb-me", false),
            ("2g.48gb+gfx", "2g.48gb+gfx", true),
            ("2g.48gb", "2g.48gb+gfx", false),
            ("*gb", "1g.24gb", true),
            ("*gb", "1g.24gb-me", false),
        ];
        for (pattern, input, want) in cases {
            assert_eq!(glob_match(pattern, input), want, "{pattern} vs {input}");
        }
    }

    #[test]
    fn stars_in_the_middle_and_overlaps() {
        let cases = [
            ("*A100*", "NVIDIA A100-SXM4-80GB", true),
            ("*A100*", "NVIDIA H100", false),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("**", "", true),
            ("", "", true),
            ("", "x", false),
            ("a*b*c", "abbc", true),
            ("a*b*c", "acb", false),
        ];
        for (pattern, input, want) in cases {
            assert_eq!(glob_match(pattern, input), want, "{pattern} vs {input}");
        }
    }
}
