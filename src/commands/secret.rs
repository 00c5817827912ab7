//! `svc secret ...`: manage the values in an environment's store.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde::Serialize;
use zeroize::Zeroizing;

use super::context::{Context, Place};
use super::{block_on, store_error};
use crate::backend::{Change, Changed, RecipientChange};
use crate::commands::cli::{RecipientsCommand, SecretCommand};
use crate::exit;
use crate::output::outln;
use crate::secrets::document;
use crate::secrets::journal;
use crate::secrets::keys;
use crate::secrets::{Document, Error, Identities, Recipient, SecretValue};

pub fn run(command: SecretCommand) -> ExitCode {
    let store_args = match &command {
        // Makes a key: no project or store is needed.
        SecretCommand::Keygen { output } => return finish(keygen(output)),
        SecretCommand::Init { store, .. }
        | SecretCommand::Set { store, .. }
        | SecretCommand::Get { store, .. }
        | SecretCommand::PublicJwk { store, .. }
        | SecretCommand::List { store, .. }
        | SecretCommand::Rm { store, .. }
        | SecretCommand::History { store, .. }
        | SecretCommand::Rollback { store, .. }
        | SecretCommand::Recipients(RecipientsCommand::Add { store, .. })
        | SecretCommand::Recipients(RecipientsCommand::Remove { store, .. })
        | SecretCommand::Recipients(RecipientsCommand::List { store })
        | SecretCommand::Recover { store, .. }
        | SecretCommand::Export { store } => store,
    };
    let context = match Context::find(&[]) {
        Ok(context) => context,
        Err(code) => return code,
    };
    let state_dir = match &command {
        SecretCommand::Recover { state_dir, .. } => state_dir.clone(),
        _ => None,
    };
    let place = match context.open_place(
        store_args,
        None,
        state_dir.as_deref(),
        &crate::backend::Options::default(),
    ) {
        Ok(place) => place,
        Err(code) => return code,
    };
    // Every command but init and recover works on a store that exists:
    // say so before asking for a value or an identity (`get --fresh`
    // loads its program first, and says so if there is none).
    if !matches!(
        command,
        SecretCommand::Init { .. }
            | SecretCommand::Recover { .. }
            | SecretCommand::Get { fresh: true, .. }
    ) && let Err(code) = require_store(&place)
    {
        return code;
    }
    let result = match command {
        SecretCommand::Keygen { output } => keygen(&output),
        SecretCommand::Init {
            recipients,
            recipients_file,
            ..
        } => init(&place, &recipients, recipients_file.as_deref()),
        SecretCommand::Set {
            name,
            from_file,
            expires_in,
            ..
        } => {
            undeclared_warning(&context, &name);
            set(&name, &place, from_file.as_deref(), expires_in)
        }
        SecretCommand::Get {
            name,
            fresh,
            program,
            lock_timeout,
            connection,
            ..
        } if fresh || connection.is_some() => {
            return get_fresh(
                &name,
                &place,
                &context,
                &program,
                lock_timeout,
                connection.as_deref(),
                fresh,
            );
        }
        SecretCommand::Get { name, .. } => get(&name, &place),
        SecretCommand::PublicJwk {
            name,
            kid,
            alg,
            jwks,
            ..
        } => return public_jwk(&name, &place, kid, alg.as_deref(), jwks),
        SecretCommand::List { json, .. } => list(&place, json),
        SecretCommand::Rm { name, .. } => remove(&name, &place),
        SecretCommand::History { name, json, .. } => history(&name, &place, json),
        SecretCommand::Rollback { name, to, .. } => rollback(&name, &place, to),
        SecretCommand::Recipients(RecipientsCommand::Add { key, .. }) => {
            add_recipient(&key, &place)
        }
        SecretCommand::Recipients(RecipientsCommand::Remove { key, .. }) => {
            remove_recipient(&key, &place)
        }
        SecretCommand::Recipients(RecipientsCommand::List { .. }) => list_recipients(&place),
        SecretCommand::Export { .. } => export(&place),
        SecretCommand::Recover {
            apply: Some(run_id),
            identity,
            program,
            ..
        } => return apply_recovered(&context, &place, &run_id, identity, &program),
        SecretCommand::Recover {
            json,
            reveal,
            discard,
            ..
        } => recover(&place, json, reveal.as_deref(), discard.as_deref()),
    };
    finish(result)
}

/// Warns, inside a project, when its program declares no secret `name`:
/// a misspelt name would be stored where nothing reads it. It is stored
/// anyway (a secret may be set before the program that reads it exists).
fn undeclared_warning(context: &Context, name: &str) {
    if context.project.is_none() {
        return;
    }
    let Ok(paths) = context.program(&[]) else {
        return;
    };
    let Ok(checked) = crate::program::load(&paths) else {
        return;
    };
    let declared: Vec<&str> = checked
        .program
        .secrets
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    if declared.contains(&name) {
        return;
    }
    let help = crate::suggest::did_you_mean(
        name,
        declared.iter().copied(),
        "declare it with `secret NAME { }` if the program is to read it",
    );
    eprintln!(
        "warning: the project's program declares no secret `{name}` (it is stored anyway); {help}"
    );
}

/// The store of the environment, or [`Error::StoreMissing`] that names
/// `svc secret init` (and the environment meant, for a misspelt one).
fn require_store(place: &Place) -> Result<(), ExitCode> {
    let secrets = &place.backend.secrets;
    match block_on(secrets.exists()) {
        Ok(true) => return Ok(()),
        Ok(false) => {}
        Err(error) => return Err(store_error(&error)),
    }
    let missing = Error::StoreMissing {
        env: place.env.clone(),
        path: secrets.describe().trim_matches('`').into(),
    };
    let help = match place.unknown_environment() {
        Some(unknown) if unknown.meant.is_some() => format!(
            "{} (`svc secret init --env {}` creates a new one)",
            unknown.help, place.env
        ),
        _ => missing.help().unwrap_or_default(),
    };
    Err(super::usage_error(
        missing.code(),
        &missing.to_string(),
        Some(&help),
    ))
}

fn finish(result: Result<(), Error>) -> ExitCode {
    match result {
        Ok(()) => exit::code(exit::SUCCESS),
        Err(error) => store_error(&error),
    }
}

/// The identities that open the environment's store.
pub fn open(place: &Place) -> Result<Identities, Error> {
    place.identities()
}

/// The environment's current document, decrypted.
pub fn document(place: &Place, identities: &Identities) -> Result<std::sync::Arc<Document>, Error> {
    block_on(place.backend.secrets.document(identities))
}

/// Applies changes to the store, as the identity's user.
fn apply(
    place: &Place,
    identities: &Identities,
    changes: Vec<Change>,
) -> Result<Vec<Changed>, Error> {
    let (changed, _) = block_on(place.backend.secrets.apply(
        identities,
        changes,
        &identities.label,
        document::now(),
    ))?;
    Ok(changed)
}

fn keygen(path: &Path) -> Result<(), Error> {
    // `-o ~/.config/svc/identity.txt` on a new machine: the directory
    // is made, readable only by its owner.
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.exists()
    {
        crate::secrets::atomic::create_private_dir(parent)
            .map_err(|e| Error::io("create", parent, e))?;
    }
    let public = keys::write_new_identity(path)?;
    outln!("{public}");
    eprintln!(
        "wrote a new identity to `{}`; keep it private and backed up",
        path.display()
    );
    Ok(())
}

fn init(place: &Place, recipients: &[String], file: Option<&Path>) -> Result<(), Error> {
    let mut own = None;
    let text = match file {
        Some(path) => std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?,
        None if recipients.is_empty() => {
            // The identity svc reads with: the store it makes, it can open.
            let found = place.find_identities()?;
            let keys = own_recipients(&found.paths)?;
            let text = format!(
                "# Public keys that can decrypt {}.age, one per line.\n{}\n",
                place.env,
                keys.join("\n")
            );
            own = Some((keys, found));
            text
        }
        None => {
            for key in recipients {
                Recipient::parse(key)
                    .map_err(|problem| Error::Invalid(format!("`--recipient {key}`: {problem}")))?;
            }
            let mut text = format!(
                "# Public keys that can decrypt {}.age, one per line.\n",
                place.env
            );
            for key in recipients {
                text.push_str(key.trim());
                text.push('\n');
            }
            text
        }
    };
    let secrets = &place.backend.secrets;
    block_on(secrets.init(&text))?;
    match own {
        Some((keys, found)) => eprintln!(
            "created the `{}` store ({}), encrypted to {} of {} ({}); \
             `svc secret recipients add KEY --env {}` lets others open it",
            place.env,
            secrets.describe(),
            keys.iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", "),
            found
                .paths
                .iter()
                .map(|p| format!("`{}`", p.display()))
                .collect::<Vec<_>>()
                .join(", "),
            found.source,
            place.env,
        ),
        None => eprintln!(
            "created the `{}` store ({}), encrypted to the keys given",
            place.env,
            secrets.describe()
        ),
    }
    Ok(())
}

/// The public keys of identity files, as recipients: an age identity's
/// own, an SSH key's from the `.pub` file beside it.
fn own_recipients(paths: &[std::path::PathBuf]) -> Result<Vec<String>, Error> {
    let identities = Identities::read(paths)?;
    let mut keys = Vec::new();
    for key in identities.public_keys() {
        if Recipient::parse(key).is_ok() {
            keys.push(key.clone());
        }
    }
    for path in paths {
        let is_ssh = std::fs::read(path).is_ok_and(|bytes| bytes.starts_with(b"-----BEGIN"));
        if !is_ssh {
            continue;
        }
        let mut public = path.as_os_str().to_owned();
        public.push(".pub");
        let public = std::path::PathBuf::from(public);
        match std::fs::read_to_string(&public) {
            Ok(text) if Recipient::parse(text.trim()).is_ok() => keys.push(text.trim().to_string()),
            _ => {
                return Err(Error::Invalid(format!(
                    "`{}` is an SSH key, and `{}` does not hold its public key: pass it with \
                     `--recipient \"ssh-ed25519 ...\"`",
                    path.display(),
                    public.display()
                )));
            }
        }
    }
    Ok(keys)
}

fn set(
    name: &str,
    place: &Place,
    from_file: Option<&Path>,
    expires_in: Option<std::time::Duration>,
) -> Result<(), Error> {
    validate_name(name)?;
    let identities = open(place)?;
    let value = read_value(name, from_file)?;
    let length = value.expose().len();
    if length < crate::redact::MIN_MASKED {
        eprintln!(
            "warning: the value of `{name}` is {length} byte{}: svc masks values of {} bytes or more \
             in its output (a shorter one would mask those characters everywhere), so this one \
             cannot be masked",
            if length == 1 { "" } else { "s" },
            crate::redact::MIN_MASKED
        );
    }
    let at = document::now();
    let expires_at = expires_in
        .map(|d| {
            chrono::TimeDelta::from_std(d)
                .ok()
                .and_then(|d| at.checked_add_signed(d))
                .ok_or_else(|| Error::Invalid("`--expires-in` is too long".into()))
        })
        .transpose()?;
    let changed = apply(
        place,
        &identities,
        vec![Change::Set {
            name: name.to_string(),
            value,
            expires_at,
            expect: None,
        }],
    )?;
    let version = match changed.first() {
        Some(Changed::Set(version)) => *version,
        _ => 0,
    };
    eprintln!("set `{name}` in `{}`: version {version}", place.env);
    Ok(())
}

/// Secret names become environment variable names in `svc exec`.
fn validate_name(name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "`{name}` is not a valid secret name: use letters, digits and `_`, not starting with a digit"
        )))
    }
}

/// Reads a value from a file or stdin (hidden at a terminal). One trailing
/// newline is removed; the value must be non-empty UTF-8.
fn read_value(name: &str, from_file: Option<&Path>) -> Result<SecretValue, Error> {
    let mut bytes = Zeroizing::new(Vec::new());
    match from_file {
        Some(path) => {
            let mut file = std::fs::File::open(path).map_err(|e| Error::io("read", path, e))?;
            file.read_to_end(&mut bytes)
                .map_err(|e| Error::io("read", path, e))?;
        }
        None if std::io::stdin().is_terminal() => {
            let typed = Zeroizing::new(
                rpassword::prompt_password(format!("value for {name} (input hidden): "))
                    .map_err(|e| Error::io("read", Path::new("the terminal"), e))?,
            );
            bytes.extend_from_slice(typed.as_bytes());
        }
        None => {
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| Error::io("read", Path::new("standard input"), e))?;
        }
    }
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Error::Invalid("the value is not UTF-8 text".into()))?;
    if text.is_empty() {
        return Err(Error::Invalid(format!(
            "the value for `{name}` is empty; to remove a secret use `svc secret rm {name}`"
        )));
    }
    Ok(SecretValue::new(text))
}

/// One secret's value, its read recorded in the audit log as `action`
/// first (a read that cannot be audited does not happen).
fn read_audited(place: &Place, name: &str, action: &str) -> Result<SecretValue, Error> {
    let identities = open(place)?;
    let document = document(place, &identities)?;
    let entry = document.get(name).ok_or_else(|| Error::SecretMissing {
        name: name.to_string(),
        env: place.env.clone(),
    })?;
    audit_cli_reads(place, &identities, &[name], action)?;
    Ok(entry.value.clone())
}

fn get(name: &str, place: &Place) -> Result<(), Error> {
    let value = read_audited(place, name, "read")?;
    let mut stdout = crate::output::writer();
    writeln!(stdout, "{}", value.expose())
        .map_err(|e| Error::io("write", Path::new("standard output"), e))
}

/// `svc secret public-jwk NAME`: the public JWK of the private key the
/// secret holds. The read is audited as `get`'s is, before the key is
/// read; a secret that holds no usable key prints the key error (exit 2).
fn public_jwk(
    name: &str,
    place: &Place,
    kid: Option<String>,
    alg: Option<&str>,
    jwks: bool,
) -> ExitCode {
    use crate::oauth::jwk::PublicJwk;
    use crate::oauth::jwt::{Algorithm, KeyError, KeyMaterial};

    let read = || -> Result<Result<KeyMaterial, KeyError>, Error> {
        let value = read_audited(place, name, "public_jwk")?;
        Ok(KeyMaterial::parse(value.expose()))
    };
    let key_error = |error: KeyError| {
        super::usage_error(
            error.code(),
            &format!("secret `{name}` does not hold a signing key svc can use: {error}"),
            Some(&error.help()),
        )
    };
    let material = match read() {
        Ok(Ok(material)) => material,
        Ok(Err(error)) => return key_error(error),
        Err(error) => return store_error(&error),
    };
    let asked = alg.and_then(Algorithm::from_name);
    if let Some(alg) = asked
        && let Err(error) = material.key.check_algorithm(alg)
    {
        let can: Vec<String> = material
            .key
            .algorithms()
            .iter()
            .map(|alg| format!("`--alg {alg}`"))
            .collect();
        return super::usage_error(
            error.code(),
            &format!("`--alg {alg}` does not fit the key in secret `{name}`: {error}"),
            Some(&format!("leave `--alg` out, or give {}", can.join(" or "))),
        );
    }
    let alg = asked
        .or(material.alg)
        .or_else(|| PublicJwk::implied_algorithm(&material.key));
    let kid = kid.or(material.kid);
    let jwk = match PublicJwk::of(&material.key, alg, kid.as_deref()) {
        Ok(jwk) => jwk,
        Err(error) => return key_error(error),
    };
    let printed = if jwks {
        print_json(&serde_json::json!({ "keys": [jwk] }))
    } else {
        print_json(&jwk)
    };
    finish(printed)
}

/// Records a read of secrets from the command line in the environment's
/// audit log, where `svc serve` records its reads: who (the local user,
/// and the public key of the identity that opened the store) read what.
/// A read that cannot be recorded prints nothing: the caller returns the
/// error before any value.
pub fn audit_cli_reads(
    place: &Place,
    identities: &Identities,
    names: &[&str],
    action: &str,
) -> Result<(), Error> {
    block_on(audit_reads(place, identities, names, action, None))
}

/// [`audit_cli_reads`], for a command that is running async already.
pub async fn audit_reads(
    place: &Place,
    identities: &Identities,
    names: &[&str],
    action: &str,
    connection: Option<&crate::backend::ConnectionKey>,
) -> Result<(), Error> {
    let recipients = place.backend.secrets.recipients().await.unwrap_or_default();
    let opened_by = identities
        .public_keys()
        .iter()
        .find(|key| recipients.iter().any(|line| keys::same_key(line, key)))
        .or_else(|| identities.public_keys().first())
        .cloned()
        .unwrap_or_else(|| identities.label.clone());
    for name in names {
        let mut line = serde_json::json!({
            "at": document::now(),
            "user": local_user(),
            "recipient": opened_by,
            "secret": name,
            "action": action,
            "via": "cli",
        });
        if let Some(key) = connection {
            line["client"] = key.client.clone().into();
            line["connection_id"] = key.connection_id.clone().into();
        }
        place
            .backend
            .logs
            .audit(&line)
            .await
            .map_err(|error| Error::AuditUnavailable {
                problem: error.to_string(),
            })?;
    }
    Ok(())
}

/// The local user, as the audit log names them.
fn local_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| format!("uid {}", rustix::process::getuid().as_raw()))
}

/// `svc secret get NAME --fresh`: refreshed first when its `refreshed_by`
/// says so (`run::refresh`). A failed refresh prints the run's error,
/// never a value, and exits 1.
fn get_fresh(
    name: &str,
    place: &Place,
    context: &Context,
    program: &[std::path::PathBuf],
    lock_timeout: std::time::Duration,
    connection: Option<&str>,
    fresh: bool,
) -> ExitCode {
    use crate::run::refresh::FreshError;
    let paths = match context.program(program) {
        Ok(paths) => paths,
        Err(code) => return code,
    };
    let script = match super::run::load_paths(&paths) {
        Ok(script) => script,
        Err(code) => return code,
    };
    if script.secret(name).is_none() {
        return super::usage_error(
            "svc::secret::undeclared",
            &format!("the program does not declare `{name}`"),
            Some(
                "--fresh reads the secret's `refreshed_by` from the program: pass it with `--program PATH`",
            ),
        );
    }
    let per_account = script.secret(name).is_some_and(|s| s.per_account);
    let account = match (per_account, connection) {
        (true, None) => {
            return super::usage_error(
                "svc::secret::connection_required",
                &format!("`{name}` has a value per connected account: which one?"),
                Some("pass `--connection ID`; `svc connection list` shows the ids"),
            );
        }
        (false, Some(_)) => {
            return super::usage_error(
                "svc::secret::not_per_account",
                &format!("`{name}` is not `per_account`: it has one value per environment"),
                Some("drop `--connection`"),
            );
        }
        (true, Some(id)) => {
            if let Err(problem) = crate::backend::accounts::check_id(id) {
                return super::usage_error(
                    "svc::connection::invalid_id",
                    &problem,
                    Some(crate::backend::accounts::ID_HELP),
                );
            }
            let client = script
                .program()
                .oauth_clients
                .iter()
                .find(|c| c.per_account && c.stores_secret(name))
                .map(|c| c.name.text.clone())
                .unwrap_or_default();
            Some(crate::backend::ConnectionKey {
                client,
                connection_id: id.to_string(),
            })
        }
        (false, None) => None,
    };
    let identities = match open(place) {
        Ok(identities) => identities,
        Err(error) => return store_error(&error),
    };
    if let Some(key) = &account {
        match block_on(place.backend.connections.load_one(key)) {
            Ok(Some(_)) => {}
            Ok(None) => {
                return super::usage_error(
                    "svc::connection::unknown",
                    &format!("`{}` has no connection `{}`", key.client, key.connection_id),
                    Some(&format!(
                        "`svc connection list --client {}` shows its connections",
                        key.client
                    )),
                );
            }
            Err(error) => return store_error(&error),
        }
    }
    let script = std::sync::Arc::new(script);
    let mut engine = crate::run::Engine::new(
        script,
        place.backend.clone(),
        Some(std::sync::Arc::new(identities)),
    );
    engine.lock_timeout = lock_timeout;
    engine.program_hint = context.program_hint(program);
    let read = async {
        match (&account, fresh) {
            (_, true) => {
                engine
                    .read_fresh_for(name, account.as_ref(), crate::backend::ReadAt::Now)
                    .await
            }
            (Some(key), false) => {
                let keys = engine.keys.as_deref().expect("opened above");
                let values = place
                    .backend
                    .accounts
                    .document(keys, key)
                    .await
                    .map_err(crate::run::refresh::FreshError::Store)?;
                Ok(crate::run::refresh::Fresh {
                    entry: values.get(name).cloned(),
                    refreshed: None,
                })
            }
            (None, false) => engine.read_fresh(name).await,
        }
    };
    match block_on(read) {
        Ok(fresh) => {
            if let Some(record) = &fresh.refreshed {
                eprintln!(
                    "refreshed `{name}` in `{}`: run {} of `{}`",
                    place.env, record.id, record.endpoint
                );
            }
            let Some(entry) = fresh.entry else {
                return store_error(&Error::SecretMissing {
                    name: name.to_string(),
                    env: place.env.clone(),
                });
            };
            let identities = engine.keys.as_deref().expect("opened above");
            if let Err(error) = block_on(audit_reads(
                place,
                identities,
                &[name],
                "read",
                account.as_ref(),
            )) {
                return store_error(&error);
            }
            let mut stdout = crate::output::writer();
            match writeln!(stdout, "{}", entry.value.expose()) {
                Ok(()) => exit::code(exit::SUCCESS),
                Err(e) => store_error(&Error::io("write", Path::new("standard output"), e)),
            }
        }
        Err(FreshError::Store(error)) => store_error(&error),
        Err(FreshError::NeedsPerson(refusal)) => super::run::refusal_exit(&refusal),
        Err(FreshError::Failed {
            code,
            message,
            help,
            ..
        }) => {
            eprint!(
                "{}",
                crate::report::render_error(
                    code,
                    &message,
                    help.as_deref(),
                    crate::report::Style::for_stderr()
                )
            );
            exit::code(exit::FAILURE)
        }
    }
}

#[derive(Serialize)]
struct Listed<'a> {
    name: &'a str,
    version: u64,
    updated_at: Option<DateTime<Utc>>,
    updated_by: Option<&'a str>,
    expires_at: Option<DateTime<Utc>>,
    age_seconds: Option<i64>,
    expires_in_seconds: Option<i64>,
}

fn list(place: &Place, json: bool) -> Result<(), Error> {
    let identities = open(place)?;
    let document = document(place, &identities)?;
    let now = Utc::now();
    let rows: Vec<Listed> = document
        .secrets
        .iter()
        .map(|(name, e)| Listed {
            name,
            version: e.version,
            updated_at: e.updated_at,
            updated_by: e.updated_by.as_deref(),
            expires_at: e.expires_at,
            age_seconds: e.updated_at.map(|t| (now - t).num_seconds()),
            expires_in_seconds: e.expires_at.map(|t| (t - now).num_seconds()),
        })
        .collect();
    if json {
        return print_json(&rows);
    }
    if rows.is_empty() {
        eprintln!("no secrets in `{}`", place.env);
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.name.to_string(),
                r.version.to_string(),
                r.updated_at.map_or("-".into(), |t| {
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                }),
                r.updated_by.unwrap_or("-").to_string(),
                r.expires_at.map_or("-".into(), |t| {
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                }),
                r.age_seconds
                    .map_or("-".into(), |s| format!("{} ago", human_duration(s))),
                r.expires_in_seconds.map_or("-".into(), |s| {
                    if s >= 0 {
                        format!("in {}", human_duration(s))
                    } else {
                        format!("expired {} ago", human_duration(-s))
                    }
                }),
            ]
        })
        .collect();
    print_table(
        &[
            "NAME",
            "VERSION",
            "UPDATED_AT",
            "UPDATED_BY",
            "EXPIRES_AT",
            "AGE",
            "EXPIRES",
        ],
        &table,
    )
}

fn remove(name: &str, place: &Place) -> Result<(), Error> {
    let identities = open(place)?;
    apply(
        place,
        &identities,
        vec![Change::Remove {
            name: name.to_string(),
        }],
    )?;
    eprintln!("removed `{name}` from `{}`", place.env);
    Ok(())
}

#[derive(Serialize)]
struct Version<'a> {
    version: u64,
    current: bool,
    updated_at: Option<DateTime<Utc>>,
    updated_by: Option<&'a str>,
    expires_at: Option<DateTime<Utc>>,
}

fn history(name: &str, place: &Place, json: bool) -> Result<(), Error> {
    let identities = open(place)?;
    let entry = block_on(place.backend.secrets.entry(&identities, name))?.ok_or_else(|| {
        Error::SecretMissing {
            name: name.to_string(),
            env: place.env.clone(),
        }
    })?;
    let mut versions = vec![Version {
        version: entry.version,
        current: true,
        updated_at: entry.updated_at,
        updated_by: entry.updated_by.as_deref(),
        expires_at: entry.expires_at,
    }];
    versions.extend(entry.history.iter().map(|p| Version {
        version: p.version,
        current: false,
        updated_at: p.updated_at,
        updated_by: p.updated_by.as_deref(),
        expires_at: p.expires_at,
    }));
    if json {
        return print_json(&versions);
    }
    let table: Vec<Vec<String>> = versions
        .iter()
        .map(|v| {
            vec![
                format!("{}{}", v.version, if v.current { " (current)" } else { "" }),
                v.updated_at.map_or("-".into(), |t| {
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                }),
                v.updated_by.unwrap_or("-").to_string(),
                v.expires_at.map_or("-".into(), |t| {
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                }),
            ]
        })
        .collect();
    print_table(
        &["VERSION", "UPDATED_AT", "UPDATED_BY", "EXPIRES_AT"],
        &table,
    )
}

fn rollback(name: &str, place: &Place, to: Option<u64>) -> Result<(), Error> {
    let identities = open(place)?;
    let changed = apply(
        place,
        &identities,
        vec![Change::Rollback {
            name: name.to_string(),
            to,
        }],
    )?;
    if let Some(Changed::RolledBack { restored, version }) = changed.first() {
        eprintln!(
            "restored version {restored} of `{name}` in `{}` as version {version}",
            place.env
        );
    }
    Ok(())
}

fn add_recipient(key: &str, place: &Place) -> Result<(), Error> {
    Recipient::parse(key).map_err(|problem| Error::Invalid(format!("`{key}`: {problem}")))?;
    let identities = open(place)?;
    block_on(
        place
            .backend
            .secrets
            .change_recipients(&identities, RecipientChange::Add(key.to_string())),
    )?;
    eprintln!(
        "added `{}`; {} is re-encrypted",
        keys::short_key(key),
        place.backend.secrets.describe()
    );
    Ok(())
}

fn remove_recipient(key: &str, place: &Place) -> Result<(), Error> {
    let identities = open(place)?;
    block_on(
        place
            .backend
            .secrets
            .change_recipients(&identities, RecipientChange::Remove(key.to_string())),
    )?;
    eprintln!(
        "removed `{}`; {} is re-encrypted and that key cannot decrypt what is written from now on",
        keys::short_key(key),
        place.backend.secrets.describe()
    );
    Ok(())
}

fn list_recipients(place: &Place) -> Result<(), Error> {
    for key in place.recipient_keys() {
        outln!("{key}");
    }
    Ok(())
}

fn print_json(value: &impl Serialize) -> Result<(), Error> {
    let mut stdout = crate::output::writer();
    serde_json::to_writer_pretty(&mut stdout, value).expect("listing serializes");
    writeln!(stdout).map_err(|e| Error::io("write", Path::new("standard output"), e))
}

fn print_table(header: &[&str], rows: &[Vec<String>]) -> Result<(), Error> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(header.iter().map(|h| h.to_string()).collect::<Vec<_>>())
        .chain(rows.iter().cloned())
    {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = widths[i]))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    crate::output::bytes(out.as_bytes());
    Ok(())
}

/// `3h 5m`, `45s`, `2d 4h`: the two largest units.
pub fn human_duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let units = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let mut parts = Vec::new();
    let mut rest = seconds;
    for (unit, size) in units {
        if rest >= size || (parts.is_empty() && size == 1) {
            parts.push(format!("{}{unit}", rest / size));
            rest %= size;
        }
        if parts.len() == 2 {
            break;
        }
    }
    if parts.len() == 2 && parts[1].starts_with('0') {
        parts.pop();
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(3_600), "1h");
        assert_eq!(human_duration(11_100), "3h 5m");
        assert_eq!(human_duration(187_200), "2d 4h");
    }
}

/// `svc secret export`: the store as an age file, on standard output.
fn export(place: &Place) -> Result<(), Error> {
    let identities = open(place)?;
    let bytes = block_on(place.backend.secrets.export(&identities))?;
    crate::output::bytes(&bytes);
    eprintln!(
        "exported {} as an age file encrypted to its recipients",
        place.backend.secrets.describe()
    );
    Ok(())
}

/// `svc secret recover`: the answers kept in the recovery journal.
fn recover(
    place: &Place,
    json: bool,
    reveal: Option<&str>,
    discard: Option<&str>,
) -> Result<(), Error> {
    let journal = &place.backend.journal;
    if let Some(run_id) = discard {
        let removed = block_on(journal.discard(run_id))?;
        if removed == 0 {
            return Err(Error::Invalid(format!(
                "the recovery journal of `{}` holds no answer of run `{run_id}`",
                place.env
            )));
        }
        eprintln!("forgot {removed} kept answer(s) of run {run_id}");
        return Ok(());
    }
    let listed = block_on(journal.list())?;
    if listed.is_empty() && reveal.is_none() {
        if json {
            outln!("[]");
        } else {
            eprintln!(
                "the recovery journal of `{}` is empty ({})",
                place.env,
                journal.describe()
            );
        }
        return Ok(());
    }
    let identities = open(place)?;
    if let Some(wanted) = reveal {
        let (run_id, sequence) = match wanted.split_once('.') {
            Some((run, seq)) => (
                run,
                Some(seq.parse::<u32>().map_err(|_| {
                    Error::Invalid(format!("`{wanted}` is not RUN_ID or RUN_ID.SEQ"))
                })?),
            ),
            None => (wanted, None),
        };
        let of_run: Vec<_> = listed
            .iter()
            .filter(|l| l.run_id == run_id && sequence.is_none_or(|s| s == l.sequence))
            .collect();
        let one = match of_run.as_slice() {
            [one] => *one,
            [] => {
                return Err(Error::Invalid(format!(
                    "the recovery journal of `{}` holds no answer `{wanted}`",
                    place.env
                )));
            }
            several => {
                let choices: Vec<String> = several
                    .iter()
                    .map(|l| format!("{}.{}", l.run_id, l.sequence))
                    .collect();
                return Err(Error::Invalid(format!(
                    "run `{run_id}` kept {} answers: reveal one of {}",
                    several.len(),
                    choices.join(", ")
                )));
            }
        };
        let entry = block_on(journal.read(one, &identities))?;
        crate::output::bytes(&entry.body);
        crate::output::bytes(b"\n");
        return Ok(());
    }
    let mut shown = Vec::new();
    for listed in &listed {
        let entry = block_on(journal.read(listed, &identities))?;
        shown.push(RecoveredAnswer::of(&entry));
    }
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&shown).map_err(|e| Error::Invalid(e.to_string()))?
        );
        return Ok(());
    }
    for answer in &shown {
        let status = match answer.kind {
            "sent" => "sent, no answer recorded yet".to_string(),
            "no_answer" => "no answer came".to_string(),
            _ => answer.status.to_string(),
        };
        outln!(
            "{}.{}  {}  {}  {}  {} {}",
            answer.run_id,
            answer.sequence,
            answer.endpoint,
            status,
            answer
                .received_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            answer.method,
            answer.url
        );
        outln!("  body: {}", answer.body);
    }
    eprintln!(
        "string values are masked; `svc run ... --replay` uses the latest run's answers, \
         `--reveal RUN_ID[.SEQ]` prints one as it came"
    );
    Ok(())
}

/// `svc secret recover --apply RUN_ID`: runs the run's endpoint of the
/// project's program again with its kept answers (as `svc run --replay`
/// does for the latest), which stores what they carry.
fn apply_recovered(
    context: &Context,
    place: &Place,
    run_id: &str,
    identity: Option<String>,
    program: &[std::path::PathBuf],
) -> ExitCode {
    let paths = match context.program(program) {
        Ok(paths) => paths,
        Err(code) => return code,
    };
    let script = match super::run::load_paths(&paths) {
        Ok(script) => std::sync::Arc::new(script),
        Err(code) => return code,
    };
    let keys = match place.identities() {
        Ok(keys) => std::sync::Arc::new(keys),
        Err(error) => return store_error(&error),
    };
    let mut engine = crate::run::Engine::new(script, place.backend.clone(), Some(keys));
    engine.program_hint = context.program_hint(program);
    let mut request = match block_on(engine.replay_run(run_id)) {
        Ok(request) => request,
        Err(refusal) => return super::run::refusal_exit(&refusal),
    };
    if let Some(identity) = identity {
        request.identity = identity;
    }
    let admitted = match engine.admit(request) {
        Ok(admitted) => admitted,
        Err(refusal) => return super::run::refusal_exit(&refusal),
    };
    match block_on(engine.preflight(admitted.request())) {
        Ok(None) => {}
        Ok(Some(refusal)) => return super::run::refusal_exit(&refusal),
        Err(error) => return store_error(&error),
    }
    let finished = block_on(engine.run(admitted));
    let record = &finished.record;
    outln!("{}", record.human().trim_end());
    if let Some(error) = &finished.error {
        eprint!(
            "{}",
            crate::report::render_error(
                error.diagnostic_code(),
                &finished.redactor.redact(&error.message),
                error
                    .help
                    .as_deref()
                    .map(|h| finished.redactor.redact(h))
                    .as_deref(),
                crate::report::Style::for_stderr()
            )
        );
    } else {
        eprintln!("the answers of run {run_id} are stored; the journal forgot them");
    }
    exit::code(match record.outcome {
        crate::backend::Outcome::Success => exit::SUCCESS,
        crate::backend::Outcome::Failed => exit::FAILURE,
        crate::backend::Outcome::Denied => exit::PERMISSION_DENIED,
    })
}

/// A kept answer as `svc secret recover` shows it: every string masked.
#[derive(Serialize)]
struct RecoveredAnswer {
    run_id: String,
    sequence: u32,
    endpoint: String,
    /// `answer`, `sent` (the request went out, its answer is to come) or
    /// `no_answer` (it failed before one came).
    kind: &'static str,
    status: u16,
    received_at: DateTime<Utc>,
    method: String,
    url: String,
    body: serde_json::Value,
}

impl RecoveredAnswer {
    fn of(entry: &journal::Entry) -> RecoveredAnswer {
        let kind = match entry.status {
            journal::SENT => "sent",
            journal::NO_ANSWER => "no_answer",
            _ => "answer",
        };
        let body = match serde_json::from_slice::<serde_json::Value>(&entry.body) {
            Ok(mut json) => {
                mask_strings(&mut json);
                json
            }
            Err(_) if entry.body.is_empty() => serde_json::Value::Null,
            Err(_) => {
                serde_json::Value::String(format!("*** ({} bytes, not JSON)", entry.body.len()))
            }
        };
        RecoveredAnswer {
            run_id: entry.run_id.clone(),
            sequence: entry.sequence,
            endpoint: entry.endpoint.clone(),
            kind,
            status: entry.status,
            received_at: entry.received_at,
            method: entry.method.clone(),
            url: masked_url(&entry.url),
            body,
        }
    }
}

/// Every string of a JSON value replaced by its length.
fn mask_strings(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            *s = format!("*** ({} characters)", s.chars().count());
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask_strings),
        serde_json::Value::Object(map) => map.values_mut().for_each(mask_strings),
        _ => {}
    }
}

/// A URL without user, password or query values.
fn masked_url(text: &str) -> String {
    let Ok(mut url) = url::Url::parse(text) else {
        return "***".into();
    };
    let names: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    if !names.is_empty() {
        url.query_pairs_mut()
            .clear()
            .extend_pairs(names.iter().map(|k| (k.as_str(), "***")));
    }
    crate::net::http::display_url(&url)
}
