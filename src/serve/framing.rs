//! Where each request ends in the bytes a client sends, so the server can
//! tell when the next request head starts even while hyper holds those
//! bytes in its buffer: a pipelined head, one sent in the same packet as
//! the end of a body, or one sent while a request is being answered.
//!
//! It follows HTTP/1.1 message framing (RFC 9112, section 6) only as far as
//! finding where each message ends: the empty line after a head, then a
//! `Transfer-Encoding: chunked` body or `Content-Length` bytes. Checking the
//! messages is hyper's job: one that hyper refuses closes the connection
//! anyway. Where the bytes cannot be followed (a framing header too long
//! to keep, a length that is not a number), [`Framing::feed`] says so from
//! then on and the caller falls back to a guess.

/// How much of each head line is kept: enough for the framing headers.
const LINE_KEPT: usize = 256;

/// The framing of one connection's request stream.
pub struct Framing {
    part: Part,
}

enum Part {
    /// Between messages: the next byte other than a line end starts a head
    /// (empty lines before a request line are ignored, RFC 9112 §2.2).
    Between,
    Head(Box<Head>),
    /// This many body bytes are still to come.
    Body(u64),
    Chunked(Chunk),
    /// The framing could not be followed.
    Lost,
}

/// What was seen of a head so far.
struct Head {
    /// The start of the current line.
    line: [u8; LINE_KEPT],
    /// How long the current line is so far.
    len: usize,
    /// The request line was seen.
    started: bool,
    length: Option<u64>,
    /// Whether the last `Transfer-Encoding` ends with `chunked`.
    chunked: Option<bool>,
    /// A framing header could not be read.
    unreadable: bool,
}

enum Chunk {
    /// A chunk-size line: the size so far, how many digits, and whether the
    /// digits ended (an extension or the line end follows).
    Size {
        size: u64,
        digits: u32,
        ended: bool,
    },
    Data(u64),
    /// The line end after a chunk's data.
    DataEnd,
    /// Trailer lines after the last chunk; whether the current one is empty.
    Trailers {
        empty: bool,
    },
}

impl Default for Framing {
    fn default() -> Self {
        Framing {
            part: Part::Between,
        }
    }
}

impl Framing {
    /// Follows the bytes just read from the client; returns how many
    /// request heads began in them, or `None` once the framing is lost.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Option<u64> {
        let mut began = 0;
        while let Some(&first) = bytes.first() {
            match &mut self.part {
                Part::Lost => return None,
                Part::Between => {
                    if first == b'\r' || first == b'\n' {
                        bytes = &bytes[1..];
                    } else {
                        began += 1;
                        self.part = Part::Head(Box::new(Head::new()));
                    }
                }
                Part::Head(head) => match bytes.iter().position(|&b| b == b'\n') {
                    None => {
                        head.take(bytes);
                        bytes = &[];
                    }
                    Some(end) => {
                        head.take(&bytes[..end]);
                        bytes = &bytes[end + 1..];
                        if let Some(next) = head.end_line() {
                            self.part = next;
                        }
                    }
                },
                Part::Body(left) => {
                    let taken = (*left).min(bytes.len() as u64);
                    *left -= taken;
                    bytes = &bytes[taken as usize..];
                    if *left == 0 {
                        self.part = Part::Between;
                    }
                }
                Part::Chunked(chunk) => {
                    let (used, next) = chunk.take(bytes);
                    bytes = &bytes[used..];
                    if let Some(next) = next {
                        self.part = next;
                    }
                }
            }
        }
        if matches!(self.part, Part::Lost) {
            return None;
        }
        Some(began)
    }

    /// Gives up following the framing (the caller found it out of step).
    pub fn lose(&mut self) {
        self.part = Part::Lost;
    }
}

impl Head {
    fn new() -> Head {
        Head {
            line: [0; LINE_KEPT],
            len: 0,
            started: false,
            length: None,
            chunked: None,
            unreadable: false,
        }
    }

    /// Part of the current line, without its line end.
    fn take(&mut self, bytes: &[u8]) {
        let kept = self.len.min(LINE_KEPT);
        let room = LINE_KEPT - kept;
        let copied = room.min(bytes.len());
        self.line[kept..kept + copied].copy_from_slice(&bytes[..copied]);
        self.len += bytes.len();
    }

    /// The current line ended: what comes next, if the head ended.
    fn end_line(&mut self) -> Option<Part> {
        let mut len = self.len;
        self.len = 0;
        let whole = len <= LINE_KEPT;
        if whole && len > 0 && self.line[len - 1] == b'\r' {
            len -= 1;
        }
        if !self.started {
            // The request line; `Between` skipped empty lines before it.
            self.started = true;
            return None;
        }
        if len == 0 {
            return Some(self.body());
        }
        let kept = &self.line[..len.min(LINE_KEPT)];
        // Not a field line: nothing of the framing, and hyper's to refuse.
        let colon = kept.iter().position(|&b| b == b':')?;
        let name = &kept[..colon];
        let framing = name.eq_ignore_ascii_case(b"content-length")
            || name.eq_ignore_ascii_case(b"transfer-encoding");
        if !framing {
            return None;
        }
        let value = std::str::from_utf8(&kept[colon + 1..])
            .ok()
            .filter(|_| whole);
        let Some(value) = value else {
            self.unreadable = true;
            return None;
        };
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or_default();
            self.chunked = Some(last.trim().eq_ignore_ascii_case("chunked"));
        } else {
            // As hyper reads it: every value of every field the same number.
            for piece in value.split(',') {
                let piece = piece.trim_matches([' ', '\t']);
                let number = (!piece.is_empty() && piece.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| piece.parse::<u64>().ok())
                    .flatten();
                match (number, self.length) {
                    (Some(n), None) => self.length = Some(n),
                    (Some(n), Some(seen)) if n == seen => {}
                    _ => self.unreadable = true,
                }
            }
        }
        None
    }

    /// The head ended: how its body is framed (`Transfer-Encoding` wins).
    fn body(&self) -> Part {
        if self.unreadable {
            return Part::Lost;
        }
        match (self.chunked, self.length) {
            (Some(true), _) => Part::Chunked(Chunk::Size {
                size: 0,
                digits: 0,
                ended: false,
            }),
            // hyper refuses such a request.
            (Some(false), _) => Part::Lost,
            (None, Some(length)) if length > 0 => Part::Body(length),
            (None, _) => Part::Between,
        }
    }
}

impl Chunk {
    /// Takes bytes of a chunked body: how many, and what comes next if
    /// this part ended.
    fn take(&mut self, bytes: &[u8]) -> (usize, Option<Part>) {
        match self {
            Chunk::Data(left) => {
                let taken = (*left).min(bytes.len() as u64);
                *left -= taken;
                if *left == 0 {
                    *self = Chunk::DataEnd;
                }
                (taken as usize, None)
            }
            Chunk::Size {
                size,
                digits,
                ended,
            } => {
                let byte = bytes[0];
                let digit = (byte as char).to_digit(16);
                match digit {
                    Some(digit) if !*ended => {
                        *digits += 1;
                        match size.checked_mul(16) {
                            Some(shifted) => *size = shifted + u64::from(digit),
                            None => return (1, Some(Part::Lost)),
                        }
                    }
                    _ if byte == b'\n' => {
                        if *digits == 0 {
                            return (1, Some(Part::Lost));
                        }
                        *self = if *size == 0 {
                            Chunk::Trailers { empty: true }
                        } else {
                            Chunk::Data(*size)
                        };
                    }
                    _ => *ended = true,
                }
                (1, None)
            }
            Chunk::DataEnd => {
                if bytes[0] == b'\n' {
                    *self = Chunk::Size {
                        size: 0,
                        digits: 0,
                        ended: false,
                    };
                }
                (1, None)
            }
            Chunk::Trailers { empty } => match bytes[0] {
                b'\n' if *empty => (1, Some(Part::Between)),
                b'\n' => {
                    *empty = true;
                    (1, None)
                }
                b'\r' => (1, None),
                _ => {
                    *empty = false;
                    (1, None)
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `stream` split at every position, and returns the heads begun.
    fn heads_begun(stream: &[u8]) -> Option<u64> {
        let whole = Framing::default().feed(stream);
        for at in 0..stream.len() {
            let mut framing = Framing::default();
            let split = framing
                .feed(&stream[..at])
                .and_then(|a| framing.feed(&stream[at..]).map(|b| a + b));
            assert_eq!(split, whole, "split at {at}");
        }
        whole
    }

    #[test]
    fn heads_are_counted_wherever_the_bytes_are_split() {
        let get = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(heads_begun(get), Some(1));
        assert_eq!(
            heads_begun(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HT"),
            Some(2)
        );
        // Empty lines between requests are not a head.
        assert_eq!(heads_begun(b"GET / HTTP/1.1\r\n\r\n\r\n\r\n"), Some(1));
        // Bare line feeds end lines too.
        assert_eq!(heads_begun(b"GET / HTTP/1.1\nHost: a\n\nG"), Some(2));
        // The body of a length is not a head, and what follows it is.
        let post = b"POST / HTTP/1.1\r\ncontent-length: 5\r\n\r\nGET /GET /";
        assert_eq!(heads_begun(post), Some(2));
        assert_eq!(heads_begun(&post[..post.len() - 5]), Some(1));
        let post = b"POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc\r\nG";
        assert_eq!(heads_begun(post), Some(2));
        // Chunked, with an extension and a trailer; it wins over a length.
        let chunked = b"POST / HTTP/1.1\r\nContent-Length: 99\r\n\
            Transfer-Encoding: gzip, Chunked\r\n\r\n\
            4;name=x\r\nGET \r\nA\r\n0123456789\r\n0\r\nTrailer: GET\r\n\r\nG";
        assert_eq!(heads_begun(chunked), Some(2));
        assert_eq!(heads_begun(&chunked[..chunked.len() - 1]), Some(1));
        // A long line that is not a framing header is fine.
        let long = format!("GET / HTTP/1.1\r\nX-Long: {}\r\n\r\nG", "a".repeat(1000));
        assert_eq!(heads_begun(long.as_bytes()), Some(2));
    }

    #[test]
    fn framing_it_cannot_follow_is_lost() {
        for stream in [
            &b"POST / HTTP/1.1\r\nContent-Length: 5x\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n12345678901234567\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n",
        ] {
            assert_eq!(
                Framing::default().feed(stream),
                None,
                "{}",
                String::from_utf8_lossy(stream)
            );
        }
        let long = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}5\r\n\r\n",
            " ".repeat(LINE_KEPT)
        );
        let mut framing = Framing::default();
        assert_eq!(framing.feed(long.as_bytes()), None);
        // And stays lost.
        assert_eq!(framing.feed(b"GET / HTTP/1.1\r\n\r\n"), None);
    }
}
