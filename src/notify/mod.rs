//! Delivering events to the `notify` receivers, signed as Standard
//! Webhooks specifies.
//!
//! The backend's outbox holds what is due ([`crate::backend::outbox`]);
//! [`Sender::pass`] claims a batch, sends each delivery once, and settles
//! it. `svc serve` makes a pass every second, and looks every minute for
//! refresh tokens about to expire ([`Sender::check_expiries`]); `svc
//! notify retry` sends one delivery at once.
//!
//! A delivery is a `POST` of the event's JSON body with three headers:
//! `webhook-id` (the delivery's id, the same on every attempt),
//! `webhook-timestamp` (the attempt's Unix time) and `webhook-signature`
//! (`v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`, keyed with
//! the decoded part of the `whsec_` secret). A 2xx answer delivers it;
//! anything else is retried later, never at once.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::{TimeDelta, Utc};

use crate::backend::outbox::{Attempt, Delivery};
use crate::backend::{Backend, ConnectionKey, ConnectionState, Observation, Subscriber};
use crate::net::http::{self, Body, Header, Http, Request};
use crate::program::Script;
use crate::redact::Redactor;
use crate::secrets::Identities;

/// How long a claimed delivery is kept from other senders: longer than a
/// whole batch's attempts, sent one after another.
pub const LEASE: TimeDelta = TimeDelta::seconds(60);

/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Deliveries claimed per pass: `BATCH` attempts of at most
/// `ATTEMPT_TIMEOUT` end well within the `LEASE`.
const BATCH: usize = 3;

const _: () =
    assert!((BATCH as u64) * ATTEMPT_TIMEOUT.as_secs() * 3 / 2 < LEASE.num_seconds() as u64);

/// A signing key: the decoded part of a `whsec_` secret.
pub struct SigningKey(ring::hmac::Key);

impl SigningKey {
    /// Reads `whsec_BASE64`. The error never holds the value.
    pub fn parse(secret: &str) -> Result<SigningKey, String> {
        let encoded = secret.trim().strip_prefix("whsec_").ok_or_else(|| {
            "the signing secret does not start with `whsec_` (Standard Webhooks' form)".to_string()
        })?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| "the signing secret is not `whsec_` and base64".to_string())?;
        if !(24..=64).contains(&key.len()) {
            return Err(format!(
                "the signing key is {} bytes; Standard Webhooks asks for 24 to 64",
                key.len()
            ));
        }
        Ok(SigningKey(ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            &key,
        )))
    }

    /// The `webhook-signature` header's value.
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> String {
        let content = format!("{id}.{timestamp}.{body}");
        let tag = ring::hmac::sign(&self.0, content.as_bytes());
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
        )
    }
}

/// A new signing secret, as `svc secret set` is given one.
pub fn new_signing_secret() -> String {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).expect("the operating system's random source");
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// Sends an environment's deliveries.
pub struct Sender {
    script: Arc<Script>,
    backend: Backend,
    keys: Option<Arc<Identities>>,
    http: Http,
    subscribers: Vec<Subscriber>,
}

impl Sender {
    pub fn new(script: Arc<Script>, backend: Backend, keys: Option<Arc<Identities>>) -> Sender {
        let subscribers = crate::backend::outbox::subscribers(script.program());
        Sender {
            script,
            backend,
            keys,
            http: Http::default(),
            subscribers,
        }
    }

    /// Whether the program declares any receiver.
    pub fn has_receivers(&self) -> bool {
        !self.subscribers.is_empty()
    }

    /// Claims what is due, sends it, and settles each; returns how many
    /// were sent. A backend that cannot be reached is logged and tried
    /// again on the next pass.
    pub async fn pass(&self) -> usize {
        let now = Utc::now();
        let claimed = match self.backend.outbox.claim(now, LEASE, BATCH).await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!("cannot read the outbox: {e}");
                return 0;
            }
        };
        for delivery in &claimed {
            let attempt = self.send(delivery).await;
            self.settle(delivery, attempt).await;
        }
        claimed.len()
    }

    /// Records an attempt, logging what it came to.
    pub async fn settle(&self, delivery: &Delivery, attempt: Attempt) {
        let Some(token) = delivery.lease_token.as_deref() else {
            return;
        };
        match &attempt {
            Attempt::Delivered => tracing::info!(
                "event {} ({}) delivered to notify `{}`",
                delivery.event,
                delivery.id,
                delivery.notify
            ),
            Attempt::Failed(error) | Attempt::Undeliverable(error) => tracing::warn!(
                "event {} ({}) not delivered to notify `{}`: {error}",
                delivery.event,
                delivery.id,
                delivery.notify
            ),
        }
        match self
            .backend
            .outbox
            .settle(&delivery.id, token, attempt, Utc::now())
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::info!(
                "the attempt at {} came after its claim ran out; another sender's stands",
                delivery.id
            ),
            Err(e) => tracing::warn!("cannot record the delivery of {}: {e}", delivery.id),
        }
    }

    /// One attempt at a delivery.
    pub async fn send(&self, delivery: &Delivery) -> Attempt {
        let Some(notify) = self
            .script
            .program()
            .notifies
            .iter()
            .find(|n| n.name.as_str() == delivery.notify)
        else {
            return Attempt::Undeliverable(format!(
                "notify `{}` is no longer declared",
                delivery.notify
            ));
        };
        let (Some(url), Some(secret)) = (&notify.url, &notify.secret) else {
            return Attempt::Failed(format!("notify `{}` is incomplete", delivery.notify));
        };
        let value = match self.signing_secret(secret.as_str()).await {
            Ok(value) => value,
            Err(e) => return Attempt::Failed(e),
        };
        let key = match SigningKey::parse(value.expose()) {
            Ok(key) => key,
            Err(e) => return Attempt::Failed(format!("secret `{}`: {e}", secret.text)),
        };
        let url = match url::Url::parse(&url.value) {
            Ok(url) => url,
            Err(e) => {
                return Attempt::Failed(format!("the URL of notify `{}`: {e}", notify.name.text));
            }
        };
        let timestamp = Utc::now().timestamp();
        let signature = key.sign(&delivery.id, timestamp, &delivery.body);
        let header = |name: &str, value: String| Header {
            name: name.to_string(),
            value,
            secret: false,
        };
        let request = Request {
            method: reqwest::Method::POST,
            url,
            headers: vec![
                header("content-type", "application/json".into()),
                header("webhook-id", delivery.id.clone()),
                header("webhook-timestamp", timestamp.to_string()),
                header("webhook-signature", signature),
            ],
            body: Body::Raw(delivery.body.clone()),
            body_secret: false,
            auth: None,
            timeout: ATTEMPT_TIMEOUT,
            redirects: 0,
            cross_origin: false,
            // The outbox retries, with its own backoff.
            attempts: 1,
            max_time: ATTEMPT_TIMEOUT,
            once: true,
        };
        let redactor = Redactor::of([value.expose()]);
        match self.http.send(&request, &redactor).await {
            Ok(response) if response.status.is_success() => Attempt::Delivered,
            Ok(response) => Attempt::Failed(format!(
                "the receiver answered {}",
                http::status_text(response.status)
            )),
            Err(e) => Attempt::Failed(e.message),
        }
    }

    async fn signing_secret(&self, name: &str) -> Result<crate::secrets::SecretValue, String> {
        let keys = self
            .keys
            .as_ref()
            .ok_or_else(|| format!("no identity to decrypt the signing secret `{name}` with"))?;
        let document = self
            .backend
            .secrets
            .document(keys)
            .await
            .map_err(|e| format!("cannot read the signing secret `{name}`: {e}"))?;
        document
            .get(name)
            .map(|entry| entry.value.clone())
            .ok_or_else(|| {
                format!(
                    "the signing secret `{name}` has no value in `{}`",
                    self.backend.env
                )
            })
    }

    /// Looks for refresh tokens that expire within their client's
    /// `expiry_warning`, and records each once: the record makes the
    /// `connection.refresh_token_expiring` event. The expiry is the one
    /// recorded with the connection, or else the store's for the client's
    /// refresh token, as `svc doctor` reads it.
    pub async fn check_expiries(&self) {
        let now = Utc::now();
        let states = match self.backend.connections.load().await {
            Ok(states) => states,
            Err(e) => {
                tracing::warn!("cannot read the connections: {e}");
                return;
            }
        };
        let document = match &self.keys {
            Some(keys) => self.backend.secrets.document(keys).await.ok(),
            None => None,
        };
        for (key, state) in &states {
            let Some(within) = self.expiry_warning(key) else {
                continue;
            };
            let stored_expiry = self
                .script
                .client(&key.client)
                .and_then(|c| c.store_of(crate::syntax::ast::TokenField::RefreshToken))
                .and_then(|secret| document.as_ref()?.get(secret.as_str())?.expires_at);
            let observation = Observation::ExpiryChecked {
                within,
                stored_expiry,
            };
            // Written only when there is something to say.
            if ConnectionState::observe(Some(state), &observation, now)
                .events
                .is_empty()
            {
                continue;
            }
            self.backend
                .observe_connection(key, &observation, &self.subscribers)
                .await;
        }
    }

    /// The client's `expiry_warning`; `None` for a client no longer
    /// declared.
    fn expiry_warning(&self, key: &ConnectionKey) -> Option<TimeDelta> {
        let client = self.script.client(&key.client)?;
        TimeDelta::from_std(client.expiry_warning_period()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_standard_webhooks_example_does() {
        // The example of the Standard Webhooks specification.
        let key = SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            key.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_malformed_secret_is_refused_without_showing_it() {
        for secret in [
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_not base64!",
            "whsec_c2hvcnQ=",
        ] {
            let error = SigningKey::parse(secret).err().unwrap();
            assert!(!error.contains(secret), "{error}");
        }
        assert!(SigningKey::parse(&new_signing_secret()).is_ok());
    }
}
