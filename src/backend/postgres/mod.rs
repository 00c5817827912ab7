//! The PostgreSQL backend: the state of an environment in a database that
//! several `svc serve` replicas share.
//!
//! tokio-postgres with a deadpool pool; TLS with rustls (the system's
//! roots) when the URL's `sslmode` asks for it. The database never holds a
//! plaintext secret: values are sealed with data keys that are wrapped
//! with age to the environment's recipients (see [`crypto`]). Locks are
//! session-level advisory locks on a connection of their own, so a killed
//! replica's locks go with its connection; each write is one transaction
//! that bumps the environment's revision, which readers compare with
//! their cached copy on every read (no stale cache across replicas).

mod crypto;
pub mod migrate;
mod schema;
mod stores;

use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};

use super::{Backend, Options};
use crate::secrets::Error;

pub use crypto::{age_decrypt, age_encrypt};
pub use schema::VERSION as SCHEMA_VERSION;

/// Connections a process keeps at most (runs holding locks each keep one).
const POOL_SIZE: usize = 32;

/// An error of the database, or of reaching it: the backend is
/// unavailable (the message never holds the URL's password).
pub fn unavailable(error: impl std::fmt::Display) -> Error {
    Error::Unavailable {
        problem: error.to_string(),
    }
}

/// The connections to one database.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    /// `postgres://host:port/db`, without user and password.
    pub shown: String,
}

impl Database {
    /// Connects (lazily: the pool opens connections on first use).
    pub fn connect(url: &str) -> Result<Database, Error> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| {
            Error::Invalid(format!(
                "`{}` is not a PostgreSQL URL: {e}",
                crate::run::http::display_url_text(url)
            ))
        })?;
        let manager = Manager::from_config(
            config,
            tls(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(std::time::Duration::from_secs(30)))
            .create_timeout(Some(std::time::Duration::from_secs(10)))
            .build()
            .map_err(|e| Error::Invalid(format!("cannot set up the database pool: {e}")))?;
        Ok(Database {
            pool,
            shown: shown_url(url),
        })
    }

    /// A connection from the pool.
    pub async fn client(&self) -> Result<Object, Error> {
        self.pool.get().await.map_err(|e| Error::Unavailable {
            problem: format!("cannot reach {}: {e}", self.shown),
        })
    }

    /// Creates or migrates the schema; returns its version.
    pub async fn migrate(&self) -> Result<i32, Error> {
        let mut client = self.client().await?;
        schema::migrate(&mut client).await
    }
}

/// A URL for messages: scheme, host, port and database only.
fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => format!(
            "{}://{}{}{}",
            parsed.scheme(),
            parsed.host_str().unwrap_or("localhost"),
            parsed.port().map(|p| format!(":{p}")).unwrap_or_default(),
            parsed.path()
        ),
        Err(_) => "the database".into(),
    }
}

/// TLS for `sslmode=require` and above: rustls with the system's roots.
fn tls() -> tokio_postgres_rustls::MakeRustlsConnect {
    crate::run::http::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(certificate);
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

/// Opens an environment in a database, migrating the schema first.
pub async fn open(url: &str, env: &str, options: &Options) -> Result<Backend, Error> {
    let database = Database::connect(url)?;
    database.migrate().await?;
    Ok(stores::backend(database, env, options))
}

/// A stable 64-bit key for an advisory lock.
pub fn lock_key(what: &str) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(what.as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// The environments of a database and their secret counts.
pub async fn status(url: &str) -> Result<(String, i32, Vec<(String, i64, i64)>), Error> {
    let database = Database::connect(url)?;
    let version = database.migrate().await?;
    let client = database.client().await?;
    let rows = client
        .query(
            "SELECT e.name, \
                    (SELECT count(*) FROM svc_secrets s WHERE s.env = e.name AND NOT s.removed), \
                    (SELECT count(*) FROM svc_api_keys k WHERE k.env = e.name AND k.revoked_at IS NULL) \
             FROM svc_environments e ORDER BY e.name",
            &[],
        )
        .await
        .map_err(unavailable)?;
    Ok((
        database.shown.clone(),
        version,
        rows.iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect(),
    ))
}

/// The database of a backend, for commands that work on it directly.
pub fn database_of(url: &str) -> Result<Arc<Database>, Error> {
    Database::connect(url).map(Arc::new)
}
