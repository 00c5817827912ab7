//! `svc serve`.

use std::process::ExitCode;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::context::Context;
use super::{store_error, usage_error};
use crate::commands::cli::{LogFormat, ServeArgs};
use crate::exit;
use crate::logging;
use crate::run::Engine;
use crate::serve::connections;
use crate::serve::health::SchedulerState;
use crate::serve::{self, App, Schedules};

/// Where `svc serve` listens unless told otherwise.
const DEFAULT_LISTEN: std::net::SocketAddr = std::net::SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    8700,
));

pub fn run(args: ServeArgs) -> ExitCode {
    let context = match Context::find(&args.paths) {
        Ok(context) => context,
        Err(code) => return code,
    };
    let paths = match context.program(&args.paths) {
        Ok(paths) => paths,
        Err(code) => return code,
    };
    let env = match context.env(args.store.env.as_deref()) {
        Ok(env) => env,
        Err(code) => return code,
    };
    let project = context.project.as_ref();
    let log_format = match args.log_format {
        Some(LogFormat::Json) => logging::Format::Json,
        Some(LogFormat::Human) => logging::Format::Human,
        None => match project.and_then(|p| p.setting(Some(&env), |s| s.log_format.as_ref())) {
            Some(format) if format == "json" => logging::Format::Json,
            Some(format) if format == "human" => logging::Format::Human,
            Some(other) => {
                return usage_error(
                    "svc::project::invalid",
                    &format!("`log_format = \"{other}\"` is neither `human` nor `json`"),
                    None,
                );
            }
            None => logging::Format::Human,
        },
    };
    logging::init(log_format);
    let listen = match args.listen {
        Some(listen) => listen,
        None => match project.and_then(|p| p.setting(Some(&env), |s| s.listen.as_ref())) {
            Some(text) => match text.parse() {
                Ok(address) => address,
                Err(_) => {
                    return usage_error(
                        "svc::project::invalid",
                        &format!("`listen = \"{text}\"` is not an address such as 127.0.0.1:8700"),
                        None,
                    );
                }
            },
            None => DEFAULT_LISTEN,
        },
    };
    crate::backend::files::log::set_max_bytes(args.log_max_bytes);
    let options = crate::backend::Options {
        max_jobs: usize::try_from(args.max_jobs).unwrap_or(usize::MAX),
        lock_timeout: args.lock_timeout,
        ..crate::backend::Options::default()
    };
    let place = match context.place_with(
        &args.store,
        args.log_dir.as_deref(),
        args.state_dir.as_deref(),
        &options,
    ) {
        Ok(place) => place,
        Err(code) => return code,
    };
    let script = match super::run::load_paths(&paths) {
        Ok(script) => Arc::new(script),
        Err(code) => return code,
    };
    let identities = match place.identities() {
        Ok(identities) => Arc::new(identities),
        Err(error) => return store_error(&error),
    };
    let backend = place.backend.clone();
    // Fail now, not at the first request, if the store cannot be opened.
    if let Err(error) = super::block_on(backend.secrets.document(&identities)) {
        return store_error(&error);
    }
    // State that cannot be read stops the schedules, not the server:
    // `/healthz` says so, and endpoints are still served.
    let (states, state_error) = match super::block_on(backend.schedules.load()) {
        Ok(states) => (states, None),
        Err(error) => (Default::default(), Some(error)),
    };
    let schedules = Schedules::new(&script, states);
    let mut engine = Engine::new(script, backend, Some(identities));
    engine.lock_timeout = args.lock_timeout;
    engine.program_hint = context.program_hint(&args.paths);
    let limits = serve::Limits {
        max_jobs: usize::try_from(args.max_jobs).unwrap_or(usize::MAX),
        max_body_bytes: usize::try_from(args.max_body_bytes).unwrap_or(usize::MAX),
        body_timeout: args.body_timeout,
    };
    let hosted = match args.public_url.as_deref().map(serve::consent::public_url) {
        None => None,
        Some(Ok(url)) => {
            let hosted = serve::consent::Hosted::new(&url);
            tracing::info!(
                "hosted consent is on: register {} as a redirect URI of each per_account client",
                hosted.redirect_uri()
            );
            Some(hosted)
        }
        Some(Err(problem)) => {
            return usage_error(
                "svc::serve::invalid_public_url",
                &format!("`--public-url`: {problem}"),
                Some(
                    "give the origin your customers' browsers reach this server at, such as \
                     `--public-url https://svc.example.com` (plain http only to 127.0.0.1, ::1 \
                     or localhost); its /connect/callback is the redirect URI to register with \
                     the provider",
                ),
            );
        }
    };
    let mut app = App::new(engine, schedules, limits);
    app.consent = hosted;
    let app = Arc::new(app);
    if args.no_schedules {
        app.health.set_scheduler(SchedulerState::Off {
            reason: "--no-schedules",
        });
    } else if let Some(e) = state_error.filter(|_| app.schedules.any_enabled()) {
        tracing::error!(
            "schedules do not run: cannot read the schedule state {}: {e}",
            app.engine.backend.schedules.describe()
        );
        app.health.set_scheduler(SchedulerState::Failed {
            code: "state_unreadable",
            reason: "the schedule state cannot be read; the server's log says why".into(),
        });
    }
    // Idle sockets must not exhaust the descriptors the server needs: raise
    // the soft limit to the hard one, and keep the connection cap below it.
    let open_files = connections::raise_open_files_limit();
    let max_connections = connections::connection_cap(
        usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        open_files,
    );
    if (max_connections as u64) < args.max_connections {
        tracing::warn!(
            "serving at most {max_connections} connections, not {}: the open-file limit is {}",
            args.max_connections,
            open_files.unwrap_or_default()
        );
    }
    let listener = match std::net::TcpListener::bind(listen) {
        Ok(listener) => listener,
        Err(e) => {
            return usage_error(
                "svc::serve::cannot_listen",
                &format!("cannot listen on {listen}: {e}"),
                Some("choose another address with `--listen`"),
            );
        }
    };
    super::block_on(serve_until_stopped(app, listener, args, max_connections))
}

async fn serve_until_stopped(
    app: Arc<App>,
    listener: std::net::TcpListener,
    args: ServeArgs,
    max_connections: usize,
) -> ExitCode {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            crate::net::http::install_crypto_provider();
            match connections::tls_acceptor(cert, key) {
                Ok(acceptor) => Some(acceptor),
                Err(e) => {
                    return usage_error(
                        "svc::serve::bad_tls",
                        &format!(
                            "cannot use `{}` and `{}` for TLS: {e}",
                            cert.display(),
                            key.display()
                        ),
                        Some("give a PEM certificate chain and its PEM private key"),
                    );
                }
            }
        }
        _ => None,
    };
    let listener = match listener
        .set_nonblocking(true)
        .and_then(|()| tokio::net::TcpListener::from_std(listener))
    {
        Ok(listener) => listener,
        Err(e) => {
            return usage_error(
                "svc::serve::cannot_listen",
                &format!("cannot listen: {e}"),
                None,
            );
        }
    };
    let address = listener
        .local_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    let scheme = if tls.is_some() { "https" } else { "http" };
    let shutdown = CancellationToken::new();
    let limits = connections::Limits {
        header_timeout: args.header_timeout,
        idle_timeout: args.idle_timeout,
        max_connections,
    };
    let server = tokio::spawn(connections::serve(
        listener,
        tls,
        serve::router(app.clone()),
        limits,
        shutdown.clone(),
        Arc::new(app.metrics.connections()),
    ));
    tracing::info!(env = app.engine.env(), "listening on {scheme}://{address}");
    if app.engine.backend.is_shared() {
        tokio::spawn(serve::copy_spooled_answers(app.clone(), shutdown.clone()));
    }
    tokio::spawn(serve::keep_alive::keep_alive(app.clone(), shutdown.clone()));
    tokio::spawn(serve::keep_alive::deliver_events(
        app.clone(),
        shutdown.clone(),
    ));
    let scheduler = if app.health.scheduler() == SchedulerState::Starting {
        let task = tokio::spawn(serve::scheduler::run(app.clone(), shutdown.clone()));
        let (app, shutdown) = (app.clone(), shutdown.clone());
        Some(tokio::spawn(async move {
            serve::health::supervise(&app.health, task, &shutdown).await;
        }))
    } else {
        None
    };
    wait_for_signal().await;
    tracing::info!(
        "stopping: no new connections or schedule runs; waiting for running endpoint runs"
    );
    // Stops accepting, closes idle connections, lets requests in progress
    // answer, and stops the scheduler.
    shutdown.cancel();
    app.tracker.close();
    let drained = tokio::time::timeout(args.shutdown_timeout, app.tracker.wait()).await;
    if let Some(scheduler) = scheduler {
        let _ = scheduler.await;
    }
    let _ = tokio::time::timeout(args.shutdown_timeout, server).await;
    if drained.is_err() {
        tracing::warn!(
            "stopped after {}: some runs had not finished",
            crate::syntax::duration::format(args.shutdown_timeout)
        );
        return exit::code(exit::FAILURE);
    }
    tracing::info!("stopped");
    exit::code(exit::SUCCESS)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = match signal(SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
