//! Run: the interpreter of endpoints, their admission and settlement,
//! traces and replays.

pub mod admission;
mod connections;
pub mod engine;
pub mod error;
mod functions;
mod interpreter;
mod mapping;
pub mod mock;
mod operators;
pub mod params;
pub mod refresh;
mod request;
mod settle;
pub mod trace;
pub mod value;

pub use admission::{Refusal, RefusalKind, unknown_endpoint};
pub use engine::{Admitted, Engine, Finished, Replay, RunRequest};
pub use error::{ErrorKind, RunError};
