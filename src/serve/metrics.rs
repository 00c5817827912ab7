//! `/metrics` in the Prometheus text format.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::backend::{Health, Outcome, RunRecord};
use crate::schedule::connections::ConnectionStatus;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    endpoint: String,
    outcome: String,
    trigger: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SecretLabel {
    secret: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScheduleLabel {
    schedule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

/// A connection, named as `svc connection show --json` names it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    environment: String,
    client: String,
    connection_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionStateLabels {
    environment: String,
    client: String,
    connection_id: String,
    state: String,
}

pub struct Metrics {
    registry: Registry,
    runs: Family<RunLabels, Counter>,
    durations: Family<EndpointLabel, Histogram>,
    expiry: Family<SecretLabel, Gauge<f64, AtomicU64>>,
    next_runs: Family<ScheduleLabel, Gauge<f64, AtomicU64>>,
    scheduler: Family<StateLabel, Gauge>,
    connection_state: Family<ConnectionStateLabels, Gauge>,
    refresh_token_expiry: Family<ConnectionLabels, Gauge<f64, AtomicU64>>,
    connections: Gauge,
    closed: Family<ReasonLabel, Counter>,
}

/// The connection gauges, as the server updates them.
pub struct ConnectionMetrics {
    open: Gauge,
    closed: Family<ReasonLabel, Counter>,
}

impl crate::serve::connections::Observer for ConnectionMetrics {
    fn opened(&self) {
        self.open.inc();
    }

    fn closed(&self, by_server: Option<crate::serve::connections::Closed>) {
        self.open.dec();
        if let Some(why) = by_server {
            self.closed
                .get_or_create(&ReasonLabel {
                    reason: why.name().to_string(),
                })
                .inc();
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("svc");
        let runs = Family::<RunLabels, Counter>::default();
        let durations = Family::<EndpointLabel, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ])
        });
        let expiry = Family::<SecretLabel, Gauge<f64, AtomicU64>>::default();
        let next_runs = Family::<ScheduleLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "runs",
            "Endpoint runs by endpoint, outcome and trigger",
            runs.clone(),
        );
        registry.register(
            "run_duration_seconds",
            "How long endpoint runs take",
            durations.clone(),
        );
        registry.register(
            "secret_expires_in_seconds",
            "Seconds until each secret with a known expiry expires (negative: expired)",
            expiry.clone(),
        );
        registry.register(
            "schedule_next_run_timestamp_seconds",
            "When each schedule fires next, as a Unix time",
            next_runs.clone(),
        );
        let scheduler = Family::<StateLabel, Gauge>::default();
        registry.register(
            "scheduler_state",
            "The scheduler's state: 1 for the current one (starting, running, standby, off, failed)",
            scheduler.clone(),
        );
        let connection_state = Family::<ConnectionStateLabels, Gauge>::default();
        registry.register(
            "connection_state",
            "Each connection's state: 1 for the current one (healthy, degraded, needs_reconsent, misconfigured, revoked)",
            connection_state.clone(),
        );
        let refresh_token_expiry = Family::<ConnectionLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "connection_refresh_token_expiry_timestamp_seconds",
            "When each connection's refresh token expires, as a Unix time (only when known)",
            refresh_token_expiry.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "http_connections",
            "Open HTTP connections",
            connections.clone(),
        );
        let closed = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "http_connections_closed",
            "Connections the server closed, by reason (header_timeout, idle_timeout, evicted)",
            closed.clone(),
        );
        Metrics {
            registry,
            scheduler,
            connection_state,
            refresh_token_expiry,
            connections,
            closed,
            runs,
            durations,
            expiry,
            next_runs,
        }
    }
}

impl Metrics {
    pub fn record(&self, record: &RunRecord) {
        let outcome = match record.outcome {
            Outcome::Success => "success",
            Outcome::Failed => "failed",
            Outcome::Denied => "denied",
        };
        let trigger = match &record.trigger {
            crate::backend::Trigger::Cli => "cli",
            crate::backend::Trigger::Http => "http",
            crate::backend::Trigger::Schedule { .. } => "schedule",
            crate::backend::Trigger::Read { .. } => "read",
            crate::backend::Trigger::KeepAlive { .. } => "keep_alive",
        };
        self.runs
            .get_or_create(&RunLabels {
                endpoint: record.endpoint.clone(),
                outcome: outcome.into(),
                trigger: trigger.into(),
            })
            .inc();
        self.durations
            .get_or_create(&EndpointLabel {
                endpoint: record.endpoint.clone(),
            })
            .observe(record.duration_ms as f64 / 1000.0);
    }

    pub fn set_secret_expiry(&self, secret: &str, seconds: f64) {
        self.expiry
            .get_or_create(&SecretLabel {
                secret: secret.to_string(),
            })
            .set(seconds);
    }

    pub fn set_next_run(&self, schedule: &str, unix_seconds: f64) {
        self.next_runs
            .get_or_create(&ScheduleLabel {
                schedule: schedule.to_string(),
            })
            .set(unix_seconds);
    }

    /// Sets the scheduler's state gauge: 1 for `current`, 0 for the others.
    pub fn set_scheduler_state(&self, current: &str) {
        for state in crate::serve::health::SchedulerState::NAMES {
            self.scheduler
                .get_or_create(&StateLabel {
                    state: state.to_string(),
                })
                .set(i64::from(state == current));
        }
    }

    /// Sets the gauges of the connections (`svc connection show`): 1 for
    /// each one's state and 0 for the others; the refresh token's expiry
    /// where it is known, and none where it is not.
    pub fn set_connections(&self, statuses: &[ConnectionStatus]) {
        for status in statuses {
            for state in Health::ALL {
                self.connection_state
                    .get_or_create(&ConnectionStateLabels {
                        environment: status.environment.clone(),
                        client: status.client.clone(),
                        connection_id: status.connection_id.clone(),
                        state: state.as_str().to_string(),
                    })
                    .set(i64::from(state == status.state.state));
            }
            let labels = ConnectionLabels {
                environment: status.environment.clone(),
                client: status.client.clone(),
                connection_id: status.connection_id.clone(),
            };
            match status.state.refresh_token_expires_at {
                Some(at) => {
                    self.refresh_token_expiry
                        .get_or_create(&labels)
                        .set(at.timestamp_millis() as f64 / 1000.0);
                }
                None => {
                    self.refresh_token_expiry.remove(&labels);
                }
            }
        }
    }

    /// The handles the connection server updates.
    pub fn connections(&self) -> ConnectionMetrics {
        ConnectionMetrics {
            open: self.connections.clone(),
            closed: self.closed.clone(),
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
