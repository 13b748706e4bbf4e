//! A NATS publisher: the little of NATS's client protocol (a text
//! protocol over TCP: the server's `INFO`, our `CONNECT`, `PUB`,
//! `PING`/`PONG`) that publishing progress takes. Not async-nats, NATS's
//! maintained client: it brings an async runtime and about 100 crates
//! (its build alone took 1 min 50 s here, which the test command's 5
//! minutes cannot spare) for what is here a few bytes a message, at most
//! once, dropped while the server is away.

use std::io;
use std::time::Duration;

use serde::Deserialize;

use crate::listener::service::{self, Line};

/// How long connecting, and each read and write, may take.
const TIMEOUT: Duration = Duration::from_secs(2);

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
        let (credentials, host_port) = service::authority(rest, 4222)
            .map_err(|why| format!("{why}: expected nats://HOST:PORT"))?;
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
    line: Line,
    max_payload: u64,
}

impl Connection {
    /// Connects and introduces itself; returns once the server has
    /// answered a PING, so that a refused login is an error here.
    pub fn open(address: &NatsAddress) -> io::Result<Connection> {
        let mut line = Line::open(&address.host_port, TIMEOUT)?;
        let said = line.line()?;
        let info: Info = said
            .strip_prefix("INFO ")
            .and_then(|json| serde_json::from_str(json).ok())
            .ok_or_else(|| bad(format!("not a NATS server: it said {said:?}")))?;
        if info.tls_required {
            return Err(bad(
                "the server requires TLS, which rx-listen does not speak to NATS".into(),
            ));
        }
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
        line.write(format!("CONNECT {connect}\r\nPING\r\n").as_bytes())?;
        loop {
            match line.line()?.as_str() {
                "PONG" => break,
                "PING" => line.write(b"PONG\r\n")?,
                said if said.starts_with("-ERR") => return Err(bad(said.to_string())),
                _ => {}
            }
        }
        Ok(Connection {
            line,
            max_payload: info.max_payload.unwrap_or(1024 * 1024),
        })
    }

    /// Publishes `payload` on `subject` (a valid subject: no whitespace);
    /// one larger than the server takes is left out.
    pub fn publish(&mut self, subject: &str, payload: &[u8]) -> io::Result<()> {
        if payload.len() as u64 > self.max_payload {
            return Ok(());
        }
        let mut message = format!("PUB {subject} {}\r\n", payload.len()).into_bytes();
        message.extend_from_slice(payload);
        message.extend_from_slice(b"\r\n");
        self.line.write(&message)
    }

    /// Answers what the server has said since (its PINGs: a client that
    /// does not answer them is dropped); an `-ERR` ends the connection.
    pub fn serve(&mut self) -> io::Result<()> {
        while let Some(said) = self.line.line_if_any()? {
            if said.starts_with("PING") {
                self.line.write(b"PONG\r\n")?;
            } else if said.starts_with("-ERR") {
                return Err(bad(said));
            }
        }
        Ok(())
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
