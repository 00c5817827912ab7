//! svc keeps OAuth 2.0 access tokens fresh, from a small language of
//! secrets, roles, services and schedules.
//!
//! The program flows through the modules in this order: [`source`] loads
//! files, [`syntax`] parses them into an AST, [`check`] validates it
//! ([`program`] ties the three together), and [`report`] renders what was
//! found. [`secrets`] keeps the values, one encrypted store per environment,
//! and [`run`] interprets endpoints. [`serve`] runs them for other apps
//! over HTTP and on [`schedule`].

#![forbid(unsafe_code)]
// Standard output goes through `output`, which ends quietly on a closed
// pipe; a `println!` elsewhere would panic there.
#![deny(clippy::print_stdout)]
// Guards with side effects (recording a property as seen) read worse than
// an `if` inside the arm.
#![allow(clippy::collapsible_match)]

pub mod backend;
pub mod check;
pub mod cli;
mod commands;
pub mod compile;
pub mod diagnostic;
pub mod exit;
pub mod format;
pub mod logging;
pub mod lsp;
pub mod oauth;
pub mod output;
pub mod program;
pub mod project;
pub mod report;
pub mod run;
pub mod schedule;
pub mod secrets;
pub mod serve;
pub mod source;
pub mod suggest;
pub mod syntax;
