//! `svc connection revoke` and `delete`: a connection's tokens revoked at
//! the provider (RFC 7009), then cleared in one update, and the connection
//! marked `revoked` (runs that refresh it stop, exit 4, until a person
//! authorizes again) or forgotten. `oauth::disconnect` does it; this is
//! the command line around it.

use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;

use super::context::Place;
use crate::backend::connection::ConnectionKey;
use crate::commands::cli::RevokeArgs;
use crate::exit;
use crate::net::http;
use crate::oauth::consent::Target;
use crate::oauth::disconnect::{Disconnect, Done, Failure};
use crate::output::{outln, strip_controls};
use crate::program::Script;
use crate::report::{self, Style};

/// `svc connection revoke`, or with `delete`, `svc connection delete`
/// (which forgets the connection afterwards).
pub fn run(args: RevokeArgs, delete: bool) -> ExitCode {
    let options = crate::backend::Options {
        lock_timeout: args.lock_timeout,
        ..crate::backend::Options::default()
    };
    let (script, place) = match super::connection::open(&args.place, &options) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let client = match super::connection::find(&script, &args.client, &args.connection) {
        Ok(client) => client,
        Err(code) => return code,
    };
    let keys = match place.identities() {
        Ok(keys) => Arc::new(keys),
        Err(error) => return super::store_error(&error),
    };
    let key = ConnectionKey {
        client: client.name.text.clone(),
        connection_id: args.connection.clone(),
    };
    let audit_key = key.clone();
    let audit = |names: Vec<String>| -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), crate::secrets::Error>> + Send + '_>,
    > {
        let (place, keys, key) = (&place, keys.clone(), audit_key.clone());
        Box::pin(async move {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            super::secret::audit_reads(
                place,
                &keys,
                &names,
                "revoke",
                client.per_account.then_some(&key),
            )
            .await
        })
    };
    let disconnect = Disconnect {
        target: Target {
            script: &script,
            client,
            backend: &place.backend,
            keys: &keys,
            key,
        },
        local_only: args.local_only,
        delete,
        lock_timeout: args.lock_timeout,
        by: format!(
            "{} (svc connection {} {})",
            keys.label,
            if delete { "delete" } else { "revoke" },
            client.name.text
        ),
        audit: &audit,
    };
    match super::block_on(disconnect.run()) {
        Ok(done) => {
            done.print(&args, &place, &script, delete);
            if done.partial.is_some() {
                exit::code(exit::FAILURE)
            } else {
                exit::code(exit::SUCCESS)
            }
        }
        Err(failure) => report(failure, args.place.json),
    }
}

/// How the command line reports a failure: printed (the provider's words
/// stripped of control characters), and its exit code.
fn report(failure: Failure, json: bool) -> ExitCode {
    let message = strip_controls(&failure.message);
    let help = failure.help.as_deref().map(strip_controls);
    if json {
        outln!(
            "{}",
            json!({"error": {"code": failure.code, "message": message, "help": help}})
        );
    }
    eprint!(
        "{}",
        report::render_error(failure.code, &message, help.as_deref(), Style::for_stderr())
    );
    exit::code(if failure.usage {
        exit::USAGE
    } else {
        exit::FAILURE
    })
}

trait Print {
    fn print(&self, args: &RevokeArgs, place: &Place, script: &Script, delete: bool);
}

impl Print for Done {
    fn print(&self, args: &RevokeArgs, place: &Place, script: &Script, delete: bool) {
        let per_account = script
            .client(&self.key.client)
            .is_some_and(|c| c.per_account);
        let reconsent = script.reconsent_command_for(
            &self.key.client,
            per_account.then_some(self.key.connection_id.as_str()),
            &place.env,
            None,
        );
        let endpoint = self.endpoint.as_ref().map(http::display_url);
        if args.place.json {
            let partial = self.partial.as_ref().map(|e| {
                json!({"code": e.code.as_str(), "message": strip_controls(&e.message), "help": e.help.as_deref().map(strip_controls)})
            });
            outln!(
                "{}",
                json!({
                    "client": self.key.client,
                    "connection_id": self.key.connection_id,
                    "environment": place.env,
                    "state": if delete { "deleted" } else { "revoked" },
                    "revocation_endpoint": endpoint,
                    "revoked": self.revoked.iter().map(|h| h.as_str()).collect::<Vec<_>>(),
                    "not_revoked_at_provider": self.not_asked,
                    "cleared": self.cleared,
                    "error": partial,
                    "reconsent_command": reconsent,
                })
            );
        } else {
            let client = &self.key.client;
            match (&endpoint, self.not_asked) {
                (_, Some(why)) => outln!(
                    "not revoked at the provider: {why}; the tokens stay valid there until they \
                     expire or are revoked in the provider's console"
                ),
                (Some(endpoint), None) => {
                    for hint in &self.revoked {
                        outln!("revoked {} of `{client}` at {endpoint}", hint.noun());
                    }
                }
                (None, None) => {}
            }
            let cleared = if self.cleared.is_empty() {
                "nothing to clear".to_string()
            } else {
                format!("cleared {}", self.cleared.join(", "))
            };
            if delete {
                outln!(
                    "{cleared} in `{}`; the connection `{}` is deleted",
                    place.env,
                    self.key
                );
            } else {
                outln!(
                    "{cleared} in `{}`; the connection `{}` is revoked",
                    place.env,
                    self.key
                );
                outln!("re-consent: {reconsent}");
            }
        }
        if let Some(error) = &self.partial {
            eprint!(
                "{}",
                report::render_error(
                    error.code.as_str(),
                    &strip_controls(&error.message),
                    error.help.as_deref().map(strip_controls).as_deref(),
                    Style::for_stderr()
                )
            );
        }
    }
}
