//! `svc connection list` and `svc connection show`: whether each
//! `oauth_client`'s tokens still work in an environment, and what a person
//! does when they do not (`svc connection revoke` is in `revoke`).

use std::process::ExitCode;

use chrono::{DateTime, SecondsFormat, Utc};

use super::context::Context;
use super::{block_on, store_error, usage_error};
use crate::backend::connection::DEFAULT_ID;
use crate::commands::cli::{ConnectionCommand, ConnectionPlace};
use crate::exit;
use crate::output::outln;
use crate::program::Script;
use crate::schedule::connections::{self, ConnectionStatus, Sources};
use crate::syntax::ast::OAuthClientDecl;

pub fn run(command: ConnectionCommand) -> ExitCode {
    let (place_args, wanted) = match command {
        ConnectionCommand::List { place } => (place, None),
        ConnectionCommand::Show {
            client,
            connection,
            place,
        } => (place, Some((client, connection))),
        ConnectionCommand::Revoke(args) => return super::revoke::run(args, false),
        ConnectionCommand::Delete(args) => return super::revoke::run(args, true),
    };
    let json = place_args.json;
    let (script, place) = match open(&place_args, &crate::backend::Options::default()) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    if let Some((client, connection)) = &wanted
        && let Err(code) = find(&script, client, connection)
    {
        return code;
    }
    let states = match block_on(place.backend.connections.load()) {
        Ok(states) => states,
        Err(error) => return store_error(&error),
    };
    // Expiries, when the store opens; the states do not need it.
    let document = place
        .identities()
        .ok()
        .and_then(|ids| super::secret::document(&place, &ids).ok());
    let schedule_states = block_on(place.backend.schedules.load()).unwrap_or_default();
    let shown: Vec<ConnectionStatus> = connections::statuses(&Sources {
        script: &script,
        environment: &place.env,
        states: &states,
        document: document.as_deref(),
        schedules: &schedule_states,
        now: Utc::now(),
    })
    .into_iter()
    .filter(|c| wanted.as_ref().is_none_or(|(name, _)| *name == c.client))
    .collect();
    if json {
        let text = match &wanted {
            Some(_) => serde_json::to_string_pretty(&shown[0]),
            None => serde_json::to_string_pretty(&shown),
        };
        outln!("{}", text.expect("a connection serializes"));
        return exit::code(exit::SUCCESS);
    }
    if shown.is_empty() {
        eprintln!("the program has no oauth_client with `stores`: it holds no connection");
    }
    for connection in &shown {
        print_human(connection, wanted.is_some());
    }
    exit::code(exit::SUCCESS)
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

/// The client that holds the connection named on the command line.
pub(super) fn find<'s>(
    script: &'s Script,
    client: &str,
    connection: &str,
) -> Result<&'s OAuthClientDecl, ExitCode> {
    if script.client(client).is_some_and(|c| c.per_account) {
        return Err(usage_error(
            "svc::connection::per_account_not_yet",
            &format!(
                "`{client}` holds one connection per account (`per_account`): svc checks such \
                 programs, but keeps no connections per account yet"
            ),
            Some("remove `per_account` to keep one connection per environment"),
        ));
    }
    let clients: Vec<&OAuthClientDecl> = connections::clients(script).collect();
    let Some(found) = clients.iter().find(|c| c.name.as_str() == client) else {
        let names: Vec<&str> = clients.iter().map(|c| c.name.as_str()).collect();
        return Err(usage_error(
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
        ));
    };
    if connection != DEFAULT_ID {
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
