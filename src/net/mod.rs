//! Talking to other servers: the HTTP client every request goes through.

pub mod http;
