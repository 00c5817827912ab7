//! `svc key`: the API keys of `svc serve`.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::secret::open;
use super::store_error;
use crate::cli::KeyCommand;
use crate::exit;
use crate::output::outln;
use crate::secrets::{Error, document};
use crate::serve::keys;

pub fn run(command: KeyCommand) -> ExitCode {
    let result = match command {
        KeyCommand::Create {
            identity,
            store,
            name,
            expires,
        } => create(&identity, &store, name, expires),
        KeyCommand::List { store, json } => list(&store, json),
        KeyCommand::Revoke { id, store } => revoke(&id, &store),
    };
    match result {
        Ok(()) => exit::code(exit::SUCCESS),
        Err(error) => store_error(&error),
    }
}

fn create(
    identity: &str,
    args: &crate::cli::StoreArgs,
    name: Option<String>,
    expires: Option<std::time::Duration>,
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
    let (store, identities) = open(args)?;
    let now = document::now();
    let expires_at = expires
        .map(|d| {
            chrono::TimeDelta::from_std(d)
                .ok()
                .and_then(|d| now.checked_add_signed(d))
                .ok_or_else(|| Error::Invalid("`--expires` is too long".into()))
        })
        .transpose()?;
    let key = keys::generate(identity, name, expires_at, now)
        .map_err(|e| Error::Invalid(format!("no randomness from the operating system: {e}")))?;
    let id = key.id.clone();
    let record = key.record.clone();
    store.update(&identities, |doc| {
        doc.api_keys.insert(id.clone(), record);
        Ok(())
    })?;
    outln!("{}", key.token.as_str());
    eprintln!(
        "created key `{id}` for `{identity}` in `{}`; it is shown once: keep it now (only its hash is stored)",
        store.env()
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
}

fn list(args: &crate::cli::StoreArgs, json: bool) -> Result<(), Error> {
    let (store, identities) = open(args)?;
    let document = store.read(&identities)?;
    let now = Utc::now();
    let rows: Vec<Listed> = document
        .api_keys
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
            } else {
                "active"
            },
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
        eprintln!("no keys in `{}`", store.env());
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
    Ok(())
}

fn revoke(id: &str, args: &crate::cli::StoreArgs) -> Result<(), Error> {
    let (store, identities) = open(args)?;
    let id = id
        .trim_start_matches("svc_")
        .split('_')
        .next()
        .unwrap_or(id)
        .to_string();
    store.update(&identities, |doc| match doc.api_keys.get_mut(&id) {
        None => Err(Error::Invalid(format!(
            "no key `{id}`; `svc key list` shows the keys"
        ))),
        Some(key) if key.revoked_at.is_some() => {
            Err(Error::Invalid(format!("key `{id}` is already revoked")))
        }
        Some(key) => {
            key.revoked_at = Some(document::now());
            Ok(())
        }
    })?;
    eprintln!("revoked key `{id}` in `{}`", store.env());
    Ok(())
}
