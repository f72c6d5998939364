//! Password checks, once for every port that asks for one: the server's
//! RESP and memcached ports and the proxy's two front doors. Each
//! protocol keeps its own state machine (which commands may run before
//! authentication); what they share is here — the comparison (constant
//! time, [`Secret::matches`]), Redis's and memcached's reply texts, and
//! the bound on failed attempts per connection ([`Attempts`]).
//!
//! RESP follows Redis with `requirepass`: the one user is `default`;
//! `AUTH <password>`, `AUTH default <password>` and `HELLO <proto> AUTH
//! default <password>` authenticate; other commands get `-NOAUTH`.
//!
//! memcached follows memcached's ASCII authentication (no SASL): a
//! connection's first request must be `set <any key> <flags> <exptime>
//! <bytes>` whose data is `<user> <password>`; any user name is taken.

use crate::Secret;

/// Failed password checks one connection may make; the reply to the last
/// one is sent and the connection closed, so a password cannot be guessed
/// at pipeline speed over one connection.
pub const MAX_AUTH_FAILURES: u32 = 10;

/// Redis's reply to a command before authentication.
pub const NOAUTH: &[u8] = b"NOAUTH Authentication required.";

/// Redis's reply to a wrong user or password.
pub const WRONGPASS: &[u8] = b"WRONGPASS invalid username-password pair or user is disabled.";

/// Redis's reply to `AUTH <password>` when no password is set.
pub const NO_PASSWORD_SET: &[u8] = b"ERR AUTH <password> called without any password configured for the default \
user. Are you sure your configuration is correct?";

/// Redis's reply to `HELLO` without `AUTH` before authentication.
pub const HELLO_NOAUTH: &[u8] = b"NOAUTH HELLO must be called with the client already authenticated, otherwise \
the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol \
version at the same time";

/// memcached's reply to a command before authentication.
pub const MEMCACHE_UNAUTHENTICATED: &[u8] = b"CLIENT_ERROR unauthenticated\r\n";

/// memcached's reply to a wrong password.
pub const MEMCACHE_AUTH_FAILURE: &[u8] = b"CLIENT_ERROR authentication failure\r\n";

/// memcached's reply to a right one.
pub const MEMCACHE_AUTH_OK: &[u8] = b"STORED\r\n";

/// Checks RESP's `user`/`password` against `requirepass`. `Err` is the
/// error reply (without the leading `-`).
pub fn check_resp(requirepass: Option<&Secret>, user: &[u8], password: &[u8]) -> Result<(), &'static [u8]> {
    let Some(expected) = requirepass else {
        return Err(NO_PASSWORD_SET);
    };
    // Both checks always run, so the time taken does not say which failed.
    let user_ok = user.eq_ignore_ascii_case(b"default");
    let password_ok = expected.matches(password);
    if user_ok & password_ok { Ok(()) } else { Err(WRONGPASS) }
}

/// Checks the data of memcached's ASCII auth `set` (`<user> <password>`)
/// against `requirepass`.
pub fn check_memcache(requirepass: Option<&Secret>, data: &[u8]) -> bool {
    let password = data.iter().position(|&b| b == b' ').map(|at| &data[at + 1..]);
    match (password, requirepass) {
        (Some(given), Some(expected)) => expected.matches(given),
        _ => false,
    }
}

/// One connection's failed password checks.
#[derive(Clone, Copy, Debug, Default)]
pub struct Attempts {
    failures: u32,
}

impl Attempts {
    /// Counts a failed check; true once the connection has used up its
    /// [`MAX_AUTH_FAILURES`] and must be closed (after its reply).
    pub fn failed(&mut self) -> bool {
        self.failures = self.failures.saturating_add(1);
        self.failures >= MAX_AUTH_FAILURES
    }

    /// Failed checks so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp_checks_follow_redis() {
        let secret = Secret::from("s3cret");
        assert_eq!(check_resp(Some(&secret), b"default", b"s3cret"), Ok(()));
        assert_eq!(check_resp(Some(&secret), b"DEFAULT", b"s3cret"), Ok(()));
        assert_eq!(check_resp(Some(&secret), b"alice", b"s3cret"), Err(WRONGPASS));
        assert_eq!(check_resp(Some(&secret), b"default", b"wrong"), Err(WRONGPASS));
        assert_eq!(check_resp(None, b"default", b"s3cret"), Err(NO_PASSWORD_SET));
    }

    #[test]
    fn memcache_checks_read_the_password_after_the_user() {
        let secret = Secret::from("s3cret");
        assert!(check_memcache(Some(&secret), b"anyone s3cret"));
        assert!(!check_memcache(Some(&secret), b"s3cret"));
        assert!(!check_memcache(Some(&secret), b"anyone wrong"));
        assert!(!check_memcache(None, b"anyone s3cret"));
    }

    #[test]
    fn attempts_run_out() {
        let mut attempts = Attempts::default();
        for _ in 1..MAX_AUTH_FAILURES {
            assert!(!attempts.failed());
        }
        assert!(attempts.failed());
        assert_eq!(attempts.failures(), MAX_AUTH_FAILURES);
    }
}
