//! `svc key`: the API keys of `svc serve`.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::context::{Context, Place};
use super::secret::open;
use super::{block_on, store_error, usage_error};
use crate::commands::cli::KeyCommand;
use crate::exit;
use crate::output::outln;
use crate::secrets::api_keys;
use crate::secrets::{Error, document};

pub fn run(command: KeyCommand) -> ExitCode {
    let (KeyCommand::Create { store, program, .. }
    | KeyCommand::List { store, program, .. }
    | KeyCommand::Revoke { store, program, .. }) = &command;
    let context = match Context::find(program) {
        Ok(context) => context,
        Err(code) => return code,
    };
    // Creating a key needs the program, to check the identity; listing
    // marks the keys of identities it no longer declares when it has one.
    let declared = match (&command, context.project.is_some() || !program.is_empty()) {
        (KeyCommand::Create { .. }, _) | (_, true) => match context.program(program) {
            Ok(paths) => declared_identities(&paths),
            Err(code) => return code,
        },
        (_, false) => Err("no program".to_string()),
    };
    let place = match context.place(store) {
        Ok(place) => place,
        Err(code) => return code,
    };
    let result = match command {
        KeyCommand::Create {
            identity,
            name,
            expires,
            connection_tags,
            connection_prefix,
            ..
        } => {
            let known = match &declared {
                Ok(known) => known,
                Err(problem) => {
                    return usage_error(
                        "svc::key::no_program",
                        &format!("cannot check `--as {identity}` against the program: {problem}"),
                        Some(
                            "run it in the project, or name the program with `--program PATH` or `--project DIR`",
                        ),
                    );
                }
            };
            if !known.iter().any(|k| k == &identity) {
                return usage_error(
                    "svc::key::unknown_identity",
                    &format!("the program declares no user or service account `{identity}`"),
                    Some(&crate::suggest::did_you_mean(
                        &identity,
                        known.iter().map(String::as_str),
                        format!("the identities are: {}", known.join(", ")),
                    )),
                );
            }
            let mut reach = crate::backend::Reach {
                prefix: connection_prefix,
                ..Default::default()
            };
            for tag in &connection_tags {
                match crate::backend::accounts::parse_tag(tag) {
                    Ok((key, value)) => {
                        reach.tags.insert(key, value);
                    }
                    Err(problem) => {
                        return usage_error(
                            "svc::key::invalid_tag",
                            &problem,
                            Some("write `--connection-tag KEY=VALUE`"),
                        );
                    }
                }
            }
            if reach
                .prefix
                .as_deref()
                .is_some_and(|p| p.is_empty() || crate::backend::accounts::invalid_id(p).is_some())
            {
                return usage_error(
                    "svc::key::invalid_prefix",
                    "`--connection-prefix` is the start of a connection id",
                    Some(crate::backend::accounts::ID_HELP),
                );
            }
            create(&identity, &place, name, expires, reach)
        }
        KeyCommand::List { json, .. } => list(&place, json, declared.ok().as_deref()),
        KeyCommand::Revoke { id, .. } => revoke(&id, &place),
    };
    match result {
        Ok(()) => exit::code(exit::SUCCESS),
        Err(error) => store_error(&error),
    }
}

/// The users and service accounts the program declares, or why it could
/// not be read. Errors of the check do not matter here: only the names.
fn declared_identities(paths: &[std::path::PathBuf]) -> Result<Vec<String>, String> {
    let checked = crate::program::load(paths).map_err(|e| e.to_string())?;
    Ok(checked
        .program
        .identities
        .iter()
        .map(|i| i.name.text.clone())
        .collect())
}

fn create(
    identity: &str,
    place: &Place,
    name: Option<String>,
    expires: Option<std::time::Duration>,
    reach: crate::backend::Reach,
) -> Result<(), Error> {
    let valid = identity
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && identity
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(Error::Invalid(format!(
            "`{identity}` is not a user or service account name"
        )));
    }
    let identities = open(place)?;
    let now = document::now();
    let expires_at = expires
        .map(|d| {
            chrono::TimeDelta::from_std(d)
                .ok()
                .and_then(|d| now.checked_add_signed(d))
                .ok_or_else(|| Error::Invalid("`--expires` is too long".into()))
        })
        .transpose()?;
    let key = api_keys::generate(identity, name, expires_at, now)
        .map_err(|e| Error::Invalid(format!("no randomness from the operating system: {e}")))?;
    let id = key.id.clone();
    let mut record = key.record.clone();
    record.connection_prefix = reach.prefix;
    record.connection_tags = reach.tags;
    block_on(place.backend.keys.add(&identities, &id, record))?;
    outln!("{}", key.token.as_str());
    eprintln!(
        "created key `{id}` for `{identity}` in `{}`; it is shown once: keep it now (only its hash is stored)",
        place.env
    );
    Ok(())
}

#[derive(Serialize)]
struct Listed<'a> {
    id: &'a str,
    identity: &'a str,
    name: Option<&'a str>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    state: &'static str,
    /// Whether the program still declares the key's identity (unknown when
    /// the program could not be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    identity_declared: Option<bool>,
    /// The connected accounts it is limited to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    connection_prefix: Option<&'a str>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    connection_tags: &'a std::collections::BTreeMap<String, String>,
}

fn list(place: &Place, json: bool, declared: Option<&[String]>) -> Result<(), Error> {
    let identities = open(place)?;
    let gone = |identity: &str| declared.is_some_and(|known| !known.iter().any(|k| k == identity));
    let api_keys = block_on(place.backend.keys.keys(&identities))?;
    let now = Utc::now();
    let rows: Vec<Listed> = api_keys
        .iter()
        .map(|(id, key)| Listed {
            id,
            identity: &key.identity,
            name: key.name.as_deref(),
            created_at: key.created_at,
            expires_at: key.expires_at,
            revoked_at: key.revoked_at,
            state: if key.revoked_at.is_some() {
                "revoked"
            } else if key.expires_at.is_some_and(|at| at <= now) {
                "expired"
            } else if gone(&key.identity) {
                "orphaned"
            } else {
                "active"
            },
            identity_declared: declared.map(|_| !gone(&key.identity)),
            connection_prefix: key.connection_prefix.as_deref(),
            connection_tags: &key.connection_tags,
        })
        .collect();
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("a listing serializes")
        );
        return Ok(());
    }
    if rows.is_empty() {
        eprintln!("no keys in `{}`", place.env);
        return Ok(());
    }
    let time = |t: Option<DateTime<Utc>>| {
        t.map_or("-".into(), |t| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
    };
    outln!(
        "{:<12}  {:<8}  {:<20}  {:<16}  {:<20}  EXPIRES_AT",
        "ID",
        "STATE",
        "IDENTITY",
        "NAME",
        "CREATED_AT"
    );
    let orphans = rows.iter().filter(|r| r.state == "orphaned").count();
    for row in rows {
        outln!(
            "{:<12}  {:<8}  {:<20}  {:<16}  {:<20}  {}",
            row.id,
            row.state,
            row.identity,
            row.name.unwrap_or("-"),
            time(Some(row.created_at)),
            time(row.expires_at)
        );
    }
    if orphans > 0 {
        eprintln!(
            "{orphans} key(s) belong to an identity the program no longer declares (`orphaned`): \
             they are refused when used; revoke them with `svc key revoke ID`"
        );
    }
    Ok(())
}

fn revoke(id: &str, place: &Place) -> Result<(), Error> {
    let identities = open(place)?;
    let id = id
        .trim_start_matches("svc_")
        .split('_')
        .next()
        .unwrap_or(id)
        .to_string();
    block_on(place.backend.keys.revoke(&identities, &id, document::now()))?;
    eprintln!("revoked key `{id}` in `{}`", place.env);
    Ok(())
}
