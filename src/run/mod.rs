//! Run: the interpreter of endpoints, with its HTTP client, redaction,
//! run records and endpoint logs.

pub mod engine;
pub mod error;
pub mod http;
pub mod log;
pub mod record;
pub mod redact;
pub mod value;

pub use engine::{Engine, Finished, Refusal, RunRequest, unknown_endpoint};
pub use error::{ErrorKind, RunError};
pub use record::{Outcome, RunRecord, Trigger};
