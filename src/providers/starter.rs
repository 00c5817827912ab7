//! The starter program of a profile, as `svc init --provider NAME` writes
//! it: the client, its secrets, a role, the refresh (or client
//! credentials) endpoint and a schedule that keeps the access token fresh.
//! Every profile's starter checks clean (tests/providers.rs), its
//! parameters' placeholders included.

use std::fmt::Write as _;
use std::time::Duration;

use super::{AuthMethod, Profile};

/// The program, ready to edit.
pub fn program(profile: &Profile) -> String {
    let name = &profile.name;
    let upper = name.to_uppercase();
    let mut out = String::new();
    let refresh = profile.refresh.is_some() && profile.authorization.is_some();
    let machine = !refresh && profile.client_credentials.is_some();
    let method = profile.client_auth.methods[0];
    let secret_auth = !matches!(method, AuthMethod::None | AuthMethod::PrivateKeyJwt);
    let _ = writeln!(
        out,
        "// {} tokens, kept fresh by svc from its `{name}` provider profile\n\
         // (`svc provider show {name}`: endpoints, rotation, expiries, sources).\n\
         //\n\
         // 1. Register an app with {} and set its values:\n\
         //      svc secret set {upper}_CLIENT_ID",
        profile.title, profile.title
    );
    if secret_auth {
        let _ = writeln!(out, "//      svc secret set {upper}_CLIENT_SECRET");
    }
    if refresh {
        let _ = writeln!(
            out,
            "// 2. Connect an account (register http://127.0.0.1 as a redirect URL):\n\
             //      svc authorize {name} --as ops\n\
             // 3. Refresh now, and let `svc serve` do it on schedule:\n\
             //      svc run {name}_tokens.refresh --as ops"
        );
    } else if machine {
        let _ = writeln!(
            out,
            "// 2. Fetch a token now, and let `svc serve` do it on schedule:\n\
             //      svc run {name}_tokens.token --as ops"
        );
    } else if profile.authorization.is_some() {
        let _ = writeln!(
            out,
            "// 2. Connect an account (its tokens do not expire, so nothing refreshes them):\n\
             //      svc authorize {name} --as ops"
        );
    }
    for note in &profile.notes {
        let _ = writeln!(out, "//\n// Note: {note}");
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "secret {upper}_CLIENT_ID     {{ environment_specific }}"
    );
    if secret_auth {
        let _ = writeln!(
            out,
            "secret {upper}_CLIENT_SECRET {{ environment_specific locked }}"
        );
    }
    if refresh {
        let _ = writeln!(
            out,
            "secret {upper}_REFRESH_TOKEN {{ environment_specific }}"
        );
    }
    let _ = writeln!(
        out,
        "secret {upper}_ACCESS_TOKEN  {{ environment_specific }}\n"
    );

    let _ = writeln!(out, "oauth_client {name} {{");
    let required: Vec<String> = profile
        .parameters
        .iter()
        .filter(|p| p.default.is_none())
        .map(|p| format!("{} = \"{}\"", p.name, p.example))
        .collect();
    if required.is_empty() {
        let _ = writeln!(out, "  provider    {name}");
    } else {
        let _ = writeln!(
            out,
            "  // Replace the example: {}.",
            profile
                .parameters
                .iter()
                .filter(|p| p.default.is_none())
                .map(|p| format!("{} is {}", p.name, lower_first(&p.description)))
                .collect::<Vec<_>>()
                .join("; ")
        );
        let _ = writeln!(out, "  provider    {name}({})", required.join(", "));
    }
    let _ = writeln!(out, "  client_id   secret.{upper}_CLIENT_ID");
    let auth = match method {
        AuthMethod::ClientSecretBasic => {
            format!("client_secret_basic(secret.{upper}_CLIENT_SECRET)")
        }
        AuthMethod::ClientSecretPost => format!("client_secret_post(secret.{upper}_CLIENT_SECRET)"),
        AuthMethod::None | AuthMethod::PrivateKeyJwt => "none".to_string(),
    };
    let _ = writeln!(out, "  client_auth {auth}");
    if !profile.offline_scopes().is_empty() {
        let separator = profile
            .authorization
            .as_ref()
            .and_then(|a| a.scope_separator.as_deref())
            .unwrap_or(" ");
        let _ = writeln!(
            out,
            "  scopes      \"{}\"   // and the scopes your calls need",
            profile.offline_scopes().join(separator)
        );
    }
    if refresh {
        let _ = writeln!(
            out,
            "  stores {{\n    refresh_token = {upper}_REFRESH_TOKEN\n    access_token  = {upper}_ACCESS_TOKEN\n  }}"
        );
    } else {
        let _ = writeln!(out, "  stores {{ access_token = {upper}_ACCESS_TOKEN }}");
    }
    out.push_str("}\n\n");

    let _ = writeln!(out, "role {name}_keeper {{");
    if refresh || machine {
        let _ = writeln!(out, "  grant run {name}_tokens.*");
    }
    if refresh {
        let _ = writeln!(out, "  grant update_secret {upper}_REFRESH_TOKEN");
    }
    let _ = writeln!(out, "  grant update_secret {upper}_ACCESS_TOKEN\n}}\n");
    let _ = writeln!(out, "user ops {{ roles {name}_keeper }}");
    if refresh || machine {
        let _ = writeln!(out, "service_account scheduler {{ roles {name}_keeper }}");
        let (endpoint, statement, what) = if refresh {
            ("refresh", "refresh_tokens", "Refresh")
        } else {
            ("token", "client_credentials", "Fetch")
        };
        let _ = writeln!(
            out,
            "\nservice {name}_tokens {{\n  action {endpoint} {{ {statement} client({name}) }}\n\n  \
             endpoint {endpoint} {{\n    description \"{what} the {} access token\"\n    \
             methods GET POST\n    log enabled\n    process {endpoint}\n  }}\n}}\n",
            profile.title
        );
        let _ = writeln!(
            out,
            "schedule {name}_fresh {{\n  endpoint {name}_tokens.{endpoint}\n  service_account scheduler\n  every {}\n}}",
            crate::syntax::duration::format(interval(profile))
        );
    }
    out
}

/// How often the schedule refreshes: half the documented lifetime of an
/// access token (an hour when none is documented), at least a minute.
fn interval(profile: &Profile) -> Duration {
    let lifetime = profile
        .access_token
        .as_ref()
        .and_then(|a| a.lifetime)
        .unwrap_or(Duration::from_secs(7200));
    let half = Duration::from_secs(lifetime.as_secs() / 2);
    // Whole minutes, so the schedule reads as people write it.
    Duration::from_secs((half.as_secs() / 60).max(1) * 60)
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
