//! A line-based connection to a service rx-listen tells of what it
//! receives (Redis, NATS): the first address of `HOST:PORT` that answers
//! within a timeout, reads and writes bounded by it, the service's lines
//! read at most [`MAX_LINE`] bytes each.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The longest line of a service's that is read (theirs, to us, are a
/// few hundred bytes).
const MAX_LINE: u64 = 64 * 1024;

/// `host_port`, with `default` as its port when it names none.
pub fn with_port(host_port: &str, default: u16) -> String {
    let has_port = host_port
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
    match has_port {
        true => host_port.to_string(),
        false => format!("{host_port}:{default}"),
    }
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
