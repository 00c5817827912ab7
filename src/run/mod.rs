//! Run: the interpreter of endpoints, with its HTTP client, redaction,
//! run records and endpoint logs.

pub mod admission;
pub mod engine;
pub mod error;
mod functions;
pub mod http;
mod interpreter;
mod mapping;
pub mod mock;
mod operators;
pub mod params;
pub mod record;
pub mod redact;
pub mod refresh;
mod request;
mod settle;
pub mod trace;
pub mod value;

pub use admission::{Refusal, unknown_endpoint};
pub use engine::{Admitted, Engine, Finished, Replay, RunRequest};
pub use error::{ErrorKind, RunError};
pub(crate) use interpreter::through_outages;
pub use record::{Outcome, RunRecord, Trigger};
