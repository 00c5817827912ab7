//! Exit codes, in one place. README documents them.

use std::process::ExitCode;

/// Success: the check is clean (warnings allowed), the run succeeded.
pub const SUCCESS: u8 = 0;
/// The check found errors (or warnings with `--deny-warnings`), or the run failed.
pub const FAILURE: u8 = 1;
/// Usage, input/output or script errors: nothing was done.
pub const USAGE: u8 = 2;
/// The identity may not do what was asked.
pub const PERMISSION_DENIED: u8 = 3;
/// A connection the command needs cannot be refreshed until a person
/// consents again (`svc authorize`), or fixes its client.
pub const NEEDS_PERSON: u8 = 4;
/// The reader of standard output went away (`svc ... | head -1`): the
/// status a shell shows for a program that SIGPIPE ended, 128 + 13.
pub const CLOSED_PIPE: u8 = 141;

pub fn code(value: u8) -> ExitCode {
    ExitCode::from(value)
}
