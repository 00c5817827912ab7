//! Admission: whether a request may run at all, decided before anything
//! runs.

use super::engine::{Admitted, Engine, RunRequest};
use crate::program::Script;

/// A run that was refused before it started.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
    pub help: Option<String>,
    pub kind: RefusalKind,
}

/// Why a run was refused, as exit codes and HTTP statuses tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// A wrong request: exit 2, HTTP 400 (or 409 for what only the
    /// operator can fix).
    Invalid,
    /// The identity may not: exit 3, HTTP 403.
    Denied,
    /// A connection the run refreshes needs a person: exit 4, HTTP 409.
    NeedsPerson(crate::backend::Health),
}

/// The refusal of a run for a connected account (`per_account`), which
/// svc checks but does not run yet.
pub const PER_ACCOUNT_NOT_RUN: &str = "svc::run::per_account_not_run_yet";

impl Engine {
    /// Checks a request before running it: the endpoint exists, allows the
    /// method, and the identity exists and may run it.
    pub fn admit(&self, mut request: RunRequest) -> Result<Admitted, Refusal> {
        let refuse = |code, message: String, help: Option<String>| Refusal {
            code,
            message,
            help,
            kind: RefusalKind::Invalid,
        };
        let key = format!("{}.{}", request.service, request.endpoint);
        let Some(endpoint) = self.script.endpoint(&request.service, &request.endpoint) else {
            return Err(unknown_endpoint(&self.script, &key));
        };
        if !endpoint.allows(&request.method) {
            let methods: Vec<&str> = endpoint.methods.iter().map(|m| m.as_str()).collect();
            return Err(Refusal {
                code: "svc::run::method_not_allowed",
                message: format!("`{key}` does not allow {}", request.method),
                help: Some(format!("it allows {}", methods.join(", "))),
                kind: RefusalKind::Invalid,
            });
        }
        let Some(identity) = self.script.identity(&request.identity) else {
            let runners = self.script.runners(&request.service, &request.endpoint);
            return Err(refuse(
                "svc::run::unknown_identity",
                format!(
                    "no user or service account is called `{}`",
                    request.identity
                ),
                Some(runners_help(&key, &runners)),
            ));
        };
        if !self
            .script
            .can_run(identity, &request.service, &request.endpoint)
        {
            let runners = self.script.runners(&request.service, &request.endpoint);
            return Err(Refusal {
                code: "svc::run::permission_denied",
                message: format!("`{}` may not run `{key}`", request.identity),
                help: Some(runners_help(&key, &runners)),
                kind: RefusalKind::Denied,
            });
        }
        // Runs for connected accounts are checked, not yet run: the values
        // of per-account secrets are not kept per account yet.
        if let Some((reached, client)) = self.per_account.get(&key) {
            let through = if *reached == key {
                String::new()
            } else {
                format!(" (through `{reached}`)")
            };
            return Err(refuse(
                PER_ACCOUNT_NOT_RUN,
                format!(
                    "`{key}` runs for one connected account of `{client}`{through}: svc checks \
                     per-account programs, but does not run them yet"
                ),
                Some(format!(
                    "keep one connection per environment (remove `per_account` from \
                     `oauth_client {client}` and its secrets) to run it today"
                )),
            ));
        }
        // The declared parameters, on every way in: the command line, HTTP
        // and schedules all come through here.
        let given = std::mem::take(&mut request.params);
        request.params = super::params::validate(endpoint, &key, given).map_err(|e| Refusal {
            code: "svc::run::invalid_param",
            message: e.message,
            help: Some(e.help),
            kind: RefusalKind::Invalid,
        })?;
        Ok(Admitted::new(request))
    }

    /// Admits and runs a request, once every secret it may read has a
    /// value.
    pub async fn admit_and_run(&self, request: RunRequest) -> Result<super::Finished, Refusal> {
        let admitted = self.admit(request)?;
        match self.preflight(admitted.request()).await {
            Ok(None) => {}
            Ok(Some(refusal)) => return Err(refusal),
            Err(error) => return Err(super::engine::store_refusal(&error)),
        }
        Ok(self.run(admitted).await)
    }

    /// Whether an admitted run can start: every connection it refreshes
    /// works (see `run::connections`), and every secret it may read has a
    /// value ([`Engine::missing_values`]).
    pub async fn preflight(
        &self,
        request: &RunRequest,
    ) -> Result<Option<Refusal>, crate::secrets::Error> {
        if let Some(refusal) = self.connection_refusal(request).await? {
            return Ok(Some(refusal));
        }
        self.missing_values(request).await
    }

    /// Whether a secret the run may read has no value in the environment:
    /// a run that went on would send an empty credential (and a dry run
    /// would call that a success). Checked before anything is sent; the
    /// store's own error (no identity, no store, unreadable) when a run
    /// that reads or updates a secret cannot open it.
    pub async fn missing_values(
        &self,
        request: &RunRequest,
    ) -> Result<Option<Refusal>, crate::secrets::Error> {
        let key = format!("{}.{}", request.service, request.endpoint);
        let reads = self.reading.get(&key);
        if reads.is_none() && !self.updates_secrets_key(&key) {
            return Ok(None);
        }
        let (document, _) = self.store_document().await?;
        let Some(reads) = reads else {
            return Ok(None);
        };
        let missing: Vec<&str> = reads
            .iter()
            .map(String::as_str)
            .filter(|name| document.get(name).is_none())
            .collect();
        if missing.is_empty() {
            return Ok(None);
        }
        let env = self.env();
        let names = missing
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let (noun, pronoun) = if missing.len() == 1 {
            ("a secret that has", "it")
        } else {
            ("secrets that have", "them")
        };
        Ok(Some(Refusal {
            code: "svc::store::missing_value",
            message: format!("`{key}` reads {noun} no value in environment `{env}`: {names}"),
            help: Some(format!(
                "set {pronoun} first: {}",
                missing
                    .iter()
                    .map(|n| format!("`svc secret set {n} --env {env}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            kind: RefusalKind::Invalid,
        }))
    }
}

/// The refusal of an endpoint the script does not declare, with the
/// nearest name or the list of them.
pub fn unknown_endpoint(script: &Script, key: &str) -> Refusal {
    let known = script.endpoint_keys();
    Refusal {
        code: "svc::run::unknown_endpoint",
        message: format!("unknown endpoint `{key}`"),
        help: Some(crate::suggest::did_you_mean(
            key,
            known.iter().map(String::as_str),
            format!("the endpoints are: {}", known.join(", ")),
        )),
        kind: RefusalKind::Invalid,
    }
}

fn runners_help(key: &str, runners: &[String]) -> String {
    if runners.is_empty() {
        format!("no user or service account may run `{key}`; grant `run {key}` to a role")
    } else {
        format!(
            "`{key}` may be run by: {} (pass one with `--as`)",
            runners.join(", ")
        )
    }
}
