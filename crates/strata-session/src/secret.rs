//! A password, or anything else that must not reach a log: one type for
//! every place strata holds one (the server's `requirepass`, the cluster
//! client's and the tracker's server password, the request node's L2
//! password), so none of them can leak through a derived `Debug`.

use std::fmt;
use std::sync::Arc;

/// A secret string: `Debug` and `Display` show `***`; [`Secret::expose`]
/// is the one way to read it. Cheap to clone (shared).
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(from = "String")]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send or compare it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this secret, compared in time that depends only
    /// on the length of `given` (a password check must leak neither how
    /// many leading bytes were right nor how long the secret is).
    pub fn matches(&self, given: &[u8]) -> bool {
        // Time depends on the length of `given` only: every byte of it is
        // compared (against the secret repeated), and a length mismatch
        // is folded in rather than returned early, so neither the secret's
        // bytes nor its length can be timed.
        let expected = self.0.as_bytes();
        if expected.is_empty() {
            return given.is_empty();
        }
        let mut diff = u8::from(given.len() != expected.len());
        for (i, &byte) in given.iter().enumerate() {
            diff |= byte ^ expected[i % expected.len()];
        }
        std::hint::black_box(diff) == 0 && !given.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Holder {
        password: Option<Secret>,
    }

    #[test]
    fn never_shown_but_readable() {
        let secret = Secret::from("s3cret");
        assert_eq!(format!("{secret:?} {secret}"), "*** ***");
        assert_eq!(secret.expose(), "s3cret");
        assert!(secret.matches(b"s3cret"));
        assert!(!secret.matches(b"s3cres"));
        // Repetitions of the secret, prefixes and the empty string fail.
        assert!(!secret.matches(b"s3crets3cret"));
        assert!(!secret.matches(b"s3cre"));
        assert!(!secret.matches(b""));
        assert!(Secret::from("").matches(b""));
        assert!(!secret.matches(b"s3cret!"));
        assert!(!secret.matches(b""));
        let holder = Holder { password: Some(secret) };
        assert!(!format!("{holder:?}").contains("s3cret"));
        let parsed: Holder = toml::from_str("password = \"s3cret\"").unwrap();
        assert_eq!(
            parsed.password.map(|p| p.expose().to_owned()).as_deref(),
            Some("s3cret")
        );
    }
}
