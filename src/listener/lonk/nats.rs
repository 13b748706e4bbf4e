//! A NATS publisher: the little of NATS's client protocol (a text
//! protocol over TCP: the server's `INFO`, our `CONNECT`, `PUB`,
//! `PING`/`PONG`) that publishing progress takes. Not async-nats, NATS's
//! maintained client: it brings an async runtime and about 100 crates
//! (its build alone took 1 min 50 s here, which the test command's 5
//! minutes cannot spare) for what is here a few bytes a message, at most
//! once, dropped while the server is away.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde::Deserialize;

/// How long connecting, and each read and write, may take.
const TIMEOUT: Duration = Duration::from_secs(2);
/// The longest line of the server's we read (its INFO is under 1 KiB).
const MAX_LINE: u64 = 64 * 1024;

/// Where the server is, and who we are to it.
#[derive(Debug, Clone, PartialEq)]
pub struct NatsAddress {
    /// `HOST:PORT`.
    pub host_port: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
}

impl NatsAddress {
    /// `nats://[USER:PASSWORD@ | TOKEN@]HOST[:PORT]`, or `HOST:PORT` (as
    /// oxidicom's OXIDICOM_NATS_ADDRESS is written).
    pub fn parse(text: &str) -> Result<NatsAddress, String> {
        let rest = match text.split_once("://") {
            Some(("nats", rest)) => rest,
            Some((scheme, _)) => {
                return Err(format!(
                    "{scheme}:// is not supported (nats:// is, without TLS)"
                ));
            }
            None => text,
        };
        let rest = rest.trim_end_matches('/');
        let (credentials, host_port) = match rest.rsplit_once('@') {
            Some((credentials, host_port)) => (Some(credentials), host_port),
            None => (None, rest),
        };
        if host_port.is_empty() || host_port.contains('/') {
            return Err("expected nats://HOST:PORT".into());
        }
        let host_port = if host_port
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
        {
            host_port.to_string()
        } else {
            format!("{host_port}:4222")
        };
        let (user, password, token) = match credentials.map(|c| c.split_once(':')) {
            Some(Some((user, password))) => (Some(user.into()), Some(password.into()), None),
            Some(None) => (None, None, credentials.map(String::from)),
            None => (None, None, None),
        };
        Ok(NatsAddress {
            host_port,
            user,
            password,
            token,
        })
    }
}

/// What the server's INFO says that matters here.
#[derive(Deserialize)]
struct Info {
    #[serde(default)]
    tls_required: bool,
    #[serde(default)]
    max_payload: Option<u64>,
}

/// One connection to a NATS server.
pub struct Connection {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    max_payload: u64,
}

impl Connection {
    /// Connects and introduces itself; returns once the server has
    /// answered a PING, so that a refused login is an error here.
    pub fn open(address: &NatsAddress) -> io::Result<Connection> {
        let mut last = io::Error::other(format!("{} resolves to nothing", address.host_port));
        let stream = address
            .host_port
            .to_socket_addrs()?
            .find_map(|addr| {
                TcpStream::connect_timeout(&addr, TIMEOUT)
                    .map_err(|e| last = e)
                    .ok()
            })
            .ok_or(last)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        stream.set_nodelay(true)?;
        let mut connection = Connection {
            reader: BufReader::new(stream.try_clone()?),
            stream,
            max_payload: 1024 * 1024,
        };
        let info = connection.line()?;
        let info: Info = info
            .strip_prefix("INFO ")
            .and_then(|json| serde_json::from_str(json).ok())
            .ok_or_else(|| bad(format!("not a NATS server: it said {info:?}")))?;
        if info.tls_required {
            return Err(bad(
                "the server requires TLS, which rx-listen does not speak to NATS".into(),
            ));
        }
        connection.max_payload = info.max_payload.unwrap_or(connection.max_payload);
        let connect = serde_json::json!({
            "verbose": false,
            "pedantic": false,
            "tls_required": false,
            "lang": "rust",
            "name": "rx-listen",
            "version": env!("CARGO_PKG_VERSION"),
            "protocol": 1,
            "user": address.user,
            "pass": address.password,
            "auth_token": address.token,
        });
        connection
            .stream
            .write_all(format!("CONNECT {connect}\r\nPING\r\n").as_bytes())?;
        loop {
            match connection.line()?.as_str() {
                "PONG" => return Ok(connection),
                "PING" => connection.stream.write_all(b"PONG\r\n")?,
                line if line.starts_with("-ERR") => return Err(bad(line.to_string())),
                _ => {}
            }
        }
    }

    /// Publishes `payload` on `subject` (a valid subject: no whitespace).
    pub fn publish(&mut self, subject: &str, payload: &[u8]) -> io::Result<()> {
        if payload.len() as u64 > self.max_payload {
            return Ok(());
        }
        let mut message = format!("PUB {subject} {}\r\n", payload.len()).into_bytes();
        message.extend_from_slice(payload);
        message.extend_from_slice(b"\r\n");
        self.stream.write_all(&message)
    }

    /// Answers what the server has said since (its PINGs: a client that
    /// does not answer them is dropped); an `-ERR` ends the connection.
    pub fn serve(&mut self) -> io::Result<()> {
        self.stream.set_nonblocking(true)?;
        let mut said = String::new();
        let read = (&mut self.reader).take(MAX_LINE).read_line(&mut said);
        self.stream.set_nonblocking(false)?;
        match read {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the server closed the connection",
            )),
            Ok(_) if said.starts_with("PING") => self.stream.write_all(b"PONG\r\n"),
            Ok(_) if said.starts_with("-ERR") => Err(bad(said.trim_end().to_string())),
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The server's next line, without its CRLF.
    fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if (&mut self.reader).take(MAX_LINE).read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}

fn bad(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_nats_clients_read_them() {
        let plain = NatsAddress::parse("nats://127.0.0.1:4222").unwrap();
        assert_eq!(plain.host_port, "127.0.0.1:4222");
        assert_eq!(
            NatsAddress::parse("nats:4222").unwrap().host_port,
            "nats:4222"
        );
        assert_eq!(
            NatsAddress::parse("nats://nats").unwrap().host_port,
            "nats:4222"
        );
        let login = NatsAddress::parse("nats://me:secret@host:1").unwrap();
        assert_eq!(login.user.as_deref(), Some("me"));
        assert_eq!(login.password.as_deref(), Some("secret"));
        let token = NatsAddress::parse("nats://t0ken@host:1").unwrap();
        assert_eq!(token.token.as_deref(), Some("t0ken"));
        assert!(NatsAddress::parse("tls://host:1").is_err());
        assert!(NatsAddress::parse("nats://").is_err());
    }
}
