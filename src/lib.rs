//! svc keeps OAuth 2.0 access tokens fresh, from a small language of
//! secrets, roles, services and schedules.
//!
//! The program flows through the modules in this order: [`source`] loads
//! files, [`syntax`] parses them into an AST, [`check`] validates it
//! ([`program`] ties the three together), and [`report`] renders what was
//! found. [`secrets`] keeps the values, one encrypted store per environment,
//! behind the storage seam of [`backend`], and [`run`] interprets
//! endpoints, sending requests through [`net`] and [`oauth`]. [`serve`]
//! runs them for other apps over HTTP and on [`schedule`]; [`commands`] is
//! the command line.
//!
//! The folders and files of `src/` form layers, listed here top first.
//! Each uses only the layers below it: no two import each other, directly
//! or around a circle, and a type two layers share lives in the lower one
//! (the run records and schedule state in `backend`, which stores them;
//! the HTTP client and its errors in `net`; constant evaluation in
//! `check`). `tests/layers.rs` holds the code to this list.
//!
//! ```text layers
//! commands                 the command line: arguments, dispatch, each command
//! serve lsp                the HTTP server and scheduler; the language server
//! compile                  what is made from a program: OpenAPI, Graphviz
//! schedule notify          when schedules are due; sending events to receivers
//! run                      the interpreter of endpoints
//! oauth                    OAuth 2.0 flows, client authentication, JWTs and keys
//! backend                  the storage seam: files or PostgreSQL; run records
//! net                      the HTTP client
//! program                  a program loaded, parsed and checked
//! check                    names, types, permissions, fixes; the semantic model
//! providers                provider profiles: the catalog, and programs filled from it
//! format report            formatting sources; rendering diagnostics
//! syntax                   the grammar, the AST and its spans
//! diagnostic               one finding, with its span, help and fixes
//! output                   standard output that ends quietly on a closed pipe
//! secrets source project suggest exit logging redact   the leaves
//! ```

#![forbid(unsafe_code)]
// Standard output goes through `output`, which ends quietly on a closed
// pipe; a `println!` elsewhere would panic there.
#![deny(clippy::print_stdout)]
// Guards with side effects (recording a property as seen) read worse than
// an `if` inside the arm.
#![allow(clippy::collapsible_match)]

pub mod backend;
pub mod check;
pub mod commands;
pub mod compile;
pub mod diagnostic;
pub mod exit;
pub mod format;
pub mod logging;
pub mod lsp;
pub mod net;
pub mod notify;
pub mod oauth;
pub mod output;
pub mod program;
pub mod project;
pub mod providers;
pub mod redact;
pub mod report;
pub mod run;
pub mod schedule;
pub mod secrets;
pub mod serve;
pub mod source;
pub mod suggest;
pub mod syntax;
