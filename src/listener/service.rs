//! A line-based connection to a service rx-listen tells of what it
//! receives (Redis, NATS): the first address of `HOST:PORT` that answers
//! within a timeout, reads and writes bounded by it, the service's lines
//! read at most [`MAX_LINE`] bytes each; and what their URLs share.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The longest line of a service's that is read (theirs, to us, are a
/// few hundred bytes).
const MAX_LINE: u64 = 64 * 1024;

/// A URL's authority, `[CREDENTIALS@]HOST[:PORT]`: its credentials (as
/// written), and `HOST:PORT` with `default_port` where it names none.
pub fn authority(text: &str, default_port: u16) -> Result<(Option<&str>, String), String> {
    let (credentials, host_port) = match text.rsplit_once('@') {
        Some((credentials, host_port)) => (Some(credentials), host_port),
        None => (None, text),
    };
    if host_port.is_empty() || host_port.contains('/') {
        return Err("no host".into());
    }
    let has_port = host_port
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
    let host_port = match has_port {
        true => host_port.to_string(),
        false => format!("{host_port}:{default_port}"),
    };
    Ok((credentials, host_port))
}

/// `text` with its `%XX` escapes decoded, as URLs write a password.
pub fn percent_decoded(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = text
                .get(at + 1..at + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| format!("a bad %-escape in {text:?}"))?;
            out.push(hex);
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{text:?} is not UTF-8 once decoded"))
}

/// A connection to the first address of `host_port` that answers within
/// `timeout`, whose reads and writes may take as long.
pub fn connect(host_port: &str, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::other(format!("{host_port} resolves to nothing"));
    let stream = host_port
        .to_socket_addrs()?
        .find_map(|addr| {
            TcpStream::connect_timeout(&addr, timeout)
                .map_err(|e| last = e)
                .ok()
        })
        .ok_or(last)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A connection to a service.
pub struct Line {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Line {
    /// Connects to `host_port`; connecting, and each read and write, may
    /// take `timeout`.
    pub fn open(host_port: &str, timeout: Duration) -> io::Result<Line> {
        let stream = connect(host_port, timeout)?;
        Ok(Line {
            reader: BufReader::new(stream.try_clone()?),
            stream,
        })
    }

    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// The service's next line, without its CRLF.
    pub fn line(&mut self) -> io::Result<String> {
        self.read_line()?.ok_or_else(closed)
    }

    /// The service's next line if one has come, without waiting for it.
    pub fn line_if_any(&mut self) -> io::Result<Option<String>> {
        self.stream.set_nonblocking(true)?;
        let read = self.read_line();
        self.stream.set_nonblocking(false)?;
        match read {
            Ok(Some(line)) => Ok(Some(line)),
            Ok(None) => Err(closed()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A line; `None` at the end of the stream.
    fn read_line(&mut self) -> io::Result<Option<String>> {
        let mut line = String::new();
        if (&mut self.reader).take(MAX_LINE).read_line(&mut line)? == 0 {
            return Ok(None);
        }
        Ok(Some(line.trim_end_matches(['\r', '\n']).to_string()))
    }
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the server closed the connection",
    )
}
