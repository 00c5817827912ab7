//! The stdio transport of `svc lsp`: messages framed with `Content-Length`
//! headers (LSP 3.17, "Base Protocol"), read with a size cap, and input
//! that is not a message answered with a JSON-RPC 2.0 error and skipped,
//! never a reason to stop. lsp-server's own reader stops at the first bad
//! frame and allocates whatever length a header announces; its `Connection`
//! is two channels, so the server loop reads this transport's messages
//! just the same.

use std::io::{self, BufRead, Read, Write};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use lsp_server::{Connection, ErrorCode, Message};
use serde_json::Value;

/// The largest message read; a larger one is refused and its bytes skipped.
pub const MAX_MESSAGE_BYTES: u64 = 64 * 1024 * 1024;

/// How much of a header line is kept: its end, where a header that follows
/// the remains of a message without a length is found.
const HEADER_LINE_KEPT: usize = 1024;

/// The threads that read standard input and write standard output.
pub struct Threads {
    writer: JoinHandle<io::Result<()>>,
}

impl Threads {
    /// Waits until everything the server sent is written. The reader is
    /// not waited for: it may be blocked on input that never comes.
    pub fn join(self) -> io::Result<()> {
        self.writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the output thread stopped unexpectedly")))
    }
}

/// A connection over standard input and output.
pub fn stdio() -> io::Result<(Connection, Threads)> {
    let (to_server, from_client) = crossbeam_channel::bounded::<Message>(0);
    let (to_client, from_server) = crossbeam_channel::bounded::<Message>(0);
    let (refusals, refused) = crossbeam_channel::bounded::<Refusal>(16);
    std::thread::Builder::new()
        .name("svc-lsp-reader".into())
        .spawn(move || {
            let stdin = io::stdin();
            read_messages(stdin.lock(), &to_server, &refusals);
        })?;
    let writer = std::thread::Builder::new()
        .name("svc-lsp-writer".into())
        // Through crate::output: a client that closed its end ends svc
        // quietly, as for every command.
        .spawn(move || write_messages(&mut crate::output::writer(), &from_server, &refused))?;
    let connection = Connection {
        sender: to_client,
        receiver: from_client,
    };
    Ok((connection, Threads { writer }))
}

/// Reads messages until the end of the input or an `exit` notification:
/// messages go to the server, answers to input that is none to the writer.
pub fn read_messages(input: impl BufRead, messages: &Sender<Message>, refusals: &Sender<Refusal>) {
    let mut frames = Frames::new(input);
    loop {
        let refusal = match frames.next_frame() {
            Frame::End => return,
            Frame::Refused(problem) => Refusal::new(Value::Null, ErrorCode::ParseError, problem),
            Frame::Message(body) => match decode(&body) {
                Decoded::Message(message) => {
                    let exit = matches!(&message, Message::Notification(n) if n.method == "exit");
                    if messages.send(message).is_err() || exit {
                        return;
                    }
                    continue;
                }
                Decoded::Refused(refusal) => refusal,
                Decoded::Dropped => continue,
            },
        };
        if refusals.send(refusal).is_err() {
            return;
        }
    }
}

/// Writes the server's messages and the refusals until the server is done.
pub fn write_messages(
    out: &mut impl Write,
    messages: &Receiver<Message>,
    refusals: &Receiver<Refusal>,
) -> io::Result<()> {
    loop {
        crossbeam_channel::select! {
            recv(messages) -> message => match message {
                Ok(message) => message.write(out)?,
                // The server is done; the refusals already made still go.
                Err(_) => {
                    while let Ok(refusal) = refusals.try_recv() {
                        refusal.write(out)?;
                    }
                    return Ok(());
                }
            },
            recv(refusals) -> refusal => match refusal {
                Ok(refusal) => refusal.write(out)?,
                // The reader is done: only the server's messages are left.
                Err(_) => {
                    for message in messages {
                        message.write(out)?;
                    }
                    return Ok(());
                }
            },
        }
    }
}

/// The JSON-RPC 2.0 error response to input that is not a message. Its
/// `id` may be null, which lsp-server's `Response` cannot carry.
#[derive(Debug, serde::Serialize)]
pub struct Refusal {
    jsonrpc: &'static str,
    id: Value,
    error: RefusalError,
}

#[derive(Debug, serde::Serialize)]
struct RefusalError {
    code: i32,
    message: String,
}

impl Refusal {
    fn new(id: Value, code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal {
            jsonrpc: "2.0",
            id,
            error: RefusalError {
                code: code as i32,
                message: message.into(),
            },
        }
    }

    fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let text = serde_json::to_string(self)?;
        write!(out, "Content-Length: {}\r\n\r\n{text}", text.len())?;
        out.flush()
    }
}

enum Decoded {
    Message(Message),
    Refused(Refusal),
    /// A response nobody can use: answering it could start an endless
    /// exchange of errors.
    Dropped,
}

/// A message from a frame's body, or the answer that refuses it.
fn decode(body: &[u8]) -> Decoded {
    // serde_json stops at 128 levels of nesting with an error, as here.
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(error) => {
            let problem = format!("the message is not JSON: {error}");
            return Decoded::Refused(Refusal::new(Value::Null, ErrorCode::ParseError, problem));
        }
    };
    let id = match value.get("id") {
        Some(id @ (Value::Number(_) | Value::String(_))) => id.clone(),
        _ => Value::Null,
    };
    let is_response = value.get("method").is_none()
        && (value.get("result").is_some() || value.get("error").is_some());
    match serde_json::from_value::<Message>(value) {
        Ok(message) => Decoded::Message(message),
        Err(_) if is_response => Decoded::Dropped,
        Err(_) => Decoded::Refused(Refusal::new(
            id,
            ErrorCode::InvalidRequest,
            "the message is JSON but not a JSON-RPC request, notification or response \
             that svc lsp reads",
        )),
    }
}

/// What the next frame of the input holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A body, at most [`MAX_MESSAGE_BYTES`] long.
    Message(Vec<u8>),
    /// A frame that cannot be read, and why.
    Refused(String),
    /// The end of the input.
    End,
}

/// Frames read from an input.
pub struct Frames<R> {
    input: R,
    /// Bytes of a refused message still to skip.
    skip: u64,
}

/// One header line, without its line end.
enum Line {
    Text(Vec<u8>),
    End,
}

impl<R: BufRead> Frames<R> {
    pub fn new(input: R) -> Frames<R> {
        Frames { input, skip: 0 }
    }

    /// The next frame. A read error counts as the end of the input.
    pub fn next_frame(&mut self) -> Frame {
        self.read_frame().unwrap_or(Frame::End)
    }

    fn read_frame(&mut self) -> io::Result<Frame> {
        if self.skip > 0 {
            let skipped = io::copy(&mut (&mut self.input).take(self.skip), &mut io::sink())?;
            if skipped < self.skip {
                return Ok(Frame::End);
            }
            self.skip = 0;
        }
        let mut length: Option<Option<u64>> = None;
        let mut malformed = false;
        let mut lines = 0;
        loop {
            let line = match self.line()? {
                Line::End => return Ok(Frame::End),
                Line::Text(line) => line,
            };
            if line.is_empty() {
                // Blank lines between messages are nobody's header.
                if lines == 0 {
                    continue;
                }
                break;
            }
            lines += 1;
            match header(&line) {
                Header::Length(value) => length = Some(value),
                Header::Other => {}
                Header::Malformed => malformed = true,
            }
        }
        let problem = match length {
            Some(Some(length)) if length <= MAX_MESSAGE_BYTES => {
                return self.body(length);
            }
            Some(Some(length)) => {
                self.skip = length;
                format!(
                    "the message is {length} bytes long; svc lsp reads messages of at most 64 MiB \
                     and skips this one"
                )
            }
            Some(None) => "the `Content-Length` header is not a number of bytes".to_string(),
            None if malformed => "a header line is not `Name: value`".to_string(),
            None => "the message has no `Content-Length` header".to_string(),
        };
        Ok(Frame::Refused(problem))
    }

    /// A body of `length` bytes, read as they come (the length is not
    /// allocated before they do).
    fn body(&mut self, length: u64) -> io::Result<Frame> {
        let mut body = Vec::new();
        let read = (&mut self.input).take(length).read_to_end(&mut body)?;
        if (read as u64) < length {
            return Ok(Frame::End);
        }
        Ok(Frame::Message(body))
    }

    /// The next line, keeping at most its last [`HEADER_LINE_KEPT`] bytes.
    fn line(&mut self) -> io::Result<Line> {
        let mut line = Vec::new();
        loop {
            let available = match self.input.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                // The end of the input, within a line or not.
                return Ok(Line::End);
            }
            let (part, ends) = match available.iter().position(|&b| b == b'\n') {
                Some(at) => (&available[..at], true),
                None => (available, false),
            };
            line.extend_from_slice(part);
            if line.len() > 2 * HEADER_LINE_KEPT {
                line.drain(..line.len() - HEADER_LINE_KEPT);
            }
            let used = part.len() + usize::from(ends);
            self.input.consume(used);
            if ends {
                break;
            }
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(Line::Text(line))
    }
}

enum Header {
    /// `Content-Length`, and its value if it is a number.
    Length(Option<u64>),
    Other,
    Malformed,
}

/// Reads a header line. `Content-Length:` after other bytes on the line is
/// taken too: those are the remains of a message that had no length,
/// which was refused already.
fn header(line: &[u8]) -> Header {
    const NAME: &[u8] = b"content-length:";
    let found = line
        .windows(NAME.len())
        .rposition(|w| w.eq_ignore_ascii_case(NAME));
    if let Some(at) = found {
        let value = std::str::from_utf8(&line[at + NAME.len()..])
            .ok()
            .map(|v| v.trim_matches([' ', '\t']))
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse().ok());
        return Header::Length(value);
    }
    match line.iter().position(|&b| b == b':') {
        Some(colon)
            if colon > 0
                && line[..colon]
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(b)) =>
        {
            Header::Other
        }
        _ => Header::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn frames(input: &[u8]) -> Vec<Frame> {
        let mut frames = Frames::new(input);
        let mut out = Vec::new();
        loop {
            let frame = frames.next_frame();
            if frame == Frame::End {
                return out;
            }
            out.push(frame);
        }
    }

    fn message(text: &str) -> Frame {
        Frame::Message(text.as_bytes().to_vec())
    }

    #[test]
    fn frames_are_read_and_bad_ones_refused() {
        assert_eq!(
            frames(b"Content-Length: 2\r\n\r\n{}content-length:3\r\nContent-Type: x\r\n\r\n[1]"),
            [message("{}"), message("[1]")]
        );
        // Blank lines between messages are skipped; a header without a
        // length, or with a bad one, is refused and reading goes on.
        let read = frames(
            b"\r\n\r\nContent-Type: x\r\n\r\nContent-Length: -1\r\n\r\n\
              Content-Length: 1\r\n\r\n1",
        );
        assert!(matches!(&read[0], Frame::Refused(p) if p.contains("no `Content-Length`")));
        assert!(matches!(&read[1], Frame::Refused(p) if p.contains("not a number")));
        assert_eq!(read[2], message("1"));
        assert_eq!(read.len(), 3);
        // The remains of a message without a length, then a good one.
        let read = frames(b"Content-Type: x\r\n\r\n{\"id\": 1}Content-Length: 2\r\n\r\n{}");
        assert_eq!(read.len(), 2, "{read:?}");
        assert_eq!(read[1], message("{}"));
        // The end of the input within a frame is the end.
        assert_eq!(frames(b"Content-Length: 10\r\n\r\n{}"), []);
        assert_eq!(frames(b"Content-Len"), []);
    }

    #[test]
    fn a_message_over_the_cap_is_refused_and_skipped() {
        let over = MAX_MESSAGE_BYTES + 1;
        let mut input = format!("Content-Length: {over}\r\n\r\n").into_bytes();
        input.resize(input.len() + over as usize, b' ');
        input.extend_from_slice(b"Content-Length: 2\r\n\r\n{}");
        let read = frames(&input);
        assert!(
            matches!(&read[0], Frame::Refused(p) if p.contains("64 MiB")),
            "{read:?}"
        );
        assert_eq!(read[1], message("{}"));
    }

    #[test]
    fn input_that_is_no_message_is_answered_with_its_code() {
        let code = |body: &[u8]| match decode(body) {
            Decoded::Refused(answer) => (answer.id, json!(answer.error.code)),
            Decoded::Message(m) => panic!("decoded: {m:?}"),
            Decoded::Dropped => panic!("dropped"),
        };
        assert_eq!(code(b"nope"), (Value::Null, json!(-32700)));
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(code(deep.as_bytes()), (Value::Null, json!(-32700)));
        assert_eq!(code(b"{\"id\": \"a\"}"), (json!("a"), json!(-32600)));
        assert!(matches!(
            decode(br#"{"id": null, "error": {"code": 1, "message": "x"}}"#),
            Decoded::Dropped
        ));
        assert!(matches!(
            decode(br#"{"jsonrpc": "2.0", "method": "exit"}"#),
            Decoded::Message(_)
        ));
    }
}
