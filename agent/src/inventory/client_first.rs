//! Recognising this host's services that wait for the client to speak first and do not speak
//! TLS or HTTP from the first byte: PostgreSQL, MQTT, Redis and RDP. Each gets the smallest
//! request that makes it name itself, and only on the port it is registered on, so an
//! unrelated service never receives a foreign protocol's bytes. Redis is also recognised on any port by its answer to the generic
//! `HEAD /` ([`redis_error_reply`]).
//!
//! ```text
//! PostgreSQL 5432  SSLRequest: 00 00 00 08  04 d2 16 2f      (protocol docs §55.2.10)
//!                  reply: one byte, 'S' (will do TLS) or 'N' (plaintext only);
//!                  nothing else is sent: the connection is closed before any startup packet
//! MQTT 1883        CONNECT without credentials, CONNACK, DISCONNECT (the discovery probe's
//!                  packets, `discovery::mqtt`)
//! Redis 6379       PING\r\n  → `+PONG` (no password) | `-NOAUTH ...` (password required)
//! RDP 3389         X.224 Connection Request with an RDP Negotiation Request, then TLS on the
//!                  same connection if selected (the frames are drawn in `rdp`)
//! ```
//!
//! Written by hand: each exchange is a few fixed bytes; a client crate would open sessions
//! (PostgreSQL startup, MQTT subscriptions) that we must never open.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::rdp;
use super::tls_probe::{Encryption, ServiceVerdict};
use crate::discovery::identity::Auth;
use crate::discovery::mqtt;

/// PostgreSQL's SSLRequest: length 8, request code 80877103.
const PG_SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F];
const PG_PORT: u16 = 5432;
const MQTT_PORT: u16 = 1883;
const REDIS_PORT: u16 = 6379;
/// Replies are a handful of bytes; more means it is not the protocol we asked.
const MAX_REPLY: usize = 512;

/// The registered-port probe for `target`, if its port has one and the service answered as that
/// protocol; `None` leaves the service to the generic steps.
pub async fn probe(target: SocketAddr, wait: Duration) -> Option<ServiceVerdict> {
    match target.port() {
        PG_PORT => postgres(target, wait).await,
        MQTT_PORT => mqtt(target, wait).await,
        REDIS_PORT => redis(target, wait).await,
        rdp::RDP_PORT => rdp::probe(target, wait).await,
        _ => None,
    }
}

/// One request, one bounded read; `None` when the connection or the exchange failed.
async fn exchange(
    target: SocketAddr,
    request: &[u8],
    wait: Duration,
) -> Option<(TcpStream, Vec<u8>)> {
    let mut stream = timeout(wait, TcpStream::connect(target)).await.ok()?.ok()?;
    timeout(wait, stream.write_all(request)).await.ok()?.ok()?;
    let mut reply = vec![0u8; MAX_REPLY];
    let n = timeout(wait, stream.read(&mut reply)).await.ok()?.ok()?;
    reply.truncate(n);
    (!reply.is_empty()).then_some((stream, reply))
}

async fn postgres(target: SocketAddr, wait: Duration) -> Option<ServiceVerdict> {
    let (_, reply) = exchange(target, &PG_SSL_REQUEST, wait).await?;
    let offers_tls = parse_pg_ssl_reply(&reply)?;
    let mut verdict = ServiceVerdict::new(target, Encryption::Plaintext, "postgresql");
    verdict.starttls = Some(offers_tls);
    verdict.note = if offers_tls {
        "SSLRequest answered 'S': TLS is offered, but whether plaintext logins are refused is \
         decided by pg_hba.conf (hostssl), which the probe cannot see"
    } else {
        "SSLRequest answered 'N': the server has TLS off"
    }
    .to_string();
    Some(verdict)
}

/// `Some(true)` for `S`, `Some(false)` for `N`, `None` for anything else.
pub fn parse_pg_ssl_reply(reply: &[u8]) -> Option<bool> {
    match reply {
        [b'S'] => Some(true),
        [b'N'] => Some(false),
        _ => None,
    }
}

async fn mqtt(target: SocketAddr, wait: Duration) -> Option<ServiceVerdict> {
    let (mut stream, reply) =
        exchange(target, &mqtt::connect(&mqtt::random_client_id()), wait).await?;
    let identification = mqtt::parse(&reply).ok()?;
    if identification.auth == Auth::None {
        // Polite end of the session the broker just accepted.
        let _ = timeout(wait, stream.write_all(&mqtt::disconnect())).await;
    }
    let mut verdict = ServiceVerdict::new(target, Encryption::Plaintext, "mqtt");
    verdict.anonymous_access = Some(identification.auth == Auth::None);
    verdict.note = identification.auth_reason;
    Some(verdict)
}

async fn redis(target: SocketAddr, wait: Duration) -> Option<ServiceVerdict> {
    let (_, reply) = exchange(target, b"PING\r\n", wait).await?;
    let (anonymous, line) = parse_redis_reply(&reply)?;
    let mut verdict = ServiceVerdict::new(target, Encryption::Plaintext, "redis");
    verdict.anonymous_access = anonymous;
    verdict.banner = line;
    Some(verdict)
}

/// A RESP reply to `PING`: `+PONG` means no password; `-NOAUTH`/`-WRONGPASS` mean one is needed.
/// Returns (anonymous access, first line).
pub fn parse_redis_reply(reply: &[u8]) -> Option<(Option<bool>, String)> {
    let line = reply.split(|&b| b == b'\r' || b == b'\n').next()?;
    let text = std::str::from_utf8(line).ok()?;
    let anonymous = if text.starts_with("+PONG") {
        Some(true)
    } else if text.starts_with("-NOAUTH") || text.starts_with("-WRONGPASS") {
        Some(false)
    } else if text.starts_with("-ERR") || text.starts_with("-DENIED") {
        None
    } else {
        return None;
    };
    Some((anonymous, super::banner::printable(line)))
}

/// Redis answers an HTTP request line it cannot parse as a command with a RESP error
/// (`-ERR unknown command 'HEAD', ...`), which names it on any port.
pub fn redis_error_reply(reply: &[u8]) -> bool {
    reply.starts_with(b"-ERR unknown command") || reply.starts_with(b"-NOAUTH")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn postgres_answers_one_letter() {
        assert_eq!(parse_pg_ssl_reply(b"S"), Some(true));
        assert_eq!(parse_pg_ssl_reply(b"N"), Some(false));
        assert_eq!(parse_pg_ssl_reply(b"E"), None);
        assert_eq!(parse_pg_ssl_reply(b"SS"), None);
        assert_eq!(parse_pg_ssl_reply(b""), None);
    }

    #[test]
    fn redis_replies_tell_whether_a_password_is_needed() {
        assert_eq!(parse_redis_reply(b"+PONG\r\n").unwrap().0, Some(true));
        assert_eq!(
            parse_redis_reply(b"-NOAUTH Authentication required.\r\n")
                .unwrap()
                .0,
            Some(false)
        );
        assert_eq!(parse_redis_reply(b"-ERR x\r\n").unwrap().0, None);
        assert!(parse_redis_reply(b"HTTP/1.0 200 OK\r\n").is_none());
        assert!(parse_redis_reply(b"\xff\xfe").is_none());
        assert!(redis_error_reply(
            b"-ERR unknown command 'HEAD', with args beginning with: '/'"
        ));
        assert!(!redis_error_reply(b"HTTP/1.1 400 Bad Request"));
    }

    #[test]
    fn hostile_replies_never_panic() {
        let mut seed = 0x2545_f491_u32;
        for len in 0..64 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    b"+-PONGNOAUTHERR\r\nS\x00\xff"[(seed % 19) as usize]
                })
                .collect();
            let _ = parse_redis_reply(&bytes);
            let _ = parse_pg_ssl_reply(&bytes);
            let _ = redis_error_reply(&bytes);
        }
    }
}
