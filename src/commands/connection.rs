//! `svc connection list` and `svc connection show`: whether each
//! `oauth_client`'s tokens still work in an environment, and what a person
//! does when they do not (`svc connection revoke` is in `revoke`).

use std::process::ExitCode;

use chrono::{DateTime, SecondsFormat, Utc};

use super::context::Context;
use super::{block_on, store_error, usage_error};
use crate::backend::connection::{ConnectionKey, ConnectionState, DEFAULT_ID, Health};
use crate::commands::cli::{ConnectionCommand, ConnectionPlace};
use crate::exit;
use crate::output::outln;
use crate::program::Script;
use crate::schedule::connections::{self, ConnectionStatus, Sources};
use crate::syntax::ast::OAuthClientDecl;

pub fn run(command: ConnectionCommand) -> ExitCode {
    match command {
        ConnectionCommand::List {
            client,
            state,
            tags,
            prefix,
            place,
        } => list(place, client, state, tags, prefix),
        ConnectionCommand::Show {
            client,
            connection,
            place,
        } => show(place, &client, &connection),
        ConnectionCommand::Tag {
            client,
            connection,
            tags,
            place,
        } => tag(place, &client, &connection, &tags),
        ConnectionCommand::Import {
            client,
            file,
            place,
        } => super::import::run(place, &client, &file),
        ConnectionCommand::Revoke(args) => super::revoke::run(args, false),
        ConnectionCommand::Delete(args) => super::revoke::run(args, true),
    }
}

/// What a listing and a status read: the program, the environment, the
/// single-connection clients' states and the store, when it opens.
struct Opened {
    script: Script,
    place: super::context::Place,
    states: std::collections::BTreeMap<ConnectionKey, ConnectionState>,
    document: Option<std::sync::Arc<crate::secrets::Document>>,
    schedules: std::collections::BTreeMap<String, crate::backend::ScheduleState>,
}

impl Opened {
    fn new(place_args: &ConnectionPlace) -> Result<Opened, ExitCode> {
        let (script, place) = open(place_args, &crate::backend::Options::default())?;
        let states = block_on(place.backend.connections.load()).map_err(|e| store_error(&e))?;
        // Expiries, when the store opens; the states do not need it.
        let document = place
            .identities()
            .ok()
            .and_then(|ids| super::secret::document(&place, &ids).ok());
        let schedules = block_on(place.backend.schedules.load()).unwrap_or_default();
        Ok(Opened {
            script,
            place,
            states,
            document,
            schedules,
        })
    }

    fn sources(&self) -> Sources<'_> {
        Sources {
            script: &self.script,
            environment: &self.place.env,
            states: &self.states,
            document: self.document.as_deref(),
            schedules: &self.schedules,
            now: Utc::now(),
        }
    }
}

fn list(
    place_args: ConnectionPlace,
    client: Option<String>,
    state: Option<String>,
    tags: Vec<String>,
    prefix: Option<String>,
) -> ExitCode {
    let json = place_args.json;
    let opened = match Opened::new(&place_args) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let script = &opened.script;
    if let Some(name) = &client
        && let Err(code) = find_client(script, name)
    {
        return code;
    }
    let state = match state.as_deref().map(parse_state).transpose() {
        Ok(state) => state,
        Err(code) => return code,
    };
    let mut reach = crate::backend::Reach {
        prefix,
        ..Default::default()
    };
    for tag in &tags {
        match crate::backend::accounts::parse_tag(tag) {
            Ok((key, value)) => {
                reach.tags.insert(key, value);
            }
            Err(problem) => {
                return usage_error(
                    "svc::connection::invalid_tag",
                    &problem,
                    Some("write `--tag KEY=VALUE`"),
                );
            }
        }
    }
    let sources = opened.sources();
    // The single-connection clients first, in the program's order; then
    // every connected account, page by page, in the order of their ids.
    let mut shown: Vec<ConnectionStatus> = if reach.is_all() {
        connections::statuses(&sources)
            .into_iter()
            .filter(|c| client.as_ref().is_none_or(|name| *name == c.client))
            .filter(|c| state.is_none_or(|s| s == c.state.state))
            .collect()
    } else {
        Vec::new()
    };
    for declared in connections::all_clients(script).filter(|c| c.per_account) {
        if client
            .as_ref()
            .is_some_and(|name| name != declared.name.as_str())
        {
            continue;
        }
        let mut query = crate::backend::ConnectionQuery {
            client: Some(declared.name.text.clone()),
            state,
            reach: reach.clone(),
            after: None,
            limit: crate::backend::accounts::MAX_PAGE,
        };
        loop {
            let page = match block_on(opened.place.backend.connections.page(&query)) {
                Ok(page) => page,
                Err(error) => return store_error(&error),
            };
            for (key, recorded) in &page.connections {
                shown.push(connections::account_status(
                    &sources, declared, key, recorded, None,
                ));
            }
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
    }
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&shown).expect("a connection serializes")
        );
        return exit::code(exit::SUCCESS);
    }
    if shown.is_empty() {
        if connections::all_clients(script).next().is_none() {
            eprintln!("the program has no oauth_client with `stores`: it holds no connection");
        } else {
            eprintln!("no connection matches");
        }
    }
    for connection in &shown {
        print_human(connection, false);
    }
    exit::code(exit::SUCCESS)
}

fn show(place_args: ConnectionPlace, client: &str, connection: &str) -> ExitCode {
    let json = place_args.json;
    let opened = match Opened::new(&place_args) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let found = match find(&opened.script, client, connection) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let sources = opened.sources();
    let status = if found.per_account {
        let key = ConnectionKey {
            client: client.to_string(),
            connection_id: connection.to_string(),
        };
        let recorded = match block_on(opened.place.backend.connections.load_one(&key)) {
            Ok(Some(recorded)) => recorded,
            Ok(None) => return unknown_connection(client, connection),
            Err(error) => return store_error(&error),
        };
        let values = opened
            .place
            .identities()
            .ok()
            .and_then(|ids| block_on(opened.place.backend.accounts.document(&ids, &key)).ok());
        connections::account_status(&sources, found, &key, &recorded, values.as_deref())
    } else {
        match connections::statuses(&sources)
            .into_iter()
            .find(|c| c.client == client)
        {
            Some(status) => status,
            None => return unknown_connection(client, connection),
        }
    };
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&status).expect("a connection serializes")
        );
    } else {
        print_human(&status, true);
    }
    exit::code(exit::SUCCESS)
}

fn tag(place_args: ConnectionPlace, client: &str, connection: &str, tags: &[String]) -> ExitCode {
    let (script, place) = match open(&place_args, &crate::backend::Options::default()) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let found = match find(&script, client, connection) {
        Ok(found) => found,
        Err(code) => return code,
    };
    if !found.per_account {
        return usage_error(
            "svc::connection::not_per_account",
            &format!("`{client}` holds one connection, which has no tags"),
            Some("tags are for the connected accounts of a `per_account` client"),
        );
    }
    let mut parsed = std::collections::BTreeMap::new();
    for tag in tags {
        match crate::backend::accounts::parse_tag(tag) {
            Ok((key, value)) => {
                parsed.insert(key, value);
            }
            Err(problem) => {
                return usage_error("svc::connection::invalid_tag", &problem, None);
            }
        }
    }
    if let Some(problem) = crate::backend::accounts::invalid_tags(&parsed) {
        return usage_error("svc::connection::invalid_tag", &problem, None);
    }
    let key = ConnectionKey {
        client: client.to_string(),
        connection_id: connection.to_string(),
    };
    match block_on(place.backend.connections.set_tags(&key, parsed.clone())) {
        Ok(true) => {
            if place_args.json {
                outln!(
                    "{}",
                    serde_json::json!({"client": client, "connection_id": connection, "tags": parsed})
                );
            } else {
                outln!("tagged `{key}`: {} tag(s)", parsed.len());
            }
            exit::code(exit::SUCCESS)
        }
        Ok(false) => unknown_connection(client, connection),
        Err(error) => store_error(&error),
    }
}

fn parse_state(text: &str) -> Result<Health, ExitCode> {
    Health::ALL
        .into_iter()
        .find(|h| h.as_str() == text)
        .ok_or_else(|| {
            usage_error(
                "svc::connection::invalid_state",
                &format!("`{text}` is not a connection state"),
                Some("the states are: healthy, degraded, needs_reconsent, misconfigured, revoked"),
            )
        })
}

fn unknown_connection(client: &str, connection: &str) -> ExitCode {
    usage_error(
        "svc::connection::unknown_connection",
        &format!("`{client}` has no connection `{connection}`"),
        Some(&format!(
            "`svc connection list --client {client}` shows its connections"
        )),
    )
}

/// The program and the environment's backend a connection command reads.
pub(super) fn open(
    args: &ConnectionPlace,
    options: &crate::backend::Options,
) -> Result<(Script, super::context::Place), ExitCode> {
    let context = Context::find(&args.paths)?;
    let paths = context.program(&args.paths)?;
    let place = context.place_with(&args.store, None, args.state_dir.as_deref(), options)?;
    let script = super::run::load_paths(&paths)?;
    Ok((script, place))
}

/// An oauth_client that holds connections.
fn find_client<'s>(script: &'s Script, client: &str) -> Result<&'s OAuthClientDecl, ExitCode> {
    let clients: Vec<&OAuthClientDecl> = connections::all_clients(script).collect();
    clients
        .iter()
        .find(|c| c.name.as_str() == client)
        .copied()
        .ok_or_else(|| {
            let names: Vec<&str> = clients.iter().map(|c| c.name.as_str()).collect();
            usage_error(
                "svc::connection::unknown_client",
                &format!("no oauth_client called `{client}` stores tokens"),
                Some(&crate::suggest::did_you_mean(
                    client,
                    names.iter().copied(),
                    if names.is_empty() {
                        "the program has no oauth_client with `stores`".into()
                    } else {
                        format!("the connections are those of: {}", names.join(", "))
                    },
                )),
            )
        })
}

/// The client that holds the connection named on the command line: its
/// one connection `default`, or a connected account's id (whether the
/// account exists is the backend's to say).
pub(super) fn find<'s>(
    script: &'s Script,
    client: &str,
    connection: &str,
) -> Result<&'s OAuthClientDecl, ExitCode> {
    let found = find_client(script, client)?;
    if found.per_account {
        if let Err(problem) = crate::backend::accounts::check_id(connection) {
            return Err(usage_error(
                "svc::connection::invalid_id",
                &problem,
                Some(crate::backend::accounts::ID_HELP),
            ));
        }
        if connection == DEFAULT_ID {
            return Err(usage_error(
                "svc::connection::connection_required",
                &format!("`{client}` holds one connection per connected account: which one?"),
                Some("pass `--connection ID`; `svc connection list` shows the ids"),
            ));
        }
    } else if connection != DEFAULT_ID {
        return Err(usage_error(
            "svc::connection::unknown_connection",
            &format!("`{client}` has no connection `{connection}`"),
            Some("a client holds one connection per environment, `default`"),
        ));
    }
    Ok(found)
}

fn print_human(c: &ConnectionStatus, detailed: bool) {
    let time = |t: &Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
    let s = &c.state;
    let since = time(&s.since).map_or(String::new(), |t| format!(" since {t}"));
    let failures = if s.consecutive_failures > 0 {
        format!(", {} failed refreshes in a row", s.consecutive_failures)
    } else {
        String::new()
    };
    let never = if c.observed {
        ""
    } else {
        " (never refreshed by svc yet)"
    };
    outln!(
        "{}/{}  {}{since}{failures}{never}",
        c.client,
        c.connection_id,
        s.state
    );
    if let Some(error) = &s.last_error {
        let description = error
            .description
            .as_ref()
            .map_or(String::new(), |d| format!(" ({d})"));
        let at = time(&s.last_failure_at).map_or(String::new(), |t| format!(" at {t}"));
        outln!("  last error: {}{description}{at}", error.code);
    }
    if detailed {
        let or_unknown = |t: &Option<DateTime<Utc>>| time(t).unwrap_or_else(|| "unknown".into());
        outln!("  last success: {}", or_unknown(&s.last_success_at));
        outln!(
            "  refresh token expires: {}",
            or_unknown(&s.refresh_token_expires_at)
        );
        outln!(
            "  access token expires: {}",
            or_unknown(&c.access_token_expires_at)
        );
        match (time(&c.next_refresh_at), &c.next_refresh_by) {
            (Some(at), Some(schedule)) => {
                outln!("  next scheduled refresh: {at} (schedule `{schedule}`)")
            }
            _ => outln!("  next scheduled refresh: none (no schedule refreshes it)"),
        }
    }
    if s.state.needs_person() || detailed {
        outln!("  re-consent: {}", c.reconsent_command);
    }
}
