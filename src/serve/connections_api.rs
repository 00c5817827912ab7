//! The connections API: every connection of the environment — the one
//! connection of each single-connection client, and the connected accounts
//! of `per_account` clients — listed page by page, read, tagged, deleted,
//! and an account's tokens read (refreshed on read as declared). Never a
//! token in a listing.
//!
//! Who may do what: reading a connection needs `read_status CLIENT` or
//! `connect CLIENT`; changing tags and deleting need `connect CLIENT`;
//! reading an account's token needs `read_secret NAME`. A key limited to
//! some accounts (`svc key create --connection-prefix/--connection-tag`)
//! gets 404 for any other, exactly as for one that does not exist.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value, json};

use super::App;
use super::api::{ApiError, Caller, authenticate, read_body, store_unavailable};
use crate::backend::accounts::{self, MAX_PAGE};
use crate::backend::connection::{ConnectionKey, ConnectionState, DEFAULT_ID, Health};
use crate::backend::{ConnectionQuery, Reach};
use crate::schedule::connections::{self, ConnectionStatus, Sources};
use crate::syntax::ast::{IdentityDecl, OAuthClientDecl};

/// A page when the caller does not say.
const DEFAULT_PAGE: usize = 100;

fn no_store(body: Value) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

fn not_found(client: &str, id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_connection",
        format!("`{client}` has no connection `{id}`"),
    )
}

/// The identity of an authenticated caller.
fn identity<'a>(app: &'a App, caller: &Caller) -> &'a IdentityDecl {
    app.script
        .identity(&caller.identity)
        .expect("authenticate checks it exists")
}

/// A client that holds connections, or 404.
fn client<'a>(app: &'a App, name: &str) -> Result<&'a OAuthClientDecl, ApiError> {
    connections::all_clients(&app.script)
        .find(|c| c.name.as_str() == name)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_client",
                format!("no oauth_client called `{name}` stores tokens"),
            )
        })
}

fn may_read(app: &App, identity: &IdentityDecl, client: &str) -> bool {
    app.script.can_read_status(identity, client) || app.script.can_connect(identity, client)
}

fn forbidden(caller: &Caller, grant: &str, client: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "`{}` may not do this with the connections of `{client}`; grant `{grant} {client}` \
             to one of its roles",
            caller.identity
        ),
    )
}

/// The schedules' state and the shared store, for the statuses.
struct Context {
    states: BTreeMap<ConnectionKey, ConnectionState>,
    document: Option<Arc<crate::secrets::Document>>,
    schedules: BTreeMap<String, crate::backend::ScheduleState>,
}

impl Context {
    async fn of(app: &App, single: bool) -> Result<Context, ApiError> {
        // The states of the single-connection clients: a handful of rows.
        let states = if single {
            let mut states = BTreeMap::new();
            for client in connections::clients(&app.script) {
                let key = ConnectionKey::default_of(client.name.as_str());
                if let Some(state) = app
                    .engine
                    .backend
                    .connections
                    .load_one(&key)
                    .await
                    .map_err(store_unavailable)?
                {
                    states.insert(key, state);
                }
            }
            states
        } else {
            BTreeMap::new()
        };
        Ok(Context {
            states,
            document: app.engine.store_document().await.ok().map(|(d, _)| d),
            schedules: app.schedules.snapshot(),
        })
    }

    fn sources<'a>(&'a self, app: &'a App) -> Sources<'a> {
        Sources {
            script: &app.script,
            environment: app.engine.env(),
            states: &self.states,
            document: self.document.as_deref(),
            schedules: &self.schedules,
            now: Utc::now(),
        }
    }
}

/// What `GET /api/connections` asks for.
struct Listing {
    client: Option<String>,
    state: Option<Health>,
    reach: Reach,
    after: Option<ConnectionKey>,
    limit: usize,
}

fn bad_request(code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

fn listing(query: Option<&str>) -> Result<Listing, ApiError> {
    let mut listing = Listing {
        client: None,
        state: None,
        reach: Reach::default(),
        after: None,
        limit: DEFAULT_PAGE,
    };
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "client" => listing.client = Some(value.into_owned()),
            "state" => {
                listing.state = Some(
                    Health::ALL
                        .into_iter()
                        .find(|h| h.as_str() == value)
                        .ok_or_else(|| {
                            bad_request(
                                "invalid_state",
                                format!(
                                    "`{value}` is not a state: healthy, degraded, \
                                     needs_reconsent, misconfigured or revoked"
                                ),
                            )
                        })?,
                )
            }
            "tag" => {
                let (key, value) = accounts::parse_tag(&value)
                    .map_err(|problem| bad_request("invalid_tag", problem))?;
                listing.reach.tags.insert(key, value);
            }
            "prefix" => listing.reach.prefix = Some(value.into_owned()),
            "limit" => {
                listing.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        bad_request(
                            "invalid_limit",
                            format!("`limit` is a number from 1 to {MAX_PAGE}"),
                        )
                    })?
            }
            "cursor" => {
                listing.after = Some(accounts::decode_cursor(&value).ok_or_else(|| {
                    bad_request(
                        "invalid_cursor",
                        "the cursor is not one this server gave; start again without it"
                            .to_string(),
                    )
                })?)
            }
            other => {
                return Err(bad_request(
                    "invalid_query",
                    format!(
                        "unknown query parameter `{other}`: client, state, tag, prefix, limit, \
                         cursor"
                    ),
                ));
            }
        }
    }
    Ok(listing)
}

/// Both reaches at once: the caller's key's and the query's.
fn both(key: &Reach, query: &Reach) -> Reach {
    let mut tags = key.tags.clone();
    tags.extend(query.tags.clone());
    // The longer of two prefixes where one extends the other; otherwise
    // none reaches both, and the key's is kept (the query's can only
    // narrow: checked item by item).
    let prefix = match (&key.prefix, &query.prefix) {
        (Some(k), Some(q)) if q.starts_with(k.as_str()) => Some(q.clone()),
        (Some(k), _) => Some(k.clone()),
        (None, q) => q.clone(),
    };
    Reach { prefix, tags }
}

/// `GET /api/connections?client=&state=&tag=KEY=VALUE&prefix=&limit=&cursor=`:
/// `{"connections": [...], "next_cursor": ...}` in the order of client
/// and id, of the clients the caller may read.
pub async fn list(
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = authenticate(&app, &headers).await?;
    let identity = identity(&app, &caller);
    let listing = listing(query.as_deref())?;
    if let Some(name) = &listing.client {
        client(&app, name)?;
        if !may_read(&app, identity, name) {
            return Err(forbidden(&caller, "read_status", name));
        }
    }
    let reach = both(&caller.reach, &listing.reach);
    let mut clients: Vec<&OAuthClientDecl> = connections::all_clients(&app.script)
        .filter(|c| listing.client.as_ref().is_none_or(|n| n == c.name.as_str()))
        .filter(|c| may_read(&app, identity, c.name.as_str()))
        .collect();
    clients.sort_by(|a, b| a.name.text.cmp(&b.name.text));
    let context = Context::of(&app, clients.iter().any(|c| !c.per_account)).await?;
    let sources = context.sources(&app);
    let mut found: Vec<ConnectionStatus> = Vec::new();
    let mut next = None;
    for declared in clients {
        if found.len() >= listing.limit {
            next = found.last().map(ConnectionStatus::key);
            break;
        }
        let name = declared.name.as_str();
        if listing
            .after
            .as_ref()
            .is_some_and(|after| name < after.client.as_str())
        {
            continue;
        }
        let after = listing
            .after
            .as_ref()
            .filter(|after| after.client == name)
            .cloned();
        if !declared.per_account {
            // Its one connection: listed before, when the cursor is on it.
            if after.is_some() {
                continue;
            }
            let key = ConnectionKey::default_of(name);
            let status = connections::statuses(&sources)
                .into_iter()
                .find(|s| s.client == name)
                .expect("a single-connection client has a status");
            if listing.state.is_none_or(|s| s == status.state.state)
                && reach.reaches(&key, &status.state)
            {
                found.push(status);
            }
            continue;
        }
        let page = app
            .engine
            .backend
            .connections
            .page(&ConnectionQuery {
                client: Some(name.to_string()),
                state: listing.state,
                reach: reach.clone(),
                after,
                limit: listing.limit - found.len(),
            })
            .await
            .map_err(store_unavailable)?;
        for (key, state) in &page.connections {
            // The query's prefix narrows what the key's allows.
            if listing.reach.reaches(key, state) {
                found.push(connections::account_status(
                    &sources, declared, key, state, None,
                ));
            }
        }
        if page.next.is_some() {
            next = page.next;
            break;
        }
    }
    Ok(no_store(json!({
        "connections": found,
        "next_cursor": next.as_ref().map(accounts::encode_cursor),
    })))
}

/// A connection the caller may reach, with its status; 404 otherwise.
async fn reached(
    app: &App,
    caller: &Caller,
    declared: &OAuthClientDecl,
    id: &str,
    with_values: bool,
) -> Result<(ConnectionKey, ConnectionStatus), ApiError> {
    let name = declared.name.as_str();
    let key = ConnectionKey {
        client: name.to_string(),
        connection_id: id.to_string(),
    };
    if !declared.per_account {
        if id != DEFAULT_ID || !caller.reach.is_all() {
            return Err(not_found(name, id));
        }
        let context = Context::of(app, true).await?;
        let status = connections::statuses(&context.sources(app))
            .into_iter()
            .find(|s| s.client == name)
            .expect("a single-connection client has a status");
        return Ok((key, status));
    }
    if accounts::invalid_id(id).is_some() {
        return Err(not_found(name, id));
    }
    let state = app
        .engine
        .backend
        .connections
        .load_one(&key)
        .await
        .map_err(store_unavailable)?
        .filter(|state| caller.reach.reaches(&key, state))
        .ok_or_else(|| not_found(name, id))?;
    let values = match (with_values, app.engine.keys.as_ref()) {
        (true, Some(keys)) => app.engine.backend.accounts.document(keys, &key).await.ok(),
        _ => None,
    };
    let context = Context::of(app, false).await?;
    let status = connections::account_status(
        &context.sources(app),
        declared,
        &key,
        &state,
        values.as_deref(),
    );
    Ok((key, status))
}

/// `GET /api/connections/CLIENT/ID`.
pub async fn show(
    State(app): State<Arc<App>>,
    Path((client_name, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = authenticate(&app, &headers).await?;
    let declared = client(&app, &client_name)?;
    if !may_read(&app, identity(&app, &caller), &client_name) {
        return Err(forbidden(&caller, "read_status", &client_name));
    }
    let (_, status) = reached(&app, &caller, declared, &id, true).await?;
    Ok(no_store(json!(status)))
}

/// The client of a change: `connect CLIENT`, and a `per_account` one.
fn changeable<'a>(
    app: &'a App,
    caller: &Caller,
    client_name: &str,
) -> Result<&'a OAuthClientDecl, ApiError> {
    let declared = client(app, client_name)?;
    if !app.script.can_connect(identity(app, caller), client_name) {
        return Err(forbidden(caller, "connect", client_name));
    }
    Ok(declared)
}

/// `PATCH /api/connections/CLIENT/ID` with `{"tags": {...}}`: replaces a
/// connected account's tags.
pub async fn patch(
    State(app): State<Arc<App>>,
    Path((client_name, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = authenticate(&app, &headers).await?;
    let declared = changeable(&app, &caller, &client_name)?;
    if !declared.per_account {
        return Err(bad_request(
            "not_per_account",
            format!("`{client_name}` holds one connection, which has no tags"),
        ));
    }
    let (key, _) = reached(&app, &caller, declared, &id, false).await?;
    let body = read_body(&app.limits, &headers, body).await?;
    let asked: Value = serde_json::from_slice(&body)
        .map_err(|_| bad_request("invalid_body", "the body is not JSON".into()))?;
    let tags: BTreeMap<String, String> = asked
        .get("tags")
        .cloned()
        .and_then(|t| serde_json::from_value(t).ok())
        .ok_or_else(|| {
            bad_request(
                "invalid_body",
                "send `{\"tags\": {\"KEY\": \"VALUE\", ...}}`".into(),
            )
        })?;
    if let Some(problem) = accounts::invalid_tags(&tags) {
        return Err(bad_request("invalid_tag", problem));
    }
    let known = app
        .engine
        .backend
        .connections
        .set_tags(&key, tags)
        .await
        .map_err(store_unavailable)?;
    if !known {
        return Err(not_found(&client_name, &id));
    }
    tracing::info!(
        env = app.engine.env(),
        identity = caller.identity.as_str(),
        "tags of connection `{key}` replaced"
    );
    let (_, status) = reached(&app, &caller, declared, &id, false).await?;
    Ok(no_store(json!(status)))
}

/// `DELETE /api/connections/CLIENT/ID`: a connected account's tokens
/// revoked at the provider (when it has a revocation endpoint), cleared in
/// one update, the account forgotten and `connection.deleted` sent.
pub async fn delete(
    State(app): State<Arc<App>>,
    Path((client_name, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = authenticate(&app, &headers).await?;
    let declared = changeable(&app, &caller, &client_name)?;
    let (key, _) = reached(&app, &caller, declared, &id, false).await?;
    let keys = app
        .engine
        .keys
        .clone()
        .ok_or_else(|| store_unavailable(app.engine.no_identity()))?;
    let audit_app = app.clone();
    let audit_caller = caller.clone();
    let audit_key = key.clone();
    let audit = move |names: Vec<String>| -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), crate::secrets::Error>> + Send + '_>,
    > {
        let (app, caller, key) = (audit_app.clone(), audit_caller.clone(), audit_key.clone());
        Box::pin(async move {
            for name in names {
                app.audit_in(&caller, &name, "revoke", Some(&key)).await?;
            }
            Ok(())
        })
    };
    let disconnect = crate::oauth::disconnect::Disconnect {
        target: crate::oauth::consent::Target {
            script: &app.script,
            client: declared,
            backend: &app.engine.backend,
            keys: &keys,
            key: key.clone(),
        },
        local_only: false,
        delete: true,
        lock_timeout: app.engine.lock_timeout,
        by: format!("{} (DELETE /api/connections)", caller.identity),
        audit: &audit,
    };
    match disconnect.run().await {
        Ok(done) => {
            tracing::info!(
                env = app.engine.env(),
                identity = caller.identity.as_str(),
                "connection `{key}` deleted"
            );
            Ok(no_store(json!({
                "client": key.client,
                "connection_id": key.connection_id,
                "state": "deleted",
                "revoked": done.revoked.iter().map(|h| h.as_str()).collect::<Vec<_>>(),
                "not_revoked_at_provider": done.not_asked,
                "cleared": done.cleared,
                "error": done.partial.as_ref().map(|e| json!({"code": e.code.as_str(), "message": e.message})),
            })))
        }
        Err(failure) => {
            let status = match failure.code {
                "svc::connection::busy" => StatusCode::CONFLICT,
                "svc::connection::unknown" => StatusCode::NOT_FOUND,
                code if code.starts_with("svc::oauth::") => StatusCode::BAD_GATEWAY,
                _ if failure.usage => StatusCode::BAD_REQUEST,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            let mut error = ApiError::new(status, "not_deleted", failure.message);
            let mut details = serde_json::Map::new();
            details.insert("cause".into(), json!(failure.code));
            if let Some(help) = failure.help {
                details.insert("help".into(), json!(help));
            }
            error.details = Some(details);
            Err(error)
        }
    }
}

/// `GET /api/connections/CLIENT/ID/secrets/NAME`: a connected account's
/// value of a per-account secret (needs `read_secret NAME`), refreshed
/// first when its `refreshed_by` says it is due; recorded in the audit log
/// before it leaves.
pub async fn read_secret(
    State(app): State<Arc<App>>,
    Path((client_name, id, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = authenticate(&app, &headers).await?;
    let identity = identity(&app, &caller);
    let declared = client(&app, &client_name)?;
    let key = ConnectionKey {
        client: client_name.clone(),
        connection_id: id.clone(),
    };
    if !app.script.can_read_secret(identity, &name) {
        let _ = app.audit_in(&caller, &name, "denied", Some(&key)).await;
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "`{}` may not read `{name}`; grant `read_secret {name}` to one of its roles",
                caller.identity
            ),
        ));
    }
    if !declared.per_account || !declared.stores_secret(&name) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_secret",
            format!("`{client_name}` keeps no per-account secret `{name}`"),
        ));
    }
    let keys = app
        .engine
        .keys
        .as_ref()
        .ok_or_else(|| store_unavailable(app.engine.no_identity()))?;
    // The account's state and values in one read: the common case, a
    // token still fresh, is answered from it.
    let (_, values) = match accounts::invalid_id(&id) {
        Some(_) => None,
        None => app
            .engine
            .backend
            .accounts
            .account(keys, &key)
            .await
            .map_err(store_unavailable)?,
    }
    .filter(|(state, _)| caller.reach.reaches(&key, state))
    .ok_or_else(|| not_found(&client_name, &id))?;
    let stored = values.get(&name).cloned();
    let entry = if app.engine.fresh_enough(&name, Some(&key), stored.as_ref()) {
        stored
    } else {
        super::api::fresh_entry(
            &app,
            &caller,
            &name,
            Some(&key),
            crate::backend::ReadAt::Now,
        )
        .await?
    };
    let Some(entry) = entry else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_value",
            format!("`{name}` has no value for connection `{key}`"),
        ));
    };
    // Recorded before the value leaves, or it does not leave.
    if app
        .audit_in(&caller, &name, "read", Some(&key))
        .await
        .is_err()
    {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit_unavailable",
            format!(
                "the read of `{name}` cannot be recorded in the audit log, so it is refused; the \
                 server's log says why"
            ),
        ));
    }
    Ok(no_store(json!({
        "name": name,
        "client": key.client,
        "connection_id": key.connection_id,
        "value": entry.value.expose(),
        "version": entry.version,
        "updated_at": entry.updated_at,
        "expires_at": entry.expires_at,
    })))
}
