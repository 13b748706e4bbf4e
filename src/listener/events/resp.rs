//! A Redis connection, for the Celery sink: the few commands it sends
//! (AUTH, SELECT, LPUSH) in Redis's wire protocol, RESP (each command an
//! array of bulk strings; each reply one typed line, or a length and its
//! bytes). Not redis-rs, the maintained client: its URL parsing alone
//! brings `url`, `idna` and ICU (57 crates; built alone here it took
//! 29 s, which the test command's 5 minutes cannot spare) for one push a
//! series.

use std::io;
use std::time::Duration;

use crate::listener::service::{self, Line, percent_decoded};

/// Where the broker is, and who we are to it: `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisAddress {
    /// `HOST:PORT`.
    pub host_port: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub db: u32,
}

impl RedisAddress {
    pub fn parse(url: &str) -> Result<RedisAddress, String> {
        let rest = match url.split_once("://") {
            Some(("redis", rest)) => rest,
            Some((scheme, _)) => {
                return Err(format!(
                    "{scheme}:// is not supported (redis:// is, without TLS)"
                ));
            }
            None => return Err("expected redis://HOST:PORT/DB".into()),
        };
        let (authority, db) = match rest.split_once('/') {
            Some((authority, db)) => (authority, db),
            None => (rest, ""),
        };
        let db = match db.split(['?', '#']).next().unwrap_or("") {
            "" => 0,
            db => db
                .parse()
                .map_err(|_| format!("database {db:?} is not a number"))?,
        };
        let (credentials, host_port) = service::authority(authority, 6379)
            .map_err(|why| format!("{why}: expected redis://HOST:PORT/DB"))?;
        let (user, password) = match credentials {
            None => (None, None),
            Some(credentials) => match credentials.split_once(':') {
                Some((user, password)) => (
                    Some(percent_decoded(user)?).filter(|u| !u.is_empty()),
                    Some(percent_decoded(password)?),
                ),
                None => (None, Some(percent_decoded(credentials)?)),
            },
        };
        Ok(RedisAddress {
            host_port,
            user,
            password,
            db,
        })
    }
}

/// One connection to a Redis server.
pub struct Connection {
    line: Line,
}

impl Connection {
    /// Connects, logs in and selects the database; each step may take
    /// `timeout`.
    pub fn open(address: &RedisAddress, timeout: Duration) -> io::Result<Connection> {
        let mut connection = Connection {
            line: Line::open(&address.host_port, timeout)?,
        };
        match (&address.user, &address.password) {
            (Some(user), Some(password)) => {
                connection.command(&[b"AUTH", user.as_bytes(), password.as_bytes()])?;
            }
            (None, Some(password)) => {
                connection.command(&[b"AUTH", password.as_bytes()])?;
            }
            _ => {}
        }
        if address.db != 0 {
            connection.command(&[b"SELECT", address.db.to_string().as_bytes()])?;
        }
        Ok(connection)
    }

    /// Sends one command and reads its reply (an integer's or a status's
    /// text); the server's error is an error.
    pub fn command(&mut self, words: &[&[u8]]) -> io::Result<String> {
        let mut request = format!("*{}\r\n", words.len()).into_bytes();
        for word in words {
            request.extend_from_slice(format!("${}\r\n", word.len()).as_bytes());
            request.extend_from_slice(word);
            request.extend_from_slice(b"\r\n");
        }
        self.line.write(&request)?;
        let reply = self.line.line()?;
        match reply.split_at_checked(1) {
            Some(("+" | ":", text)) => Ok(text.to_string()),
            Some(("-", error)) => Err(io::Error::other(format!("Redis said: {error}"))),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a reply rx-listen expects: {reply:?}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_read_as_redis_clients_read_them() {
        let plain = RedisAddress::parse("redis://127.0.0.1:6380/2").unwrap();
        assert_eq!(
            (plain.host_port.as_str(), plain.db, plain.password),
            ("127.0.0.1:6380", 2, None)
        );
        assert_eq!(
            RedisAddress::parse("redis://redis").unwrap().host_port,
            "redis:6379"
        );
        let login = RedisAddress::parse("redis://:s%40cret@redis:6379/0").unwrap();
        assert_eq!(
            (login.user, login.password.as_deref()),
            (None, Some("s@cret"))
        );
        let acl = RedisAddress::parse("redis://me:pw@redis/1").unwrap();
        assert_eq!(
            (acl.user.as_deref(), acl.password.as_deref(), acl.db),
            (Some("me"), Some("pw"), 1)
        );
        for bad in [
            "rediss://redis",
            "amqp://rabbit",
            "redis://",
            "redis://h/x",
            "localhost:6379",
        ] {
            assert!(RedisAddress::parse(bad).is_err(), "{bad}");
        }
    }
}
