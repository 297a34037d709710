//! Authentication traps: what a client meets when its token does not reach
//! Jira or is no longer good, on every endpoint, until cleared.
//!
//! Each [`AuthTrap`] is one way a real deployment answers a request whose
//! credentials went missing or stale: a proxy that drops the `Authorization`
//! header (Jira answers 200 as `anonymous`), a single-sign-on gateway that
//! serves its login page (200, HTML) or redirects to it (302), Jira's CAPTCHA
//! lock-out (403), and an expired personal access token (401). A client must
//! stop at once on each: retrying cannot help and, for the CAPTCHA, deepens
//! the lock-out. Set with [`SimControl::set_auth_trap`]; the responses are
//! built in [`crate::server`] next to the faults.

use crate::SimControl;

/// One authentication trap (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthTrap {
    /// A proxy drops the token: every endpoint answers 200 as Jira answers
    /// an anonymous user (`X-AUSERNAME: anonymous`; an empty search page,
    /// `{}` where Jira would refuse an anonymous caller).
    AnonymousProxy,
    /// An SSO gateway answers every request with its login page: HTTP 200,
    /// `Content-Type: text/html`.
    LoginPage,
    /// An SSO gateway redirects every request to its login page (HTTP 302,
    /// `Location: <base>/login.jsp?os_destination=…`).
    RedirectToLogin,
    /// Jira's CAPTCHA lock-out on every request: HTTP 403 with
    /// `X-Authentication-Denied-Reason: CAPTCHA_CHALLENGE; login-url=…`.
    Captcha,
    /// The personal access token has expired: HTTP 401 saying so.
    ExpiredToken,
}

impl AuthTrap {
    /// Every trap, for tests that try each.
    pub const ALL: [AuthTrap; 5] = [
        AuthTrap::AnonymousProxy,
        AuthTrap::LoginPage,
        AuthTrap::RedirectToLogin,
        AuthTrap::Captcha,
        AuthTrap::ExpiredToken,
    ];
}

impl SimControl {
    /// Answers every request (not the `/_sim/` admin endpoints) with `trap`
    /// from now on; `None` lifts it. [`SimControl::clear_faults`] lifts it too.
    pub fn set_auth_trap(&self, trap: Option<AuthTrap>) {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .trap = trap;
    }

    /// The trap in force, if any.
    pub fn auth_trap(&self) -> Option<AuthTrap> {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .trap
    }
}
