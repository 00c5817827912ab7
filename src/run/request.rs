//! Building and sending a `web_request`: every expression evaluated, what
//! may be shown of it, what the run learns about secrets from it, and the
//! recovery journal that keeps the answer to a request that sent a secret.

use zeroize::Zeroizing;

use std::sync::Arc;

use super::error::{ErrorKind, RunError};
use super::interpreter::{Frame, Run, store_failure};
use super::value::Value;
use crate::backend::record::Event;
use crate::check::sensitivity::is_sensitive_expr;
use crate::net::http;
use crate::oauth::assertion::{Assertion, Claims, Signer};
use crate::oauth::client::{Credentials, Endpoints};
use crate::secrets::journal;
use crate::syntax::ast::*;

const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A request ready to send, and what of it may be shown.
struct Built {
    http: http::Request,
    method: String,
    /// The URL as shown: redacted, without user and password.
    shown_url: String,
    /// For dry runs: the headers and body with secrets masked.
    shown_headers: Vec<(String, String)>,
    shown_body: Option<String>,
    /// Something it sends holds a secret (in the URL too).
    carries_secret: bool,
    /// It presents a secret its run replaces (a refresh token).
    rotating: bool,
}

impl<'e> Run<'e> {
    pub(super) async fn web_request(
        &mut self,
        frame: &mut Frame<'e>,
        request: &'e WebRequest,
    ) -> Result<(), RunError> {
        let depth = frame.depth;
        let client = match &request.auth {
            Some(Auth::Client { client, span }) => {
                Some(self.client(client).await.map_err(|e| e.at(*span))?)
            }
            _ => None,
        };
        let built = self.build(frame, request, client)?;
        if self.dry_run {
            let simulated = self.engine.mocks.as_ref().and_then(|mocks| {
                let node = self.engine.request_names.get(&request.span)?;
                mocks.answer(node, &built.method, &built.http.url)
            });
            self.trace.push(Event::Request {
                depth,
                method: built.method.clone(),
                url: built.shown_url.clone(),
                status: simulated.as_ref().map(|r| r.status.as_u16()),
                duration_ms: 0,
                attempts: 0,
                dry_run: true,
                replayed: false,
                headers: built.shown_headers,
                body: built.shown_body,
            });
            let Some(response) = simulated else {
                for mapping in &request.result_mapping {
                    self.assign(frame, &mapping.target, Value::Null, mapping.span)?;
                }
                return Ok(());
            };
            if !response.status.is_success() {
                return Err(self.http_error(&built.method, &built.shown_url, &response));
            }
            return self.map_results(frame, request, &response);
        }
        let replayed = built.carries_secret && self.replay.is_some();
        let sequence = self.sends;
        if built.carries_secret && !replayed {
            self.sends += 1;
        }
        let response = if replayed {
            let (response, received_at) = self.replayed(&built)?;
            self.answered_at = Some(received_at);
            response
        } else {
            let announced = self.announce(sequence, &built).await?;
            match self.engine.http.send(&built.http, &self.redactor).await {
                Ok(response) => {
                    self.answered_at = Some(chrono::Utc::now());
                    response
                }
                Err(error) => {
                    let error = RunError::from(error);
                    if announced {
                        self.no_answer(depth, sequence, &built).await;
                    }
                    self.trace.push(Event::Request {
                        depth,
                        method: built.method,
                        url: built.shown_url,
                        status: error.status(),
                        duration_ms: 0,
                        attempts: 0,
                        dry_run: false,
                        replayed: false,
                        headers: Vec::new(),
                        body: None,
                    });
                    return Err(error.help_if_missing("check the URL and that the server is up"));
                }
            }
        };
        for (i, retried) in response.retries.iter().enumerate() {
            self.trace.push(Event::Retry {
                depth,
                attempt: i as u32 + 1,
                reason: self.redactor.redact(&retried.reason),
                wait_ms: retried.wait.as_millis() as u64,
            });
        }
        self.trace.push(Event::Request {
            depth,
            method: built.method.clone(),
            url: built.shown_url.clone(),
            status: Some(response.status.as_u16()),
            duration_ms: response.elapsed.as_millis() as u64,
            attempts: response.attempts,
            dry_run: false,
            replayed,
            headers: Vec::new(),
            body: None,
        });
        // The answer to a request that sent a secret may carry the next
        // one (a rotated refresh token): keep it before anything reads it.
        // A run that updates no secret has nothing to recover from it (the
        // journal's answers are replayed through the run's updates), so it
        // keeps none: no sealing and no fsync on every fetch. A request that
        // spends a secret its run replaces is always kept (a hook's
        // `run_service` of a refresh runs as a run of its own, under the
        // refresh's key: `Run::enter_own_run`).
        if built.carries_secret
            && !replayed
            && (built.rotating || self.engine.updates_secrets_key(&self.endpoint_key))
        {
            self.keep(depth, sequence, &built, &response).await;
        }
        if request.token_request
            && let Some(error) = self.token_failure(request, &built, &response)
        {
            return Err(error);
        }
        if !response.status.is_success() {
            return Err(self.http_error(&built.method, &built.shown_url, &response));
        }
        // A token answer may say when its refresh token expires: the
        // connection remembers (`refresh_token_expires_in`, Keycloak's
        // `refresh_expires_in`, Microsoft's `x_refresh_token_expires_in`).
        if built.carries_secret
            && let Ok(tokens) = crate::oauth::tokens::Tokens::parse(&response.body)
            && let Some(expires_at) = tokens.expires_at(
                TokenField::RefreshToken,
                self.answered_at.unwrap_or_else(chrono::Utc::now),
            )
        {
            self.refresh_token_expires_at = Some(expires_at);
        }
        self.map_results(frame, request, &response)
    }

    /// The failure a token answer of `refresh_tokens` or
    /// `client_credentials` says: an error with a 2xx status (GitHub and
    /// Slack answer 200 with `error`), or an error its provider names in
    /// another field (the profile's failures), so that the connection's
    /// health can read it.
    fn token_failure(
        &self,
        request: &WebRequest,
        built: &Built,
        response: &http::Response,
    ) -> Option<RunError> {
        let profile = match &request.auth {
            Some(Auth::Client { client, .. }) => self
                .script()
                .client(client.as_str())
                .and_then(|c| c.provider.as_ref())
                .and_then(|p| crate::providers::get(&p.name.text)),
            _ => None,
        };
        let answer = crate::oauth::tokens::ErrorAnswer::parse(&response.body).or_else(|| {
            profile?
                .failures
                .iter()
                .filter_map(|f| f.error_field.as_deref())
                .find_map(|field| {
                    crate::oauth::tokens::ErrorAnswer::parse_field(&response.body, field)
                })
        })?;
        if response.status.is_success() {
            // An answer with an access token succeeded, whatever else it says.
            let tokens = crate::oauth::tokens::Tokens::parse(&response.body).ok();
            if tokens.is_some_and(|t| t.access_token.is_some()) {
                return None;
            }
        }
        let mut error = self.http_error(&built.method, &built.shown_url, response);
        if error.provider.is_none() {
            error.message = self.redactor.redact(&format!(
                "{}: {}{}",
                error.message,
                answer.error,
                answer
                    .error_description
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ));
            error.provider = Some(Box::new(crate::oauth::tokens::ErrorAnswer {
                error: self.redactor.redact(&answer.error),
                error_description: answer.error_description.map(|d| self.redactor.redact(&d)),
            }));
        }
        Some(error)
    }

    /// The credentials and token endpoint of an `oauth_client`, for
    /// `auth client(NAME)`.
    async fn client(&mut self, name: &Name) -> Result<(Credentials, url::Url), RunError> {
        let client = self.script().client(name.as_str()).ok_or_else(|| {
            RunError::new(
                ErrorKind::Type,
                format!("no oauth_client is called `{}`", name.text),
            )
        })?;
        let document = self.document.clone().ok_or_else(|| {
            RunError::new(
                ErrorKind::Limit,
                "the secret store was read before it was loaded (a bug in svc)",
            )
        })?;
        let env = self.engine.env().to_string();
        let credentials = Credentials::resolve(client, &document, &env, &mut self.redactor)?;
        let endpoints = Endpoints::resolve(
            client,
            &document,
            &env,
            &self.engine.http,
            &mut self.redactor,
            &mut self.discovered,
        )
        .await?;
        Ok((credentials, endpoints.token))
    }

    /// Evaluates a request's expressions into a request to send.
    fn build(
        &mut self,
        frame: &Frame<'e>,
        request: &'e WebRequest,
        client: Option<(Credentials, url::Url)>,
    ) -> Result<Built, RunError> {
        let (mut url, mut carries_secret) = match (&request.url, &client) {
            (Some(url_expr), _) => {
                let secret = is_sensitive_expr(url_expr, &frame.sensitive);
                let url_text = self
                    .eval(frame, url_expr)
                    .map_err(|e| e.at(url_expr.span))?
                    .to_text();
                if secret {
                    self.redactor.add(&url_text);
                }
                let url = url::Url::parse(&url_text).map_err(|e| {
                    RunError::new(
                        ErrorKind::Type,
                        self.redactor
                            .redact(&format!("`{url_text}` is not a valid URL: {e}")),
                    )
                    .at(url_expr.span)
                })?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(RunError::new(
                        ErrorKind::Type,
                        "only http and https URLs can be requested",
                    )
                    .at(url_expr.span));
                }
                (url, secret)
            }
            // The client's token endpoint.
            (None, Some((_, token))) => (token.clone(), false),
            (None, None) => {
                return Err(RunError::new(ErrorKind::Type, "the request has no URL"));
            }
        };
        if !request.query.is_empty() {
            let mut pairs = Vec::new();
            for field in &request.query {
                let value = self
                    .eval(frame, &field.value)
                    .map_err(|e| e.at(field.span))?
                    .to_text();
                if is_sensitive_expr(&field.value, &frame.sensitive) {
                    self.redactor.add(&value);
                    carries_secret = true;
                }
                pairs.push((field.name.value.clone(), value));
            }
            url.query_pairs_mut().extend_pairs(pairs);
        }
        let mut shown_headers = Vec::new();
        let mut headers = Vec::new();
        for field in &request.headers {
            let value = self
                .eval(frame, &field.value)
                .map_err(|e| e.at(field.span))?
                .to_text();
            let secret = is_sensitive_expr(&field.value, &frame.sensitive);
            if secret {
                self.redactor.add(&value);
                carries_secret = true;
            }
            shown_headers.push((field.name.value.clone(), self.mask(&value, secret)));
            headers.push(http::Header {
                name: field.name.value.clone(),
                value,
                secret,
            });
        }
        let mut shown_body = None;
        let mut body_secret = false;
        let body = match &request.body {
            None => http::Body::None,
            Some(RequestBody::Form { fields, .. }) => {
                let mut pairs = Vec::new();
                let mut shown = Vec::new();
                for field in fields {
                    let value = self
                        .eval(frame, &field.value)
                        .map_err(|e| e.at(field.span))?
                        .to_text();
                    let secret = is_sensitive_expr(&field.value, &frame.sensitive);
                    if secret {
                        self.redactor.add(&value);
                        body_secret = true;
                    }
                    shown.push(format!(
                        "{}={}",
                        field.name.value,
                        self.mask(&value, secret)
                    ));
                    pairs.push((field.name.value.clone(), value));
                }
                shown_body = Some(shown.join("&"));
                http::Body::Form(pairs)
            }
            Some(RequestBody::Json { fields, .. }) => {
                let mut object = serde_json::Map::new();
                let mut shown = serde_json::Map::new();
                for field in fields {
                    let value = self
                        .eval(frame, &field.value)
                        .map_err(|e| e.at(field.span))?;
                    let secret = is_sensitive_expr(&field.value, &frame.sensitive);
                    let json = value.to_json();
                    if secret {
                        self.redactor.add(&value.to_text());
                        self.redactor.add(&json.to_string());
                        body_secret = true;
                    }
                    shown.insert(
                        field.name.value.clone(),
                        if secret {
                            serde_json::Value::String("***".into())
                        } else {
                            json.clone()
                        },
                    );
                    object.insert(field.name.value.clone(), json);
                }
                shown_body = Some(
                    self.redactor
                        .redact(&serde_json::Value::Object(shown).to_string()),
                );
                http::Body::Json(serde_json::Value::Object(object))
            }
            Some(RequestBody::Raw { value, .. }) => {
                let text = self
                    .eval(frame, value)
                    .map_err(|e| e.at(value.span))?
                    .to_text();
                let secret = is_sensitive_expr(value, &frame.sensitive);
                if secret {
                    self.redactor.add(&text);
                    body_secret = true;
                }
                shown_body = Some(self.mask(&text, secret));
                http::Body::Raw(text)
            }
        };
        carries_secret |= body_secret;
        // Who the credentials of a token request are for: its URL, without
        // query or fragment (RFC 7523 §3: the token endpoint).
        let mut audience = url.clone();
        audience.set_query(None);
        audience.set_fragment(None);
        let mut shown_form: Vec<String> = Vec::new();
        let auth = match &request.auth {
            None => None,
            Some(Auth::Basic { user, password, .. }) => {
                let user_text = self
                    .eval(frame, user)
                    .map_err(|e| e.at(user.span))?
                    .to_text();
                let password_text = self
                    .eval(frame, password)
                    .map_err(|e| e.at(password.span))?
                    .to_text();
                if is_sensitive_expr(user, &frame.sensitive)
                    || is_sensitive_expr(password, &frame.sensitive)
                {
                    self.redactor.add_basic(&user_text, &password_text);
                    carries_secret = true;
                }
                shown_headers.push(("Authorization".into(), "Basic ***".into()));
                Some(http::Auth::Basic(user_text, password_text))
            }
            Some(Auth::Bearer { token, .. }) => {
                let token_text = self
                    .eval(frame, token)
                    .map_err(|e| e.at(token.span))?
                    .to_text();
                if is_sensitive_expr(token, &frame.sensitive) {
                    self.redactor.add(&token_text);
                    carries_secret = true;
                }
                shown_headers.push(("Authorization".into(), "Bearer ***".into()));
                Some(http::Auth::Bearer(token_text))
            }
            Some(Auth::Client { .. }) => {
                let (credentials, _) = client.expect("resolved before building");
                let (header, form) = credentials.shown();
                if let Some(header) = header {
                    shown_headers.push(("Authorization".into(), header.into()));
                }
                shown_form = form;
                carries_secret |= credentials.is_secret();
                Some(credentials.auth(&audience))
            }
            Some(Auth::PrivateKeyJwt(jwt)) => {
                let client_id = match &jwt.client_id {
                    Some(expr) => self
                        .eval(frame, expr)
                        .map_err(|e| e.at(expr.span))?
                        .to_text(),
                    None => String::new(),
                };
                let signer = self
                    .signer(frame, &jwt.key, jwt.alg.as_ref(), jwt.kid.as_ref())?
                    .0;
                shown_form = vec![
                    format!("client_id={client_id}"),
                    format!("client_assertion_type={CLIENT_ASSERTION_TYPE}"),
                    "client_assertion=***".into(),
                ];
                carries_secret = true;
                Some(http::Auth::Form {
                    fields: vec![
                        ("client_id".into(), client_id.clone()),
                        ("client_assertion_type".into(), CLIENT_ASSERTION_TYPE.into()),
                    ],
                    signed: Some(http::Signed {
                        field: "client_assertion",
                        assertion: Arc::new(Assertion {
                            signer: Arc::new(signer),
                            claims: Claims::Client {
                                client_id,
                                audience: audience.to_string(),
                            },
                        }),
                    }),
                })
            }
            Some(Auth::JwtBearer(jwt)) => {
                let (signer, facts) =
                    self.signer(frame, &jwt.key, jwt.alg.as_ref(), jwt.kid.as_ref())?;
                let mut text = |expr: &'e Option<Expr>| -> Result<Option<String>, RunError> {
                    expr.as_ref()
                        .map(|e| Ok(self.eval(frame, e).map_err(|err| err.at(e.span))?.to_text()))
                        .transpose()
                };
                let issuer = match text(&jwt.issuer)? {
                    Some(issuer) => issuer,
                    None => facts.client_email.ok_or_else(|| {
                        RunError::new(
                            ErrorKind::Type,
                            "`jwt_bearer` needs `issuer`: the key names no `client_email`",
                        )
                        .at(jwt.span)
                        .help("add `issuer = \"...\"`: who the assertion says is asking")
                    })?,
                };
                let subject = text(&jwt.subject)?;
                let scope = text(&jwt.scope)?;
                let audience = text(&jwt.audience)?.unwrap_or_else(|| audience.to_string());
                shown_form = vec![
                    format!("grant_type={JWT_BEARER_GRANT}"),
                    "assertion=***".into(),
                ];
                carries_secret = true;
                Some(http::Auth::Form {
                    fields: vec![("grant_type".into(), JWT_BEARER_GRANT.into())],
                    signed: Some(http::Signed {
                        field: "assertion",
                        assertion: Arc::new(Assertion {
                            signer: Arc::new(signer),
                            claims: Claims::Grant {
                                issuer,
                                subject,
                                audience,
                                scope,
                            },
                        }),
                    }),
                })
            }
        };
        if !shown_form.is_empty() {
            let mut parts: Vec<String> = shown_body
                .take()
                .filter(|b| !b.is_empty())
                .into_iter()
                .collect();
            parts.extend(shown_form);
            shown_body = Some(parts.join("&"));
        }
        // Credentials in a form go by POST.
        let default_method = match &request.auth {
            Some(Auth::Client { .. } | Auth::PrivateKeyJwt(_) | Auth::JwtBearer(_)) => "POST",
            _ => "GET",
        };
        let method_name = request
            .method
            .as_ref()
            .map_or(default_method, |m| m.as_str());
        let method = reqwest::Method::from_bytes(method_name.as_bytes()).map_err(|_| {
            RunError::new(
                ErrorKind::Type,
                format!("`{method_name}` is not an HTTP method"),
            )
        })?;
        let shown_url = self.redactor.redact(&http::display_url(&url));
        // A request that presents a secret its run replaces reaches the
        // server at most once, unless the program asked for retries.
        let rotating = self
            .script()
            .checked
            .analysis
            .rotating
            .contains_key(&request.span);
        let once = request.retry.is_none() && rotating;
        let http = http::Request {
            method,
            url,
            headers,
            body,
            body_secret,
            auth,
            timeout: request
                .timeout
                .as_ref()
                .and_then(|t| t.value)
                .unwrap_or(http::DEFAULT_TIMEOUT),
            redirects: request.redirects.as_ref().map_or(0, |r| r.value as usize),
            cross_origin: request.cross_origin.is_some(),
            attempts: request
                .retry
                .as_ref()
                .and_then(|r| r.attempts.as_ref())
                .map_or(http::DEFAULT_ATTEMPTS, |a| a.value as u32),
            max_time: request
                .retry
                .as_ref()
                .and_then(|r| r.max_time.as_ref())
                .and_then(|m| m.value)
                .unwrap_or(http::DEFAULT_MAX_TIME),
            once,
        };
        Ok(Built {
            http,
            method: method_name.to_string(),
            shown_url,
            shown_headers,
            shown_body,
            carries_secret,
            rotating,
        })
    }

    /// The signer of a key held in a secret, and what the key said.
    fn signer(
        &mut self,
        frame: &Frame<'e>,
        key: &'e Expr,
        alg: Option<&'e PlainString>,
        kid: Option<&'e Expr>,
    ) -> Result<(Signer, crate::oauth::assertion::KeyFacts), RunError> {
        let name = match &key.kind {
            ExprKind::Secret { name } => name.text.clone(),
            _ => "key".into(),
        };
        let text =
            zeroize::Zeroizing::new(self.eval(frame, key).map_err(|e| e.at(key.span))?.to_text());
        if text.trim().is_empty() {
            return Err(RunError::from(
                crate::oauth::Error::new(
                    crate::oauth::Code::MissingValue,
                    format!(
                        "secret `{name}` (the signing key) has no value in `{}`",
                        self.engine.env()
                    ),
                )
                .help(format!(
                    "set it: `svc secret set {name} --env {} < key.pem`",
                    self.engine.env()
                )),
            )
            .at(key.span));
        }
        self.redactor.add(&text);
        let kid = match kid {
            Some(expr) => Some(
                self.eval(frame, expr)
                    .map_err(|e| e.at(expr.span))?
                    .to_text(),
            ),
            None => None,
        };
        Signer::from_secret(&name, &text, alg.map(|a| a.value.as_str()), kid)
            .map_err(|e| RunError::from(e).at(key.span))
    }

    /// A journal entry of this run about a request: its answer, or a send.
    fn entry(
        &self,
        sequence: u32,
        built: &Built,
        status: u16,
        response: Option<&http::Response>,
    ) -> journal::Entry {
        journal::Entry {
            format: journal::FORMAT,
            run_id: self.run_id.clone(),
            endpoint: self.endpoint_key.clone(),
            environment: self.engine.env().to_string(),
            sequence,
            received_at: chrono::Utc::now(),
            method: built.method.clone(),
            url: built.http.url.to_string(),
            status,
            headers: response.map_or_else(Vec::new, |response| {
                response
                    .headers
                    .iter()
                    .filter_map(|(n, v)| Some((n.to_string(), v.to_str().ok()?.to_string())))
                    .collect()
            }),
            body: Zeroizing::new(response.map_or_else(Vec::new, |r| r.body.clone())),
            identity: self.identity.clone(),
            based_on: self.based_on.clone(),
            params: self.params.clone(),
            answer_by: None,
            rotating: built.rotating,
        }
    }

    /// Before a request that presents a secret the run replaces leaves a
    /// run holding database locks: records the send where every replica
    /// sees it (`run::settle` says why). Returns whether it recorded one;
    /// a send that cannot be recorded is not made.
    async fn announce(&mut self, sequence: u32, built: &Built) -> Result<bool, RunError> {
        if !built.rotating || self.held.is_empty() || !self.engine.backend.is_shared() {
            return Ok(false);
        }
        let mut entry = self.entry(sequence, built, journal::SENT, None);
        let due = built
            .http
            .max_time
            .saturating_add(built.http.timeout)
            .min(std::time::Duration::from_secs(24 * 3600));
        entry.answer_by = chrono::TimeDelta::from_std(due)
            .ok()
            .and_then(|due| entry.received_at.checked_add_signed(due));
        self.engine
            .backend
            .journal
            .sending(&entry)
            .await
            .map_err(|e| {
                let mut failure = store_failure(&e);
                failure.message = format!(
                    "nothing was sent: the send of {} {} cannot be recorded: {}",
                    built.method, built.shown_url, failure.message
                );
                failure
            })?;
        Ok(true)
    }

    /// Records that an announced send got no answer, so that no run waits
    /// for one; said in the trace when it cannot be.
    async fn no_answer(&mut self, depth: usize, sequence: u32, built: &Built) {
        let entry = self.entry(sequence, built, journal::NO_ANSWER, None);
        let journal = self.engine.backend.journal.clone();
        if let Err(e) = crate::backend::through_outages(|| journal.record(&entry)).await {
            self.trace.push(Event::Journal {
                depth,
                message: format!(
                    "cannot record that the request got no answer: {}",
                    self.redactor.redact(&e.to_string())
                ),
            });
        }
    }

    /// Keeps an answer in the recovery journal; a journal that cannot be
    /// written is said in the trace, and the run goes on (its updates may
    /// still succeed).
    async fn keep(
        &mut self,
        depth: usize,
        sequence: u32,
        built: &Built,
        response: &http::Response,
    ) {
        let journal = self.engine.backend.journal.clone();
        let entry = self.entry(sequence, built, response.status.as_u16(), Some(response));
        let status = entry.status;
        let written = crate::backend::through_outages(|| journal.record(&entry)).await;
        let message = match written {
            Ok(_) => {
                self.journaled.push(status);
                "the answer is kept in the recovery journal until the run's updates are written"
                    .to_string()
            }
            Err(e) => format!(
                "cannot keep the answer in the recovery journal: {}",
                self.redactor.redact(&e.to_string())
            ),
        };
        self.trace.push(Event::Journal { depth, message });
    }

    /// The next kept answer of the run being replayed, in place of sending
    /// a request that presents a secret again, and when it came.
    fn replayed(
        &mut self,
        built: &Built,
    ) -> Result<(http::Response, chrono::DateTime<chrono::Utc>), RunError> {
        let replay = self.replay.as_mut().expect("checked by the caller");
        let Some(entry) = replay.entries.pop_front() else {
            return Err(RunError::new(
                ErrorKind::Replay,
                format!(
                    "the recovery journal of run {} holds no further answer for {} {}",
                    replay.run_id, built.method, built.shown_url
                ),
            )
            .help(
                "a replay never sends a request that presents a secret; run without `--replay` \
                 once the replayed answers are used",
            ));
        };
        if entry.method != built.method || entry.url != built.http.url.as_str() {
            let kept = self
                .redactor
                .redact(&format!("{} {}", entry.method, entry.url));
            return Err(RunError::new(
                ErrorKind::Replay,
                format!(
                    "the program now sends {} {} where run {} sent {kept}",
                    built.method, built.shown_url, replay.run_id
                ),
            )
            .help("a replay reads the answers in the order they came; change the program only after the request that was answered"));
        }
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &entry.headers {
            if let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(name.as_bytes()),
                reqwest::header::HeaderValue::from_str(value),
            ) {
                headers.append(name, value);
            }
        }
        let status = reqwest::StatusCode::from_u16(entry.status).map_err(|_| {
            store_failure(&crate::secrets::Error::Invalid(format!(
                "the recovery journal holds an answer with status {}",
                entry.status
            )))
        })?;
        Ok((
            http::Response {
                status,
                headers,
                body: entry.body.to_vec(),
                attempts: 0,
                elapsed: std::time::Duration::ZERO,
                retries: Vec::new(),
            },
            entry.received_at,
        ))
    }
}
