//! An AMQP 0-9-1 connection, for the Celery sink on RabbitMQ (ChRIS's
//! usual broker): the handshake, one channel in confirm mode, and
//! publishing a message to the default exchange with the queue's name as
//! its routing key, done once the broker confirms it. Mandatory: a
//! message no queue takes (CUBE's workers have not declared it yet) comes
//! back, and is a failure to try again. Not lapin, the maintained client:
//! it is async and brings 192 crates (2 min 2 s to build alone here),
//! which the test command's 5 minutes cannot spare, for one publish a
//! series.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use crate::listener::service::{self, connect, percent_decoded as decoded};

/// Where the broker is, and who we are to it:
/// `amqp://[USER:PASSWORD@]HOST[:PORT][/VHOST]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AmqpAddress {
    pub host_port: String,
    pub user: String,
    pub password: String,
    pub vhost: String,
}

impl AmqpAddress {
    pub fn parse(url: &str) -> Result<AmqpAddress, String> {
        let Some(rest) = url.strip_prefix("amqp://") else {
            return Err("expected amqp://HOST:PORT/VHOST (amqps:// is not supported)".into());
        };
        let (authority, vhost) = match rest.split_once('/') {
            Some((authority, "")) => (authority, "/".to_string()),
            Some((authority, vhost)) => (authority, decoded(vhost)?),
            None => (rest, "/".to_string()),
        };
        let (credentials, host_port) = service::authority(authority, 5672)
            .map_err(|why| format!("{why}: expected amqp://HOST:PORT/VHOST"))?;
        let (user, password) = match credentials.map(|c| c.split_once(':')) {
            Some(Some((user, password))) => (decoded(user)?, decoded(password)?),
            Some(None) => (decoded(credentials.unwrap_or_default())?, String::new()),
            None => ("guest".into(), "guest".into()),
        };
        Ok(AmqpAddress {
            host_port,
            user,
            password,
            vhost,
        })
    }
}

const FRAME_METHOD: u8 = 1;
const FRAME_HEADER: u8 = 2;
const FRAME_BODY: u8 = 3;
const FRAME_END: u8 = 0xCE;
/// The channel everything is published on.
const CHANNEL: u16 = 1;

/// A method: class and method ids, and its arguments.
type Method = (u16, u16, Vec<u8>);

/// One connection to an AMQP broker, with a channel in confirm mode.
pub struct Connection {
    stream: TcpStream,
    frame_max: u32,
    /// The number of the last message published on the channel.
    published: u64,
}

impl Connection {
    /// Connects, logs in (PLAIN), opens the vhost and a channel, and puts
    /// the channel in confirm mode; each step may take `timeout`.
    pub fn open(address: &AmqpAddress, timeout: Duration) -> io::Result<Connection> {
        let mut connection = Connection {
            stream: connect(&address.host_port, timeout)?,
            frame_max: 131_072,
            published: 0,
        };
        connection.stream.write_all(b"AMQP\x00\x00\x09\x01")?;
        connection.expect(0, (10, 10))?; // Connection.Start
        let mut start_ok = table(&serde_json::json!({"product": "rx-listen"}));
        short_string(&mut start_ok, "PLAIN");
        long_string(
            &mut start_ok,
            format!("\0{}\0{}", address.user, address.password).as_bytes(),
        );
        short_string(&mut start_ok, "en_US");
        connection.send_method(0, 10, 11, &start_ok)?;
        let tune = connection.expect(0, (10, 30))?; // Connection.Tune
        let channel_max = u16::from_be_bytes([tune[0], tune[1]]);
        let frame_max = u32::from_be_bytes([tune[2], tune[3], tune[4], tune[5]]);
        if frame_max != 0 {
            connection.frame_max = connection.frame_max.min(frame_max);
        }
        let mut tune_ok = channel_max.max(1).to_be_bytes().to_vec();
        tune_ok.extend(connection.frame_max.to_be_bytes());
        tune_ok.extend(0u16.to_be_bytes()); // no heartbeats
        connection.send_method(0, 10, 31, &tune_ok)?;
        let mut open = Vec::new();
        short_string(&mut open, &address.vhost);
        short_string(&mut open, "");
        open.push(0);
        connection.send_method(0, 10, 40, &open)?;
        connection.expect(0, (10, 41))?;
        connection.send_method(CHANNEL, 20, 10, &[0])?;
        connection.expect(CHANNEL, (20, 11))?;
        connection.send_method(CHANNEL, 85, 10, &[0])?; // Confirm.Select
        connection.expect(CHANNEL, (85, 11))?;
        Ok(connection)
    }

    /// Publishes `body` to the queue `queue` with `properties` (a JSON
    /// object of content type, encoding, correlation id, and `headers`,
    /// a table); done once the broker has confirmed it.
    pub fn publish(&mut self, queue: &str, properties: &Properties, body: &[u8]) -> io::Result<()> {
        let mut publish = 0u16.to_be_bytes().to_vec();
        short_string(&mut publish, "");
        short_string(&mut publish, queue);
        publish.push(0b01); // mandatory
        self.send_method(CHANNEL, 60, 40, &publish)?;
        let mut header = 60u16.to_be_bytes().to_vec();
        header.extend(0u16.to_be_bytes());
        header.extend((body.len() as u64).to_be_bytes());
        // content-type, content-encoding, headers, delivery-mode,
        // priority, correlation-id
        header.extend(0xFC00u16.to_be_bytes());
        short_string(&mut header, properties.content_type);
        short_string(&mut header, properties.content_encoding);
        header.extend(table(&properties.headers));
        header.push(2); // persistent
        header.push(0);
        short_string(&mut header, &properties.correlation_id);
        self.send_frame(FRAME_HEADER, CHANNEL, &header)?;
        let most = (self.frame_max as usize).saturating_sub(8).max(1);
        for chunk in body.chunks(most) {
            self.send_frame(FRAME_BODY, CHANNEL, chunk)?;
        }
        self.published += 1;
        let mut returned = None;
        loop {
            let (kind, _, payload) = self.read_frame()?;
            if kind != FRAME_METHOD {
                continue; // a returned message's header and body
            }
            let (class, method, args) = method(&payload)?;
            match (class, method) {
                (60, 50) => {
                    // Basic.Return: reply code, then its text.
                    returned = Some(short_string_at(&args, 2));
                }
                (60, 80) => {
                    let tag =
                        u64::from_be_bytes(args[..8].try_into().map_err(|_| bad("a short ack"))?);
                    if tag >= self.published {
                        return match returned {
                            Some(why) => Err(io::Error::other(format!(
                                "the broker returned it ({why}): is the queue {queue} declared (a CUBE worker started)?"
                            ))),
                            None => Ok(()),
                        };
                    }
                }
                (60, 120) => return Err(io::Error::other("the broker refused it (nack)")),
                other => return Err(closed_by(other, &args)),
            }
        }
    }

    /// Reads frames on `channel` until the method `want`; returns its
    /// arguments. A close from the broker is an error with its reason.
    fn expect(&mut self, channel: u16, want: (u16, u16)) -> io::Result<Vec<u8>> {
        loop {
            let (kind, on, payload) = self.read_frame()?;
            if kind != FRAME_METHOD || on != channel {
                continue;
            }
            let (class, method, args) = method(&payload)?;
            if (class, method) == want {
                return Ok(args);
            }
            return Err(closed_by((class, method), &args));
        }
    }

    fn send_method(
        &mut self,
        channel: u16,
        class: u16,
        method: u16,
        args: &[u8],
    ) -> io::Result<()> {
        let mut payload = class.to_be_bytes().to_vec();
        payload.extend(method.to_be_bytes());
        payload.extend_from_slice(args);
        self.send_frame(FRAME_METHOD, channel, &payload)
    }

    fn send_frame(&mut self, kind: u8, channel: u16, payload: &[u8]) -> io::Result<()> {
        let mut frame = vec![kind];
        frame.extend(channel.to_be_bytes());
        frame.extend((payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(payload);
        frame.push(FRAME_END);
        self.stream.write_all(&frame)
    }

    fn read_frame(&mut self) -> io::Result<(u8, u16, Vec<u8>)> {
        let mut head = [0u8; 7];
        self.stream.read_exact(&mut head)?;
        let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]);
        if size > self.frame_max.max(131_072) {
            return Err(bad("a frame larger than negotiated"));
        }
        let mut payload = vec![0u8; size as usize + 1];
        self.stream.read_exact(&mut payload)?;
        if payload.pop() != Some(FRAME_END) {
            return Err(bad("a frame without its end"));
        }
        Ok((head[0], u16::from_be_bytes([head[1], head[2]]), payload))
    }
}

/// What a Celery task's message says of itself, beside its body.
pub struct Properties {
    pub content_type: &'static str,
    pub content_encoding: &'static str,
    pub correlation_id: String,
    /// A JSON object, sent as an AMQP table.
    pub headers: Value,
}

fn method(payload: &[u8]) -> io::Result<Method> {
    if payload.len() < 4 {
        return Err(bad("a method frame too short"));
    }
    let class = u16::from_be_bytes([payload[0], payload[1]]);
    let method = u16::from_be_bytes([payload[2], payload[3]]);
    Ok((class, method, payload[4..].to_vec()))
}

/// The error of an unexpected method: the broker's close, with its reply
/// code and text, or a method out of turn.
fn closed_by((class, method): (u16, u16), args: &[u8]) -> io::Error {
    match (class, method) {
        (10, 50) | (20, 40) if args.len() >= 3 => {
            let code = u16::from_be_bytes([args[0], args[1]]);
            io::Error::other(format!(
                "the broker closed the {} ({code} {})",
                if class == 10 { "connection" } else { "channel" },
                short_string_at(args, 2)
            ))
        }
        _ => bad("an AMQP method out of turn"),
    }
}

fn short_string_at(bytes: &[u8], at: usize) -> String {
    let len = bytes.get(at).copied().unwrap_or(0) as usize;
    let text = bytes.get(at + 1..at + 1 + len).unwrap_or_default();
    String::from_utf8_lossy(text).into_owned()
}

fn short_string(out: &mut Vec<u8>, text: &str) {
    let bytes = &text.as_bytes()[..text.len().min(255)];
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
}

fn long_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend((bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// A JSON object as an AMQP field table.
fn table(object: &Value) -> Vec<u8> {
    let mut fields = Vec::new();
    if let Value::Object(map) = object {
        for (name, value) in map {
            short_string(&mut fields, name);
            field_value(&mut fields, value);
        }
    }
    let mut out = (fields.len() as u32).to_be_bytes().to_vec();
    out.extend(fields);
    out
}

fn field_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.push(b'V'),
        Value::Bool(b) => out.extend([b't', u8::from(*b)]),
        Value::Number(n) => match n.as_i64() {
            Some(n) => {
                out.push(b'l');
                out.extend(n.to_be_bytes());
            }
            None => {
                out.push(b'd');
                out.extend(n.as_f64().unwrap_or(0.0).to_be_bytes());
            }
        },
        Value::String(s) => {
            out.push(b'S');
            long_string(out, s.as_bytes());
        }
        Value::Array(items) => {
            let mut inner = Vec::new();
            for item in items {
                field_value(&mut inner, item);
            }
            out.push(b'A');
            long_string(out, &inner);
        }
        Value::Object(_) => {
            out.push(b'F');
            out.extend(table(value));
        }
    }
}

fn bad(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_read_as_amqp_clients_read_them() {
        let plain = AmqpAddress::parse("amqp://rabbit").unwrap();
        assert_eq!(
            (
                plain.host_port.as_str(),
                plain.user.as_str(),
                plain.vhost.as_str()
            ),
            ("rabbit:5672", "guest", "/")
        );
        let full = AmqpAddress::parse("amqp://me:p%40ss@mq:5673/chris").unwrap();
        assert_eq!(
            (
                full.host_port.as_str(),
                full.user.as_str(),
                full.password.as_str(),
                full.vhost.as_str()
            ),
            ("mq:5673", "me", "p@ss", "chris")
        );
        assert_eq!(AmqpAddress::parse("amqp://mq//").unwrap().vhost, "/");
        assert!(AmqpAddress::parse("amqps://mq").is_err());
        assert!(AmqpAddress::parse("amqp://").is_err());
    }

    #[test]
    fn tables_encode_celerys_header_values() {
        let encoded = table(&serde_json::json!({"a": null, "b": [null, 1], "c": "x", "d": false}));
        let expected: Vec<u8> = [
            &[0, 0, 0, 32][..],
            b"\x01aV",
            b"\x01bA\x00\x00\x00\x0aVl\x00\x00\x00\x00\x00\x00\x00\x01",
            b"\x01cS\x00\x00\x00\x01x",
            b"\x01dt\x00",
        ]
        .concat();
        assert_eq!(encoded, expected);
    }
}
