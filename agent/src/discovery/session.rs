//! Sockets for probes, paced and bounded: every connect and send first waits on the
//! [`HostPermit`](super::limiter::HostPermit); every read has a timeout and stops at the
//! response-size cap. Probes never touch a socket except through these types.
//!
//! A [`TcpSession`] can be upgraded to TLS ([`TcpSession::start_tls`]); probes then send and
//! read exactly as before and the session seals and opens the records. The handshake is driven
//! by hand (rustls' `ClientConnection`, not a `tokio-rustls` stream) so that every flight the
//! client sends takes a packet slot like any request, each read keeps the step timeout, and the
//! bytes the server sends during the handshake are capped ([`HANDSHAKE_CAP`]).

use std::net::SocketAddr;
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

use rustls::ClientConnection;

use super::limiter::HostPermit;
use super::wire::ParseError;

/// Most bytes a server may send during a TLS handshake. Certificate chains of real devices
/// run to a few KiB; this bounds a peer that streams without end, independent of the reply cap
/// (which holds for what the probe reads inside TLS).
pub const HANDSHAKE_CAP: usize = 64 * 1024;

/// How much of the server's first handshake bytes is kept for [`Handshake::first_reply`].
const FIRST_REPLY_KEEP: usize = 4096;

/// Per-probe budget: time for each network step and the largest reply accepted.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Timeout for a connect, a write or waiting for a reply.
    pub timeout: Duration,
    /// Largest reply read, in bytes; more is an error, never buffered.
    pub max_response: usize,
}

/// Why a probe did not finish.
#[derive(Debug, Error)]
pub enum ProbeError {
    /// The port did not accept a connection.
    #[error("closed: {0}")]
    Closed(std::io::Error),
    /// A step took longer than the budget.
    #[error("timed out while {0}")]
    Timeout(&'static str),
    /// A socket error after the connect.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer hung up before a full reply.
    #[error("peer closed the connection after {0} bytes")]
    Eof(usize),
    /// The reply was larger than the cap.
    #[error("reply larger than {0} bytes")]
    TooLarge(usize),
    /// The reply could not be parsed.
    #[error("unparseable reply: {0}")]
    Parse(#[from] ParseError),
}

/// What a framing function says about the bytes read so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Not enough bytes to know the frame length.
    Incomplete,
    /// The frame is this many bytes long (possibly more than read so far).
    Length(usize),
    /// The bytes cannot start a frame of this protocol.
    Invalid,
}

/// The longest a single connect attempt waits: safely below Linux's 1 s initial SYN
/// retransmission timeout, so the kernel never sends a SYN of its own.
pub const SYN_ATTEMPT_LIMIT: Duration = Duration::from_millis(900);

/// Splits a connect `budget` into equal attempts of at most [`SYN_ATTEMPT_LIMIT`] each.
pub fn syn_attempts(budget: Duration) -> impl Iterator<Item = Duration> {
    let count = budget
        .as_micros()
        .div_ceil(SYN_ATTEMPT_LIMIT.as_micros())
        .max(1);
    let count = u32::try_from(count).unwrap_or(u32::MAX);
    std::iter::repeat_n(budget / count, count as usize)
}

/// Why a TLS handshake did not finish.
#[derive(Debug, Error)]
pub enum TlsFailure {
    /// rustls refused what the peer sent: not TLS at all, an alert, or a version or cipher we
    /// do not speak.
    #[error("{0}")]
    Tls(#[from] rustls::Error),
    /// The socket failed: closed, silent past the timeout, or over [`HANDSHAKE_CAP`].
    #[error("{0}")]
    Probe(#[from] ProbeError),
}

/// How a TLS handshake ended, with the start of what the server sent (to read a legacy
/// ServerHello that rustls refuses, or to show what a non-TLS port answered).
#[derive(Debug)]
pub struct Handshake {
    /// `Ok` when the session now speaks TLS.
    pub result: Result<(), TlsFailure>,
    /// The first bytes the server sent, at most 4 KiB.
    pub first_reply: Vec<u8>,
}

/// A paced, bounded TCP connection to one service.
pub struct TcpSession<'p> {
    stream: TcpStream,
    /// Set once [`TcpSession::start_tls`] succeeded: requests are sealed, replies opened.
    tls: Option<Box<ClientConnection>>,
    peer: SocketAddr,
    permit: &'p mut HostPermit,
    budget: Budget,
}

impl<'p> TcpSession<'p> {
    /// Connects after taking a packet slot (the SYN counts as a packet).
    ///
    /// The kernel retransmits an unanswered SYN once its initial retransmission timeout expires
    /// (1 s on Linux, RFC 6298 §2.1), and that retransmission would bypass the limiter. So each
    /// attempt is given up before then: dropping a socket in `SYN-SENT` sends nothing. When the
    /// budget allows more time, the next SYN is a new attempt that takes its own packet slot, so
    /// every SYN on the wire went through the limiter.
    pub async fn connect(
        addr: SocketAddr,
        permit: &'p mut HostPermit,
        budget: Budget,
    ) -> Result<Self, ProbeError> {
        let mut stream = None;
        for attempt in syn_attempts(budget.timeout) {
            permit.packet().await;
            if let Ok(connected) = timeout(attempt, TcpStream::connect(addr)).await {
                stream = Some(connected.map_err(ProbeError::Closed)?);
                break;
            }
            tracing::trace!(%addr, ?attempt, "no SYN-ACK within the attempt");
        }
        let stream = stream.ok_or(ProbeError::Timeout("connecting"))?;
        // Small requests must leave at once, not wait for Nagle.
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            tls: None,
            peer: addr,
            permit,
            budget,
        })
    }

    /// The address connected to.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The TLS state (version, cipher suite) once [`Self::start_tls`] succeeded.
    pub fn tls_state(&self) -> Option<&rustls::CommonState> {
        self.tls.as_deref().map(|connection| &***connection)
    }

    /// Sends one request after taking a packet slot (sealed in TLS records after
    /// [`Self::start_tls`]).
    pub async fn send(&mut self, request: &[u8]) -> Result<(), ProbeError> {
        match self.tls.as_deref_mut() {
            None => self.write_flight(request).await,
            Some(tls) => {
                std::io::Write::write_all(&mut tls.writer(), request)?;
                let sealed = pending_records(tls)?;
                self.write_flight(&sealed).await
            }
        }
    }

    /// Writes bytes as they are, after taking a packet slot.
    async fn write_flight(&mut self, bytes: &[u8]) -> Result<(), ProbeError> {
        self.permit.packet().await;
        timeout(self.budget.timeout, self.stream.write_all(bytes))
            .await
            .map_err(|_| ProbeError::Timeout("sending"))??;
        Ok(())
    }

    /// Runs a TLS handshake with `connection` (made from a
    /// [`RecordingClient`](crate::tls_facts::RecordingClient)'s configuration); on success the
    /// session speaks TLS from here on. Each client flight (ClientHello, then the key exchange
    /// and Finished) takes a packet slot; on failure no alert is sent, the connection is just
    /// dropped.
    pub async fn start_tls(&mut self, mut connection: ClientConnection) -> Handshake {
        let mut first_reply = Vec::new();
        let result = self.handshake(&mut connection, &mut first_reply).await;
        if result.is_ok() {
            self.tls = Some(Box::new(connection));
        }
        Handshake {
            result,
            first_reply,
        }
    }

    async fn handshake(
        &mut self,
        connection: &mut ClientConnection,
        first_reply: &mut Vec<u8>,
    ) -> Result<(), TlsFailure> {
        let mut received = 0usize;
        loop {
            if connection.wants_write() {
                let flight = pending_records(connection).map_err(ProbeError::Io)?;
                self.write_flight(&flight).await?;
                continue;
            }
            if !connection.is_handshaking() {
                return Ok(());
            }
            let mut chunk = [0u8; 4096];
            let n = self.read_socket(&mut chunk).await?;
            if n == 0 {
                return Err(ProbeError::Eof(received).into());
            }
            received += n;
            if received > HANDSHAKE_CAP {
                return Err(ProbeError::TooLarge(HANDSHAKE_CAP).into());
            }
            let keep = FIRST_REPLY_KEEP.saturating_sub(first_reply.len()).min(n);
            first_reply.extend_from_slice(&chunk[..keep]);
            feed(connection, &chunk[..n])?;
        }
    }

    /// One read from the socket with the step timeout; 0 at end of stream.
    async fn read_socket(&mut self, chunk: &mut [u8]) -> Result<usize, ProbeError> {
        Ok(timeout(self.budget.timeout, self.stream.read(chunk))
            .await
            .map_err(|_| ProbeError::Timeout("waiting for a reply"))??)
    }

    /// One read of plaintext: from the socket, or opened from TLS records (reading more
    /// records until some plaintext or the end arrives); 0 at end of stream.
    async fn read_plain(&mut self, chunk: &mut [u8]) -> Result<usize, ProbeError> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return self.read_socket(chunk).await;
        };
        loop {
            match std::io::Read::read(&mut tls.reader(), chunk) {
                Ok(n) => return Ok(n),
                // A peer that closes without close_notify has still ended its reply.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => return Err(e.into()),
                Err(_) => {}
            }
            let mut records = [0u8; 4096];
            let n = timeout(self.budget.timeout, self.stream.read(&mut records))
                .await
                .map_err(|_| ProbeError::Timeout("waiting for a reply"))??;
            if n == 0 {
                return Ok(0);
            }
            feed(tls, &records[..n]).map_err(|e| ProbeError::Io(std::io::Error::other(e)))?;
        }
    }

    /// Reads one frame whose length `framing` derives from its header.
    pub async fn read_frame(&mut self, framing: fn(&[u8]) -> Frame) -> Result<Vec<u8>, ProbeError> {
        let mut buf = Vec::new();
        loop {
            match framing(&buf) {
                Frame::Length(n) if n > self.budget.max_response => {
                    return Err(ProbeError::TooLarge(self.budget.max_response));
                }
                Frame::Length(n) if buf.len() >= n => {
                    buf.truncate(n);
                    return Ok(buf);
                }
                Frame::Invalid => {
                    return Err(ParseError::Unexpected {
                        field: "frame header",
                        value: u64::from(buf.first().copied().unwrap_or(0)),
                    }
                    .into());
                }
                _ => {}
            }
            self.read_more(&mut buf).await?;
        }
    }

    /// Reads until `done` says the text is complete, the cap is hit or the peer goes quiet;
    /// returns whatever arrived (banners have no length field).
    pub async fn read_banner(&mut self, done: fn(&[u8]) -> bool) -> Result<Vec<u8>, ProbeError> {
        let mut buf = Vec::new();
        while !done(&buf) && buf.len() < self.budget.max_response {
            match self.read_more(&mut buf).await {
                Ok(()) => {}
                Err(ProbeError::Eof(_) | ProbeError::Timeout(_)) if !buf.is_empty() => break,
                // A banner longer than the cap is cut, not an error: its start identifies.
                Err(ProbeError::TooLarge(_)) => break,
                Err(error) => return Err(error),
            }
        }
        buf.truncate(self.budget.max_response);
        Ok(buf)
    }

    async fn read_more(&mut self, buf: &mut Vec<u8>) -> Result<(), ProbeError> {
        let mut chunk = [0u8; 4096];
        let room = (self.budget.max_response + 1)
            .saturating_sub(buf.len())
            .min(chunk.len());
        if room == 0 {
            return Err(ProbeError::TooLarge(self.budget.max_response));
        }
        let n = self.read_plain(&mut chunk[..room]).await?;
        if n == 0 {
            return Err(ProbeError::Eof(buf.len()));
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > self.budget.max_response {
            return Err(ProbeError::TooLarge(self.budget.max_response));
        }
        Ok(())
    }
}

/// The TLS records `connection` has queued (a handshake flight or sealed application data).
fn pending_records(connection: &mut ClientConnection) -> Result<Vec<u8>, std::io::Error> {
    let mut out = Vec::new();
    while connection.wants_write() {
        connection.write_tls(&mut out)?;
    }
    Ok(out)
}

/// Hands bytes from the socket to rustls and processes the records they complete.
fn feed(connection: &mut ClientConnection, mut bytes: &[u8]) -> Result<(), rustls::Error> {
    while !bytes.is_empty() {
        // Reading from a slice cannot fail; rustls only refuses when its buffer is full, which
        // processing the records just read empties.
        if connection.read_tls(&mut bytes).is_err() {
            return Err(rustls::Error::General(
                "TLS receive buffer full".to_string(),
            ));
        }
        connection.process_new_packets()?;
    }
    Ok(())
}

/// A paced, bounded UDP exchange with one service.
pub struct UdpSession<'p> {
    socket: UdpSocket,
    permit: &'p mut HostPermit,
    budget: Budget,
    /// Set for a session opened with [`UdpSession::open_host`]: the socket is not connected,
    /// requests go to this address and replies are taken from any port of its host.
    unconnected_peer: Option<SocketAddr>,
}

impl<'p> UdpSession<'p> {
    /// Binds an ephemeral port and fixes the peer (replies from elsewhere are dropped by the
    /// kernel).
    pub async fn open(
        addr: SocketAddr,
        permit: &'p mut HostPermit,
        budget: Budget,
    ) -> Result<Self, ProbeError> {
        let socket = UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], 0))).await?;
        socket.connect(addr).await?;
        Ok(Self {
            socket,
            permit,
            budget,
            unconnected_peer: None,
        })
    }

    /// Like [`UdpSession::open`], for services that may answer from another port than the one
    /// asked (SOAP-over-UDP fixes only where the reply goes, not where it comes from): replies
    /// from any port of `addr`'s host are taken, from other hosts dropped. The price: an
    /// unconnected socket never hears ICMP port-unreachable, so a closed port costs a timeout.
    pub async fn open_host(
        addr: SocketAddr,
        permit: &'p mut HostPermit,
        budget: Budget,
    ) -> Result<Self, ProbeError> {
        let socket = UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], 0))).await?;
        Ok(Self {
            socket,
            permit,
            budget,
            unconnected_peer: Some(addr),
        })
    }

    /// Sends one datagram and waits for one reply.
    pub async fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ProbeError> {
        self.permit.packet().await;
        match self.unconnected_peer {
            Some(peer) => self.socket.send_to(request, peer).await?,
            None => self.socket.send(request).await?,
        };
        self.receive().await
    }

    /// Waits for one more datagram.
    pub async fn receive(&mut self) -> Result<Vec<u8>, ProbeError> {
        // One byte more than the cap tells an oversized datagram from one that fits exactly.
        let mut buf = vec![0u8; self.budget.max_response.min(65_535) + 1];
        let n = timeout(self.budget.timeout, self.recv_from_peer(&mut buf))
            .await
            .map_err(|_| ProbeError::Timeout("waiting for a datagram"))?
            .map_err(ProbeError::Closed)?;
        if n > self.budget.max_response {
            return Err(ProbeError::TooLarge(self.budget.max_response));
        }
        buf.truncate(n);
        Ok(buf)
    }

    /// One datagram from the peer: the kernel filters a connected socket; an unconnected one
    /// drops datagrams from other hosts here.
    async fn recv_from_peer(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(peer) = self.unconnected_peer else {
            return self.socket.recv(buf).await;
        };
        loop {
            let (n, from) = self.socket.recv_from(buf).await?;
            if from.ip() == peer.ip() {
                return Ok(n);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::Ipv4Addr;

    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;
    use crate::discovery::limiter::{Limiter, Limits};

    #[test]
    fn connect_attempts_stay_below_the_kernel_retransmission_and_fill_the_budget() {
        for ms in [1_u64, 500, 900, 901, 2_000, 2_700, 10_000] {
            let budget = Duration::from_millis(ms);
            let attempts: Vec<Duration> = syn_attempts(budget).collect();
            assert!(!attempts.is_empty());
            assert!(
                attempts.iter().all(|a| *a <= SYN_ATTEMPT_LIMIT),
                "{ms} ms: {attempts:?}"
            );
            let total: Duration = attempts.iter().sum();
            assert!(
                budget.checked_sub(total).unwrap() < Duration::from_millis(1),
                "{ms} ms: {attempts:?}"
            );
        }
        assert_eq!(syn_attempts(Duration::from_secs(2)).count(), 3);
        assert_eq!(syn_attempts(Duration::from_millis(900)).count(), 1);
    }

    /// A length-prefixed test framing: u32 BE length, then that many bytes.
    fn framing(buf: &[u8]) -> Frame {
        match buf {
            [a, b, c, d, ..] => {
                Frame::Length(4 + usize::try_from(u32::from_be_bytes([*a, *b, *c, *d])).unwrap())
            }
            _ => Frame::Incomplete,
        }
    }

    /// A loopback server that writes `reply` to its first client and then keeps it open.
    async fn server(reply: Vec<u8>) -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let _ = stream.write_all(&reply).await;
            std::future::pending::<()>().await;
        });
        addr
    }

    const BUDGET: Budget = Budget {
        timeout: Duration::from_secs(2),
        max_response: 1024,
    };

    #[tokio::test]
    async fn announced_frame_above_the_cap_is_refused_unread() {
        let addr = server([&100_000u32.to_be_bytes()[..], &[0u8; 16]].concat()).await;
        let limiter = Limiter::new(Limits::default());
        let mut permit = limiter.host(addr.ip()).await;
        let mut session = TcpSession::connect(addr, &mut permit, BUDGET)
            .await
            .unwrap();
        assert!(matches!(
            session.read_frame(framing).await,
            Err(ProbeError::TooLarge(1024))
        ));
    }

    #[tokio::test]
    async fn banner_reads_stop_at_the_cap() {
        let addr = server(vec![b'x'; 10_000]).await;
        let limiter = Limiter::new(Limits::default());
        let mut permit = limiter.host(addr.ip()).await;
        let mut session = TcpSession::connect(addr, &mut permit, BUDGET)
            .await
            .unwrap();
        let banner = session.read_banner(|_| false).await.unwrap();
        assert_eq!(banner.len(), 1024);
    }

    #[tokio::test]
    async fn silent_peer_times_out_and_connects_count_as_packets() {
        let addr = server(Vec::new()).await;
        let limiter = Limiter::new(Limits::default());
        let mut permit = limiter.host(addr.ip()).await;
        let budget = Budget {
            timeout: Duration::from_millis(200),
            ..BUDGET
        };
        let mut session = TcpSession::connect(addr, &mut permit, budget)
            .await
            .unwrap();
        session.send(b"ping").await.unwrap();
        assert!(matches!(
            session.read_frame(framing).await,
            Err(ProbeError::Timeout(_))
        ));
        drop(session);
        assert_eq!(
            limiter.sent(),
            2,
            "the connect and the send each took a packet slot"
        );
    }

    /// A rustls server with a fresh self-signed certificate that answers `ping` with `pong`
    /// inside TLS 1.3.
    async fn tls_server() -> SocketAddr {
        use tokio::io::AsyncReadExt;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["plc.example".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(stream).await.unwrap();
            let mut ping = [0u8; 4];
            tls.read_exact(&mut ping).await.unwrap();
            tls.write_all(&[0, 0, 0, 4]).await.unwrap();
            tls.write_all(b"pong").await.unwrap();
            tls.flush().await.unwrap();
            std::future::pending::<()>().await;
        });
        addr
    }

    #[tokio::test]
    async fn tls_handshake_flights_take_packet_slots_and_frames_read_inside_tls() {
        let addr = tls_server().await;
        let limiter = Limiter::new(Limits::default());
        let mut permit = limiter.host(addr.ip()).await;
        let mut session = TcpSession::connect(addr, &mut permit, BUDGET)
            .await
            .unwrap();
        let client = crate::tls_facts::RecordingClient::new().unwrap();
        let connection = ClientConnection::new(client.config(), addr.ip().into()).unwrap();
        let handshake = session.start_tls(connection).await;
        handshake.result.unwrap();
        let facts = client.finished(session.tls_state().unwrap());
        assert_eq!(facts.version, "TLSv1.3");
        assert!(facts.certificate.unwrap().self_signed);
        session.send(b"ping").await.unwrap();
        assert_eq!(
            session.read_frame(framing).await.unwrap(),
            b"\0\0\0\x04pong"
        );
        drop(session);
        assert_eq!(
            limiter.sent(),
            4,
            "connect, ClientHello, Finished and the request each took a packet slot"
        );
    }

    #[tokio::test]
    async fn host_session_takes_replies_from_another_port_of_the_host_only() {
        let service = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let other_port = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let stranger = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 2), 0))
            .await
            .unwrap();
        let addr = service.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 16];
            let (_, client) = service.recv_from(&mut buf).await.unwrap();
            stranger.send_to(b"stranger", client).await.unwrap();
            other_port.send_to(b"reply", client).await.unwrap();
        });
        let limiter = Limiter::new(Limits::default());
        let mut permit = limiter.host(addr.ip()).await;
        let mut session = UdpSession::open_host(addr, &mut permit, BUDGET)
            .await
            .unwrap();
        assert_eq!(session.exchange(b"probe").await.unwrap(), b"reply");
    }
}
