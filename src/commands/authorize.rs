//! `svc authorize`: the first tokens of an `oauth_client`, with a person's
//! consent, stored in one atomic update.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::context::{Context, Place};
use super::run::load_paths;
use crate::backend::connection::ConnectionKey;
use crate::backend::{Change, Changed};
use crate::commands::cli::{AuthorizeArgs, OutputFormat};
use crate::exit;
use crate::net::http::Http;
use crate::oauth::client::{Credentials, Endpoints};
use crate::oauth::consent::{self, StoreFailure, Target};
use crate::oauth::{Code, Error, code_flow, device_flow};
use crate::output::{outln, strip_controls};
use crate::program::Script;
use crate::redact::Redactor;
use crate::report::{self, Style};
use crate::secrets::Identities;
use crate::syntax::ast::*;

pub fn run(args: AuthorizeArgs) -> ExitCode {
    let events = Events {
        json: args.output == OutputFormat::Json,
    };
    // `[PATH] CLIENT`: with one word, the program is the project's.
    let (given, client_name) = match args.target.as_slice() {
        [client] => (Vec::new(), client.clone()),
        [path, client] => (vec![std::path::PathBuf::from(path)], client.clone()),
        _ => unreachable!("clap takes one or two words"),
    };
    let context = match Context::find(&given) {
        Ok(context) => context,
        Err(code) => return code,
    };
    let paths = match context.program(&given) {
        Ok(paths) => paths,
        Err(code) => return code,
    };
    let script = match load_paths(&paths) {
        Ok(script) => script,
        Err(code) => return code,
    };
    let tags = match args
        .tags
        .iter()
        .map(|t| crate::backend::accounts::parse_tag(t))
        .collect::<Result<BTreeMap<String, String>, String>>()
    {
        Ok(tags) => tags,
        Err(problem) => {
            return events.fail(
                &Error::new(Code::ConnectionRequired, problem)
                    .help("write each tag as `--tag KEY=VALUE`"),
                exit::USAGE,
            );
        }
    };
    let client = match admit(
        &script,
        &client_name,
        args.identity.as_deref(),
        args.connection.as_deref(),
    ) {
        Ok(client) => client,
        Err((error, status)) => return events.fail(&error, status),
    };
    let options = crate::backend::Options {
        lock_timeout: args.lock_timeout,
        ..crate::backend::Options::default()
    };
    let place = match context.place_with(&args.store, None, args.state_dir.as_deref(), &options) {
        Ok(place) => place,
        Err(code) => return code,
    };
    let keys = match place.identities() {
        Ok(keys) => Arc::new(keys),
        Err(error) => return super::store_error(&error),
    };
    let identity = args.identity.clone().unwrap_or_default();
    let flow = Flow {
        script: &script,
        client,
        place: &place,
        keys,
        identity,
        args: &args,
        events: &events,
        tags,
    };
    match super::block_on(flow.run()) {
        Ok(()) => exit::code(exit::SUCCESS),
        Err(error) => {
            let status = match error.code {
                Code::BadListen | Code::Unsupported | Code::MissingValue | Code::InvalidUrl => {
                    exit::USAGE
                }
                _ => exit::FAILURE,
            };
            events.fail(&error, status)
        }
    }
}

/// Finds the client and proves the identity may store its tokens, before
/// anything is read or sent.
fn admit<'s>(
    script: &'s Script,
    name: &str,
    identity: Option<&str>,
    connection: Option<&str>,
) -> Result<&'s OAuthClientDecl, (Error, u8)> {
    let usage = |error: Error| (error, exit::USAGE);
    let Some(client) = script.client(name) else {
        let names: Vec<&str> = script
            .program()
            .oauth_clients
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        let fallback = if names.is_empty() {
            "declare one: `oauth_client NAME { authorize_url ... token_url ... client_id ... client_auth ... stores { ... } }`".to_string()
        } else {
            format!("the clients are: {}", names.join(", "))
        };
        return Err(usage(
            Error::new(
                Code::UnknownClient,
                format!("no oauth_client is called `{name}`"),
            )
            .help(crate::suggest::did_you_mean(
                name,
                names.iter().copied(),
                fallback,
            )),
        ));
    };
    match (client.per_account, connection) {
        (true, None) => {
            return Err(usage(
                Error::new(
                    Code::ConnectionRequired,
                    format!(
                        "oauth_client `{name}` holds one connection per connected account \
                         (`per_account`): which account is this?"
                    ),
                )
                .help("pass `--connection ID`, the id your app knows the account by"),
            ));
        }
        (true, Some(id)) => {
            if let Err(problem) = crate::backend::accounts::check_id(id) {
                return Err(usage(Error::new(Code::ConnectionRequired, problem)));
            }
        }
        (false, Some(id)) if id != crate::backend::connection::DEFAULT_ID => {
            return Err(usage(
                Error::new(
                    Code::ConnectionRequired,
                    format!("oauth_client `{name}` holds one connection, `default`, not `{id}`"),
                )
                .help("drop `--connection`, or declare the client `per_account`"),
            ));
        }
        _ => {}
    }
    let stores: Vec<&TokenStore> = client.stores.iter().flat_map(|s| &s.entries).collect();
    if stores.is_empty() {
        return Err(usage(
            Error::new(
                Code::NothingToStore,
                format!("oauth_client `{name}` does not say where to keep the tokens"),
            )
            .help("add `stores { refresh_token = SECRET  access_token = SECRET }`"),
        ));
    }
    let may = |identity: &IdentityDecl| {
        stores
            .iter()
            .all(|s| script.can_update_secret(identity, s.secret.as_str()))
    };
    let authorizers: Vec<&str> = script
        .program()
        .identities
        .iter()
        .filter(|i| may(i))
        .map(|i| i.name.as_str())
        .collect();
    let who = if authorizers.is_empty() {
        "nobody may store its tokens yet".to_string()
    } else {
        format!("it may be run by: {}", authorizers.join(", "))
    };
    let Some(identity) = identity else {
        return Err(usage(
            Error::new(Code::NoIdentity, "who authorizes? `--as` is missing")
                .help(format!("pass `--as` with a user or service account; {who}")),
        ));
    };
    let Some(declared) = script.identity(identity) else {
        return Err(usage(
            Error::new(
                Code::UnknownIdentity,
                format!("no user or service account is called `{identity}`"),
            )
            .help(who),
        ));
    };
    if let Some(missing) = stores
        .iter()
        .find(|s| !script.can_update_secret(declared, s.secret.as_str()))
    {
        return Err((
            Error::new(
                Code::PermissionDenied,
                format!(
                    "`{identity}` may not update secret `{}`, which `{name}` stores",
                    missing.secret.text
                ),
            )
            .help(format!(
                "grant `update_secret {}` to a role of `{identity}`; {who}",
                missing.secret.text
            )),
            exit::PERMISSION_DENIED,
        ));
    }
    Ok(client)
}

/// One authorization, from the first request to the store update.
struct Flow<'a> {
    script: &'a Script,
    client: &'a OAuthClientDecl,
    place: &'a Place,
    keys: Arc<Identities>,
    identity: String,
    args: &'a AuthorizeArgs,
    events: &'a Events,
    /// `--tag`s: the connected account's tags.
    tags: BTreeMap<String, String>,
}

impl Flow<'_> {
    async fn run(&self) -> Result<(), Error> {
        let env = self.place.env.as_str();
        let backend = &self.place.backend;
        let document = backend
            .secrets
            .document(&self.keys)
            .await
            .map_err(|e| store_failed(&e))?;
        let mut redactor =
            Redactor::of(document.secrets.values().map(|entry| entry.value.expose()));
        let http = Http::default();
        let credentials = Credentials::resolve(self.client, &document, env, &mut redactor)?;
        let endpoints = Endpoints::resolve(
            self.client,
            &document,
            env,
            &http,
            &mut redactor,
            &mut Default::default(),
        )
        .await?;
        let scopes = self.client.scopes.as_ref().map(|s| s.value.as_str());
        let (tokens, response) = if self.args.device {
            let grant =
                device_flow::start(&http, &endpoints, &credentials, scopes, &mut redactor).await?;
            self.events.device_code(self.client, env, &grant);
            device_flow::poll(
                &http,
                &endpoints,
                &credentials,
                &grant,
                self.args.timeout,
                &mut redactor,
            )
            .await?
        } else {
            let pending =
                code_flow::start(&endpoints, &credentials.client_id, scopes, self.args.listen)
                    .await?;
            self.events.authorize_url(self.client, env, &pending);
            if !self.args.no_browser {
                open_browser(&pending.url);
            }
            if !self.events.json {
                eprintln!(
                    "waiting for the redirect to {} (up to {}; Ctrl-C gives up)",
                    pending.redirect_uri,
                    crate::syntax::duration::format(self.args.timeout)
                );
            }
            let code =
                code_flow::wait(&pending, endpoints.issuer.as_deref(), self.args.timeout).await?;
            let (tokens, response) = code_flow::exchange(
                &http,
                &endpoints,
                &credentials,
                &pending,
                &code,
                &mut redactor,
            )
            .await?;
            code_flow::check_nonce(&tokens, &pending)?;
            (tokens, response)
        };
        let target = self.target();
        let changes = consent::token_changes(self.client, &tokens)?;
        let by = format!(
            "{} (svc authorize {})",
            self.identity, self.client.name.text
        );
        let changed = target
            .store(
                &endpoints.token,
                &response,
                changes.clone(),
                &by,
                self.args.lock_timeout,
            )
            .await
            .map_err(|failure| match failure {
                StoreFailure::Busy(key, timeout) => Error::new(
                    Code::StoreFailed,
                    format!(
                        "a run of `{key}` did not finish within {}; nothing was stored",
                        crate::syntax::duration::format(timeout)
                    ),
                )
                .help("try again when it is done, or raise `--lock-timeout`"),
                StoreFailure::Store { error, kept } => {
                    let mut failed = store_failed(&error);
                    failed.message = redactor.redact(&failed.message);
                    if let Some(run_id) = kept {
                        failed.help = Some(format!(
                            "the tokens are kept in the recovery journal: `svc secret recover --env {} --reveal {run_id}` shows them",
                            self.place.env
                        ));
                    }
                    failed
                }
            })?;
        let stored: Vec<Stored> = changes
            .into_iter()
            .zip(changed)
            .filter_map(|(change, changed)| match change {
                Change::Set {
                    name, expires_at, ..
                } => Some(Stored {
                    name,
                    version: match changed {
                        Changed::Set(version) => version,
                        _ => 0,
                    },
                    expires_at,
                }),
                _ => None,
            })
            .collect();
        self.events.stored(self.client, env, &stored);
        // The connection works again: a person consented.
        let tags = (!self.tags.is_empty()).then(|| self.tags.clone());
        target.connected(&tokens, tags).await;
        Ok(())
    }

    /// The connection this authorization is for.
    fn target(&self) -> Target<'_> {
        let connection_id = self
            .args
            .connection
            .clone()
            .unwrap_or_else(|| crate::backend::connection::DEFAULT_ID.to_string());
        Target {
            script: self.script,
            client: self.client,
            backend: &self.place.backend,
            keys: &self.keys,
            key: ConnectionKey {
                client: self.client.name.text.clone(),
                connection_id,
            },
        }
    }
}

pub(super) fn store_failed(error: &crate::secrets::Error) -> Error {
    let mut failed = Error::new(Code::StoreFailed, error.to_string());
    failed.help = error.help();
    failed
}

/// Opens the URL in the user's browser, when there is a display for one;
/// the URL is printed either way.
fn open_browser(url: &url::Url) {
    let display = cfg!(any(target_os = "macos", windows))
        || std::env::var_os("DISPLAY").is_some()
        || std::env::var_os("WAYLAND_DISPLAY").is_some();
    if display && let Err(e) = open::that_detached(url.as_str()) {
        eprintln!("note: cannot open a browser ({e}); open the URL above by hand");
    }
}

struct Stored {
    name: String,
    version: u64,
    expires_at: Option<DateTime<Utc>>,
}

/// What the command tells the person, or (`--output json`) a script: one
/// JSON object a line for each event.
struct Events {
    json: bool,
}

impl Events {
    fn authorize_url(&self, client: &OAuthClientDecl, env: &str, pending: &code_flow::Pending) {
        // Built by svc, but from an endpoint discovery may have named.
        let url = strip_controls(pending.url.as_str());
        if self.json {
            outln!(
                "{}",
                json!({
                    "event": "authorize_url",
                    "client": client.name.text,
                    "environment": env,
                    "url": url,
                    "redirect_uri": pending.redirect_uri,
                })
            );
        } else {
            outln!(
                "Open this URL in a browser to authorize `{}` in `{env}`:\n\n  {url}\n",
                client.name.text,
            );
        }
    }

    fn device_code(&self, client: &OAuthClientDecl, env: &str, grant: &device_flow::Grant) {
        // All three are the server's words.
        let verification_uri = strip_controls(&grant.verification_uri);
        let complete = grant
            .verification_uri_complete
            .as_deref()
            .map(strip_controls);
        let user_code = strip_controls(&grant.user_code);
        if self.json {
            outln!(
                "{}",
                json!({
                    "event": "device_code",
                    "client": client.name.text,
                    "environment": env,
                    "verification_uri": verification_uri,
                    "verification_uri_complete": complete,
                    "user_code": user_code,
                    "expires_in": grant.expires_in.as_secs(),
                })
            );
        } else {
            outln!(
                "To authorize `{}` in `{env}`, open {verification_uri} and enter the code\n\n  {user_code}\n",
                client.name.text,
            );
            if let Some(complete) = &complete {
                outln!("or open {complete}\n");
            }
            eprintln!(
                "waiting for the approval (the code expires in {}; Ctrl-C gives up)",
                crate::syntax::duration::format(grant.expires_in)
            );
        }
    }

    fn stored(&self, client: &OAuthClientDecl, env: &str, stored: &[Stored]) {
        if self.json {
            let secrets: Vec<serde_json::Value> = stored
                .iter()
                .map(|s| {
                    json!({
                        "name": s.name,
                        "version": s.version,
                        "expires_at": s.expires_at,
                    })
                })
                .collect();
            outln!(
                "{}",
                json!({
                    "event": "stored",
                    "client": client.name.text,
                    "environment": env,
                    "secrets": secrets,
                })
            );
            return;
        }
        let parts: Vec<String> = stored
            .iter()
            .map(|s| match s.expires_at {
                Some(at) => format!(
                    "{} (version {}, expires {})",
                    s.name,
                    s.version,
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
                None => format!("{} (version {})", s.name, s.version),
            })
            .collect();
        outln!("stored {} in `{env}`", parts.join(", "));
    }

    /// Reports a failure (already redacted) and returns the exit code.
    /// The message and help may quote the server (an `error_description`,
    /// an issuer, a URL): neither reaches the terminal unstripped.
    fn fail(&self, error: &Error, status: u8) -> ExitCode {
        let message = strip_controls(&error.message);
        let help = error.help.as_deref().map(strip_controls);
        if self.json {
            outln!(
                "{}",
                json!({
                    "event": "error",
                    "code": error.code.as_str(),
                    "message": message,
                    "help": help,
                })
            );
        }
        eprint!(
            "{}",
            report::render_error(
                error.code.as_str(),
                &message,
                help.as_deref(),
                Style::for_stderr()
            )
        );
        exit::code(status)
    }
}
