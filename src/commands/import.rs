//! `svc connection import CLIENT FILE`: connected accounts brought in from
//! elsewhere (another token keeper, a database of the app's own), one JSON
//! object a line:
//!
//! ```json
//! {"connection_id": "acme-42", "tags": {"plan": "pro"}, "refresh_token": "...",
//!  "access_token": "...", "expires_in": 3600}
//! ```
//!
//! Each token goes to the secret the client `stores` it in; an id that
//! exists is left as it is. Accounts are written a batch at a time (one
//! transaction each on PostgreSQL), healthy, without events. A line that
//! is not one stops the import before anything is written, and says which
//! line, never what it holds.

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{block_on, store_error, usage_error};
use crate::backend::accounts::{self, Imported};
use crate::commands::cli::ConnectionPlace;
use crate::exit;
use crate::output::outln;
use crate::secrets::SecretValue;
use crate::syntax::ast::{OAuthClientDecl, TokenField};

/// Accounts written at once.
const BATCH: usize = 500;
/// The longest line read: a token set is a few KiB.
const MAX_LINE: usize = 64 * 1024;

/// One line of the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    connection_id: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    refresh_token: Option<String>,
    access_token: Option<String>,
    id_token: Option<String>,
    /// Seconds the access token lives from now...
    expires_in: Option<f64>,
    /// ...or when it expires.
    access_token_expires_at: Option<DateTime<Utc>>,
}

pub fn run(place_args: ConnectionPlace, client: &str, file: &Path) -> ExitCode {
    let (script, place) =
        match super::connection::open(&place_args, &crate::backend::Options::default()) {
            Ok(opened) => opened,
            Err(code) => return code,
        };
    let declared = match script.client(client) {
        Some(declared) if declared.per_account && declared.stores.is_some() => declared,
        _ => {
            return usage_error(
                "svc::connection::not_per_account",
                &format!("no `per_account` oauth_client called `{client}` stores tokens"),
                Some("import connected accounts of a `per_account` client with `stores`"),
            );
        }
    };
    let now = crate::secrets::document::now();
    let accounts = match read_lines(file, declared, now) {
        Ok(accounts) => accounts,
        Err(problem) => {
            return usage_error(
                "svc::connection::invalid_import",
                &problem,
                Some(
                    "one JSON object a line: {\"connection_id\": \"...\", \"tags\": {...}, \
                     \"refresh_token\": \"...\", \"access_token\": \"...\", \"expires_in\": 3600}",
                ),
            );
        }
    };
    let identities = match place.identities() {
        Ok(identities) => identities,
        Err(error) => return store_error(&error),
    };
    let by = format!("{} (svc connection import {client})", identities.label);
    let (mut created, mut existing) = (0usize, Vec::new());
    for batch in accounts.chunks(BATCH) {
        let made = block_on(crate::backend::through_outages(|| {
            place
                .backend
                .accounts
                .import(&identities, client, batch, &by, now)
        }));
        match made {
            Ok(made) => {
                for (account, made) in batch.iter().zip(made) {
                    if made {
                        created += 1;
                    } else {
                        existing.push(account.connection_id.clone());
                    }
                }
            }
            Err(error) => {
                eprintln!("imported {created} accounts before the store failed");
                return store_error(&error);
            }
        }
    }
    if place_args.json {
        outln!(
            "{}",
            serde_json::json!({"client": client, "environment": place.env, "created": created, "existing": existing})
        );
    } else {
        outln!(
            "imported {created} connected account(s) of `{client}` into `{}`",
            place.env
        );
        if !existing.is_empty() {
            outln!(
                "{} id(s) existed already and were left as they were: {}",
                existing.len(),
                existing.join(", ")
            );
        }
    }
    exit::code(exit::SUCCESS)
}

/// Every line of the file as an account, or why one is not.
fn read_lines(
    file: &Path,
    client: &OAuthClientDecl,
    now: DateTime<Utc>,
) -> Result<Vec<Imported>, String> {
    let mut reader: Box<dyn BufRead> = if file == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(file)
                .map_err(|e| format!("cannot read `{}`: {e}", file.display()))?,
        ))
    };
    let stores: Vec<(TokenField, String)> = client
        .stores
        .iter()
        .flat_map(|s| &s.entries)
        .filter_map(|e| Some((e.field?, e.secret.text.clone())))
        .collect();
    let mut accounts = Vec::new();
    let mut bytes = Vec::new();
    let mut number = 0usize;
    loop {
        bytes.clear();
        number += 1;
        let read = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut bytes)
            .map_err(|e| format!("cannot read line {number}: {e}"))?;
        if read == 0 {
            break;
        }
        if bytes.len() > MAX_LINE && !bytes.ends_with(b"\n") {
            return Err(format!("line {number} is longer than {MAX_LINE} bytes"));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| format!("line {number} is not UTF-8"))?
            .trim();
        if text.is_empty() {
            continue;
        }
        // serde's message may quote the input: say only where it failed.
        let line: Line = serde_json::from_str(text).map_err(|e| {
            format!(
                "line {number} is not an account (column {}: {})",
                e.column(),
                match e.classify() {
                    serde_json::error::Category::Data =>
                        "a field is missing, unknown or of the wrong type",
                    _ => "not JSON",
                }
            )
        })?;
        if let Some(problem) = accounts::invalid_id(&line.connection_id) {
            return Err(format!("line {number}: {problem}"));
        }
        if let Some(problem) = accounts::invalid_tags(&line.tags) {
            return Err(format!("line {number}: {problem}"));
        }
        let access_expires = line.access_token_expires_at.or_else(|| {
            let seconds = line
                .expires_in
                .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e10)?;
            now.checked_add_signed(chrono::TimeDelta::milliseconds((seconds * 1000.0) as i64))
        });
        let mut values = Vec::new();
        for (field, secret) in &stores {
            let (value, expires_at) = match field {
                TokenField::RefreshToken => (&line.refresh_token, None),
                TokenField::AccessToken => (&line.access_token, access_expires),
                TokenField::IdToken => (&line.id_token, None),
            };
            match value.as_deref().map(str::trim) {
                Some(value) if !value.is_empty() => {
                    values.push((
                        secret.clone(),
                        SecretValue::new(value.to_string()),
                        expires_at,
                    ));
                }
                _ if *field == TokenField::RefreshToken => {
                    return Err(format!(
                        "line {number} has no `refresh_token`, which `{}` stores in `{secret}`",
                        client.name.text
                    ));
                }
                _ => {}
            }
        }
        accounts.push(Imported {
            connection_id: line.connection_id,
            tags: line.tags,
            values,
        });
    }
    Ok(accounts)
}
