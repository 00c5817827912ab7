//! What a failed refresh says about its connection: the one table that
//! sorts a token endpoint's answers into dead refresh tokens, refused
//! clients and failures that may pass (docs/connections.md lists it).
//!
//! The standard errors of RFC 6749 §5.2 decide first; providers that say
//! more, or say it differently, are matched on the `error` and
//! `error_description` they send.

use crate::backend::connection::FailureClass;
use crate::providers::{FailureMeaning, Profile};

/// A provider's answer: its `error` (`None`: any), a fragment its
/// `error_description` holds (empty: any), and what it means.
struct Shape {
    error: Option<&'static str>,
    fragment: &'static str,
    class: FailureClass,
}

use FailureClass::{Misconfigured, Terminal, Transient};

/// Provider-specific answers, matched before the standard errors.
const SHAPES: &[Shape] = &[
    // Microsoft Entra ID: the refresh token expired after inactivity; the
    // grant was revoked (password change, admin); consent was withdrawn.
    shape(None, "AADSTS700082", Terminal),
    shape(None, "AADSTS50173", Terminal),
    shape(None, "AADSTS700084", Terminal),
    shape(None, "AADSTS65001", Terminal),
    // Microsoft: the client secret is wrong or expired.
    shape(None, "AADSTS7000215", Misconfigured),
    shape(None, "AADSTS7000222", Misconfigured),
    // Salesforce: `invalid_grant` "expired access/refresh token", or the
    // user or organization is inactive.
    shape(
        Some("invalid_grant"),
        "expired access/refresh token",
        Terminal,
    ),
    shape(Some("inactive_user"), "", Terminal),
    shape(Some("inactive_org"), "", Terminal),
    // Google: `invalid_grant` "Token has been expired or revoked.".
    shape(
        Some("invalid_grant"),
        "Token has been expired or revoked",
        Terminal,
    ),
    // Slack: `invalid_refresh_token`, `token_revoked`, `token_expired`.
    shape(Some("invalid_refresh_token"), "", Terminal),
    shape(Some("token_revoked"), "", Terminal),
    shape(Some("token_expired"), "", Terminal),
];

const fn shape(error: Option<&'static str>, fragment: &'static str, class: FailureClass) -> Shape {
    Shape {
        error,
        fragment,
        class,
    }
}

/// How the failure of a run that refreshes a connection is sorted, by the
/// OAuth `error` and `error_description` of the answer that failed it
/// (`None` when no answer came, or it held no OAuth error).
pub fn classify(
    profile: Option<&Profile>,
    error: Option<&str>,
    description: Option<&str>,
) -> FailureClass {
    let description = description.unwrap_or("");
    // The provider's own documented failures first.
    for failure in profile.map_or(&[][..], |p| p.failures.as_slice()) {
        let fragment = failure.description.as_deref().unwrap_or("");
        if error == Some(failure.error.as_str()) && description.contains(fragment) {
            return match failure.means {
                FailureMeaning::Reconsent => Terminal,
                FailureMeaning::Misconfigured => Misconfigured,
                FailureMeaning::Transient => Transient,
            };
        }
    }
    for shape in SHAPES {
        let error_fits = shape.error.is_none() || shape.error == error;
        if error_fits && description.contains(shape.fragment) {
            return shape.class;
        }
    }
    match error {
        Some("invalid_grant") => return Terminal,
        Some(
            "invalid_client" | "unauthorized_client" | "unsupported_grant_type" | "invalid_scope",
        ) => {
            return Misconfigured;
        }
        _ => {}
    }
    // No answer, 429, 5xx, `temporarily_unavailable`, and whatever else:
    // nothing says the token is dead, so the connection is degraded only.
    Transient
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_errors_and_the_providers_shapes_sort_as_documented() {
        let cases = [
            (Some("invalid_grant"), None, Terminal),
            (Some("invalid_client"), None, Misconfigured),
            (Some("unauthorized_client"), None, Misconfigured),
            (Some("unsupported_grant_type"), None, Misconfigured),
            (Some("invalid_scope"), None, Misconfigured),
            (None, None, Transient),
            (Some("temporarily_unavailable"), None, Transient),
            (Some("invalid_request"), None, Transient),
            (
                Some("invalid_request"),
                Some("AADSTS700082: The refresh token has expired due to inactivity."),
                Terminal,
            ),
            (
                Some("invalid_client"),
                Some("AADSTS50173: The provided grant has expired due to it being revoked"),
                Terminal,
            ),
            (
                Some("invalid_grant"),
                Some("Token has been expired or revoked."),
                Terminal,
            ),
            (
                Some("invalid_grant"),
                Some("expired access/refresh token"),
                Terminal,
            ),
            (
                Some("invalid_client"),
                Some("AADSTS7000222: The provided client secret keys are expired."),
                Misconfigured,
            ),
        ];
        for (error, description, class) in cases {
            assert_eq!(
                classify(None, error, description),
                class,
                "{error:?} {description:?}"
            );
        }
    }
}
