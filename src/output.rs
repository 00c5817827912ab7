//! Standard output: the one place svc writes to it.
//!
//! Every command prints through [`out!`], [`outln!`], [`bytes`] or
//! [`writer`]; `print!`, `println!` and `std::io::stdout` are denied
//! everywhere else (`clippy::print_stdout` in lib.rs, `disallowed-methods`
//! in clippy.toml), so a new print cannot bypass what this module does
//! about errors.
//!
//! A reader that goes away early (`svc secret list | head -1`) closes the
//! pipe. Rust ignores SIGPIPE, so the next write fails with EPIPE, and
//! `println!` panics on it (exit 101). Here a closed pipe ends svc the way
//! the signal ends a C program: at once and quietly, with the status a
//! shell shows for it, 141 (128 + SIGPIPE). Every write is flushed, so the
//! error shows where it happens, not in an exit handler that hides it. Any
//! other write error (a full disk, a closed descriptor) is reported on
//! standard error, exit 2.
//!
//! Text that another program wrote (an authorization server's user code,
//! URL or error description) passes through [`strip_controls`] before it
//! is printed, on standard output or standard error: the one place svc
//! decides what of it a terminal may see.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Write};

/// Ends svc after standard output failed.
fn fail(error: io::Error) -> ! {
    if error.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(i32::from(crate::exit::CLOSED_PIPE));
    }
    // Standard error may be closed too: nothing more to do then.
    let _ = writeln!(
        io::stderr(),
        "error: cannot write to standard output: {error}"
    );
    std::process::exit(i32::from(crate::exit::USAGE));
}

#[allow(clippy::disallowed_methods)]
fn stdout() -> io::StdoutLock<'static> {
    io::stdout().lock()
}

/// Writes formatted text; used by [`out!`] and [`outln!`].
pub fn print(args: fmt::Arguments<'_>) {
    let mut out = stdout();
    if let Err(error) = out.write_fmt(args).and_then(|()| out.flush()) {
        fail(error);
    }
}

/// Writes bytes as they are.
pub fn bytes(data: &[u8]) {
    let mut out = stdout();
    if let Err(error) = out.write_all(data).and_then(|()| out.flush()) {
        fail(error);
    }
}

/// Standard output as an [`io::Write`], for what writes through one
/// (serde_json, clap_complete, clap_mangen). Its writes never return an
/// error: they end svc as described above.
pub fn writer() -> Writer {
    Writer(stdout())
}

pub struct Writer(io::StdoutLock<'static>);

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).or_else(|error| fail(error))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().or_else(|error| fail(error))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Err(error) = self.0.flush() {
            fail(error);
        }
    }
}

/// Text from elsewhere made safe to print on a terminal: every control
/// character is dropped (C0, newline and tab included, DEL and C1), so no
/// escape sequence can clear the screen, move the cursor, retitle the
/// window or hide a link, and no line can be faked; so is every
/// bidirectional embedding, override and isolate (U+202A-U+202E,
/// U+2066-U+2069), so text reads in the order it is. What remains is shown
/// as it is: a server's `user_code` with an ESC in it shows what is left.
pub fn strip_controls(text: &str) -> Cow<'_, str> {
    let unsafe_char =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if text.chars().any(unsafe_char) {
        Cow::Owned(text.chars().filter(|&c| !unsafe_char(c)).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// `print!` through [`crate::output`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::print(format_args!($($arg)*))
    };
}

/// `println!` through [`crate::output`].
macro_rules! outln {
    () => {
        $crate::output::bytes(b"\n")
    };
    ($($arg:tt)*) => {
        $crate::output::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {out, outln};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_controls_leaves_no_escape_sequence_and_no_reordering() {
        let hostile = "\u{1b}[2J\u{1b}]0;owned\u{7}WDJB\u{9b}31m-\u{7f}MJHT\u{202e}\u{2066}\r\n\t";
        assert_eq!(strip_controls(hostile), "[2J]0;ownedWDJB31m-MJHT");
        assert!(matches!(
            strip_controls("https://idp.example/device é"),
            Cow::Borrowed("https://idp.example/device é")
        ));
    }
}
