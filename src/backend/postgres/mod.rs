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

mod accounts;
mod audit;
mod consent_sessions;
mod crypto;
mod deadline;
mod journal;
mod locks;
pub mod migrate;
mod schema;
mod stores;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};

use super::{Backend, Options};
use crate::secrets::Error;

pub use crypto::{age_decrypt, age_encrypt};
pub use schema::VERSION as SCHEMA_VERSION;

/// Connections a process keeps at most for its work; its locks live on a
/// session of their own ([`locks`]).
const POOL_SIZE: usize = 32;

/// How long the database may make no progress at all (answer no call of
/// this process) before the calls waiting on it fail as unavailable: a
/// database that stops answering without closing its connections (paused,
/// or cut off by a network that drops packets) fails requests within
/// seconds instead of holding them. A database that answers other calls
/// meanwhile is busy, not stalled: its callers wait, up to [`LONGEST_CALL`].
pub const STALL: Duration = Duration::from_secs(4);

/// How long one call waits at most, however busy the database is.
pub const LONGEST_CALL: Duration = Duration::from_secs(30);

/// The deadline of a connection attempt.
pub const CALL_DEADLINE: Duration = STALL;

/// What the server itself allows a statement: longer than the client's
/// deadline, so a client that gave up does not leave a query that holds
/// row locks running for long.
const STATEMENT_TIMEOUT_MS: u64 = 10_000;

/// An error of the database, or of reaching it: the backend is
/// unavailable. A PostgreSQL error says what the server said (its SQLSTATE
/// and message) or why it could not be reached; the message never holds
/// the URL's password.
pub fn unavailable<E: std::fmt::Display + 'static>(error: E) -> Error {
    let any: &dyn std::any::Any = &error;
    match any.downcast_ref::<tokio_postgres::Error>() {
        Some(error) => {
            let (problem, fix) = cause(error);
            Error::Unavailable { problem, fix }
        }
        None => Error::Unavailable {
            problem: error.to_string(),
            fix: None,
        },
    }
}

/// What went wrong in a PostgreSQL error, and how to fix it when the
/// server's SQLSTATE says: tokio-postgres shows a server's error as
/// "db error" and an I/O failure without its cause.
fn cause(error: &tokio_postgres::Error) -> (String, Option<String>) {
    use tokio_postgres::error::SqlState;
    if let Some(db) = error.as_db_error() {
        let code = db.code();
        let fix = if *code == SqlState::INVALID_CATALOG_NAME {
            Some(
                "the database the URL names does not exist on that server: create it \
                 (`createdb NAME`, as a user who may) or correct the URL's database name",
            )
        } else if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            Some("the server refused the URL's user or password: correct them in the URL")
        } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
            Some(
                "the URL's user lacks a privilege svc needs: grant it on the database \
                 (docs/deploy.md), or use the user that owns svc's tables",
            )
        } else if *code == SqlState::TOO_MANY_CONNECTIONS {
            Some(
                "the server has no connection to spare: raise its `max_connections`, or run fewer replicas",
            )
        } else if *code == SqlState::CANNOT_CONNECT_NOW {
            Some("the server is starting or stopping: try again when it is up")
        } else {
            None
        };
        let mut problem = format!(
            "the server said {} {}: {}",
            db.severity(),
            code.code(),
            db.message()
        );
        if let Some(hint) = db.hint() {
            problem.push_str(&format!(" (hint: {hint})"));
        }
        return (problem, fix.map(str::to_owned));
    }
    // I/O and TLS failures: the cause is the useful part.
    let mut problem = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        problem.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    (problem, None)
}

/// A pool's failure to hand out a connection, as [`cause`] says it.
fn pool_cause(error: &deadpool_postgres::PoolError) -> (String, Option<String>) {
    use deadpool_postgres::{HookError, PoolError};
    match error {
        PoolError::Backend(error) | PoolError::PostCreateHook(HookError::Backend(error)) => {
            cause(error)
        }
        other => (other.to_string(), None),
    }
}

/// When the database last answered a call of this process.
#[derive(Clone)]
pub struct Progress {
    epoch: std::time::Instant,
    /// Milliseconds from `epoch` to the last answer.
    last: Arc<std::sync::atomic::AtomicU64>,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            epoch: std::time::Instant::now(),
            last: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }

    /// The database answered a call.
    pub fn answered(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.last
            .fetch_max(now, std::sync::atomic::Ordering::Relaxed);
    }

    fn last(&self) -> std::time::Instant {
        self.epoch + Duration::from_millis(self.last.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Runs one call: it fails as unavailable once the database answered
    /// nothing for [`STALL`] since the call began (or since its last
    /// answer), or after `longest` in any case.
    pub async fn bound<T>(
        &self,
        shown: &str,
        longest: Duration,
        call: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let started = std::time::Instant::now();
        let mut call = std::pin::pin!(call);
        loop {
            let quiet_since = self.last().max(started);
            let deadline = (quiet_since + STALL).min(started + longest);
            match tokio::time::timeout_at(deadline.into(), &mut call).await {
                Ok(result) => {
                    if result.is_ok() {
                        self.answered();
                    }
                    return result;
                }
                Err(_) => {
                    let now = std::time::Instant::now();
                    if now >= started + longest {
                        return Err(Error::Unavailable {
                            problem: format!("{shown} did not answer within {longest:?}"),
                            fix: None,
                        });
                    }
                    if self.last().max(started) + STALL <= now {
                        return Err(Error::Unavailable {
                            problem: format!("{shown} answered nothing for {STALL:?}"),
                            fix: None,
                        });
                    }
                }
            }
        }
    }
}

/// The connections to one database.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    /// When the database last answered this process.
    pub progress: Progress,
    /// How the pool connects, for the sessions made outside it (locks).
    config: Arc<tokio_postgres::Config>,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    /// `postgres://host:port/db`, without user and password.
    pub shown: String,
    /// A session being opened ahead ([`Database::open_session_soon`]).
    spare: Arc<std::sync::Mutex<Option<Opening>>>,
}

/// A session on its way.
type Opening = tokio::task::JoinHandle<Result<Session, Error>>;

/// A database session of svc's own, outside the pool.
pub(super) struct Session {
    pub(super) client: tokio_postgres::Client,
    /// The server process of the session: what a lock's fence names.
    pub(super) pid: i32,
    /// False once the session ended.
    pub(super) alive: Arc<std::sync::atomic::AtomicBool>,
}

impl Session {
    pub(super) fn alive(&self) -> bool {
        self.alive.load(std::sync::atomic::Ordering::SeqCst) && !self.client.is_closed()
    }
}

impl Database {
    /// Connects (lazily: the pool opens connections on first use).
    pub fn connect(url: &str) -> Result<Database, Error> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            Error::Invalid(format!(
                "`{}` is not a PostgreSQL URL: {e}",
                crate::net::http::display_url_text(url)
            ))
        })?;
        // A statement may run this long on the server, whatever the URL's
        // own options say besides.
        let options = format!(
            "{} -c statement_timeout={STATEMENT_TIMEOUT_MS}",
            config.get_options().unwrap_or_default()
        );
        config
            .options(options.trim())
            .connect_timeout(CALL_DEADLINE)
            // A peer that vanished (a cut network, a machine gone) is
            // noticed within about a minute even on an idle session.
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .keepalives_interval(Duration::from_secs(10))
            .keepalives_retries(3);
        let tls = tls();
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .post_create(deadpool_postgres::Hook::async_fn(|client, _| {
                Box::pin(async move {
                    never_idle_out(client).await;
                    Ok(())
                })
            }))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(LONGEST_CALL))
            .create_timeout(Some(LONGEST_CALL))
            .build()
            .map_err(|e| Error::Invalid(format!("cannot set up the database pool: {e}")))?;
        Ok(Database {
            pool,
            progress: Progress::new(),
            config: Arc::new(config),
            tls,
            shown: shown_url(url),
            spare: Arc::default(),
        })
    }

    /// A connection from the pool.
    pub async fn client(&self) -> Result<Object, Error> {
        self.pool.get().await.map_err(|e| {
            let (problem, fix) = pool_cause(&e);
            Error::Unavailable {
                problem: format!("cannot reach {}: {problem}", self.shown),
                fix,
            }
        })
    }

    /// Starts opening a session of its own in the background, for the
    /// next [`Database::session`] to take: a command that will take a lock
    /// soon (a run that updates secrets) does not wait for the connection
    /// then. Needs a tokio runtime.
    pub fn open_session_soon(&self) {
        let db = self.clone();
        let opening = tokio::spawn(async move { db.new_session().await });
        *self.spare.lock().unwrap_or_else(|p| p.into_inner()) = Some(opening);
    }

    /// A session of its own, outside the pool: the one opened ahead when it
    /// is there and alive, else a new one.
    async fn session(&self) -> Result<Session, Error> {
        let spare = self.spare.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(opening) = spare
            && let Ok(Ok(session)) = opening.await
            && session.alive()
        {
            return Ok(session);
        }
        self.new_session().await
    }

    async fn new_session(&self) -> Result<Session, Error> {
        let (client, connection) = self
            .within(async {
                self.config.connect(self.tls.clone()).await.map_err(|e| {
                    let (problem, fix) = cause(&e);
                    Error::Unavailable {
                        problem: format!("cannot reach {}: {problem}", self.shown),
                        fix,
                    }
                })
            })
            .await?;
        let alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let flag = alive.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!("a database session ended: {e}");
            }
            flag.store(false, std::sync::atomic::Ordering::SeqCst);
        });
        // Both at once (pipelined): one wait for the database.
        let pid = async {
            self.within(async {
                let row = client
                    .query_one("SELECT pg_backend_pid()", &[])
                    .await
                    .map_err(unavailable)?;
                Ok(row.get(0))
            })
            .await
        };
        let ((), pid) = tokio::join!(never_idle_out(&client), pid);
        Ok(Session {
            client,
            pid: pid?,
            alive,
        })
    }

    /// Creates or migrates the schema; returns its version.
    pub async fn migrate(&self) -> Result<i32, Error> {
        let mut client = self.client().await?;
        schema::migrate(&mut client).await
    }
}

/// Turns `idle_session_timeout` off for a session of svc's: a lock
/// session waits between statements for as long as a run lasts, and a
/// pooled one that the server closed for idling would fail the next call
/// that takes it. (It is PostgreSQL 14's; an older server has no such
/// timeout, and refuses the name: that refusal is no failure.)
async fn never_idle_out(client: &tokio_postgres::Client) {
    let _ = tokio::time::timeout(
        CALL_DEADLINE,
        client.batch_execute("SET idle_session_timeout = 0"),
    )
    .await;
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

/// TLS for `sslmode=prefer` (the default) and above: rustls with the
/// system's roots. The roots (some 150 files) are read at the first
/// certificate to verify, not when the database is opened: a server that
/// declines TLS, or `sslmode=disable`, never costs their loading.
fn tls() -> tokio_postgres_rustls::MakeRustlsConnect {
    crate::net::http::install_crypto_provider();
    let config = rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SystemRoots::default()))
        .with_no_client_auth();
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

/// rustls's own verification of a server's certificate against the
/// system's roots, with the roots read once, on first use. Nothing is
/// verified differently: every call goes to `WebPkiServerVerifier`.
#[derive(Debug, Default)]
struct SystemRoots {
    verifier: std::sync::OnceLock<Result<Arc<rustls::client::WebPkiServerVerifier>, String>>,
}

impl SystemRoots {
    fn verifier(&self) -> Result<&Arc<rustls::client::WebPkiServerVerifier>, rustls::Error> {
        self.verifier
            .get_or_init(|| {
                let mut roots = rustls::RootCertStore::empty();
                for certificate in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(certificate);
                }
                rustls::client::WebPkiServerVerifier::builder(Arc::new(roots))
                    .build()
                    .map_err(|e| format!("no usable system roots: {e}"))
            })
            .as_ref()
            .map_err(|e| rustls::Error::General(e.clone()))
    }

    fn algorithms() -> rustls::crypto::WebPkiSupportedAlgorithms {
        rustls::crypto::CryptoProvider::get_default()
            .map(|p| p.signature_verification_algorithms)
            .unwrap_or_else(|| {
                #[allow(deprecated)]
                rustls::crypto::ring::default_provider().signature_verification_algorithms
            })
    }
}

impl rustls::client::danger::ServerCertVerifier for SystemRoots {
    fn verify_server_cert(
        &self,
        end_entity: &rustls_pki_types::CertificateDer<'_>,
        intermediates: &[rustls_pki_types::CertificateDer<'_>],
        server_name: &rustls_pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &Self::algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &Self::algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        Self::algorithms().supported_schemes()
    }
}

/// Opens an environment in a database, migrating the schema first;
/// `state_dir` keeps the answers that wait for the database.
pub async fn open(
    url: &str,
    state_dir: &Path,
    env: &str,
    options: &Options,
) -> Result<Backend, Error> {
    let database = Database::connect(url)?;
    if options.locks_soon {
        database.open_session_soon();
    }
    database.migrate().await?;
    Ok(stores::backend(database, state_dir, env, options).await)
}

impl Database {
    /// Runs one call to the database, bounded as [`Progress::bound`] says.
    pub async fn within<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        self.progress.bound(&self.shown, LONGEST_CALL, call).await
    }
}

/// The newest revision of an environment this process has heard of (from
/// a read of it, a write, or an audit line's commit), shared by the stores
/// that learn it: a cache read at it or later holds every change heard of.
#[derive(Clone)]
pub struct KnownRevision(Arc<std::sync::atomic::AtomicI64>);

impl KnownRevision {
    fn new() -> KnownRevision {
        KnownRevision(Arc::new(std::sync::atomic::AtomicI64::new(-1)))
    }

    /// The database said the environment is at `revision` (or later).
    fn heard(&self, revision: i64) {
        self.0
            .fetch_max(revision, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether what was read at `revision` holds every change heard of.
    fn is_covered_by(&self, revision: i64) -> bool {
        revision >= self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The environment's recipients as read at a revision, shared by the
/// secrets store (whose revision check reads them along) and the journal
/// (which seals answers to them): the journal asks the database again
/// only when a newer revision was heard of. Once read, they also say that
/// the environment exists (an environment is never deleted).
#[derive(Clone, Default)]
pub struct KnownRecipients(Arc<std::sync::Mutex<Option<(i64, String)>>>);

impl KnownRecipients {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<(i64, String)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The database said the recipients at `revision` are these.
    fn heard(&self, revision: i64, recipients: &str) {
        let mut known = self.slot();
        if known.as_ref().is_none_or(|(at, _)| *at <= revision) {
            *known = Some((revision, recipients.to_string()));
        }
    }

    /// The recipients, when they were read at a revision that holds every
    /// change heard of.
    fn current(&self, heard: &KnownRevision) -> Option<String> {
        self.slot()
            .as_ref()
            .filter(|(at, _)| heard.is_covered_by(*at))
            .map(|(_, recipients)| recipients.clone())
    }

    /// The recipients as last read, however long ago: what an answer is
    /// sealed to while the database cannot tell.
    fn last(&self) -> Option<String> {
        self.slot()
            .as_ref()
            .map(|(_, recipients)| recipients.clone())
    }
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
