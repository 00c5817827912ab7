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
    /// The connection it names does not exist (or the caller may not
    /// reach it): exit 2, HTTP 404.
    NotFound,
}

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
        // A per-account endpoint runs for exactly one connection, which
        // its caller names; no other endpoint takes one.
        match (self.per_account.get(&key), &request.connection) {
            (Some(client), None) => {
                return Err(refuse(
                    "svc::run::connection_required",
                    format!("`{key}` runs for one connected account of `{client}`: name it"),
                    Some(
                        "pass `--connection ID` (over HTTP: `?connection=ID`); `svc connection \
                         list` shows the ids"
                            .into(),
                    ),
                ));
            }
            (None, Some(_)) => {
                return Err(refuse(
                    "svc::run::not_per_account",
                    format!("`{key}` does not run for a connected account"),
                    Some("drop the connection: it reads no per-account secret".into()),
                ));
            }
            (Some(_), Some(id)) => {
                if let Err(problem) = crate::backend::accounts::check_id(id) {
                    return Err(refuse(
                        "svc::connection::invalid_id",
                        problem,
                        Some(crate::backend::accounts::ID_HELP.into()),
                    ));
                }
            }
            (None, None) => {}
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
        // A per-account secret has its value in the run's connection.
        let account = match self.account_of(request) {
            Some(account) => {
                let keys = self.keys.as_ref().ok_or_else(|| self.no_identity())?;
                Some(self.backend.accounts.document(keys, &account).await?)
            }
            None => None,
        };
        // Without an account of its own, a run reaches per-account secrets
        // only in an account it names (`for_connection`): checked there.
        let has_value = |name: &str| match (&account, self.script.secret(name)) {
            (Some(values), Some(secret)) if secret.per_account => values.get(name).is_some(),
            (None, Some(secret)) if secret.per_account => true,
            _ => document.get(name).is_some(),
        };
        let missing: Vec<&str> = reads
            .iter()
            .map(String::as_str)
            .filter(|name| !has_value(name))
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
            help: Some(match &request.connection {
                Some(id) => format!(
                    "connect the account first: `svc authorize ... --connection {id}`, or a \
                     hosted consent link (docs/connections.md)"
                ),
                None => format!(
                    "set {pronoun} first: {}",
                    missing
                        .iter()
                        .map(|n| format!("`svc secret set {n} --env {env}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
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
