//! Sockets for probes, paced and bounded: every connect and send first waits on the
//! [`HostPermit`](super::limiter::HostPermit); every read has a timeout and stops at the
//! response-size cap. Probes never touch a socket except through these types.

use std::net::SocketAddr;
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

use super::limiter::HostPermit;
use super::wire::ParseError;

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

/// A paced, bounded TCP connection to one service.
pub struct TcpSession<'p> {
    stream: TcpStream,
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
            peer: addr,
            permit,
            budget,
        })
    }

    /// The address connected to.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Sends one request after taking a packet slot.
    pub async fn send(&mut self, request: &[u8]) -> Result<(), ProbeError> {
        self.permit.packet().await;
        timeout(self.budget.timeout, self.stream.write_all(request))
            .await
            .map_err(|_| ProbeError::Timeout("sending"))??;
        Ok(())
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
        let n = timeout(self.budget.timeout, self.stream.read(&mut chunk[..room]))
            .await
            .map_err(|_| ProbeError::Timeout("waiting for a reply"))??;
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

/// A paced, bounded UDP exchange with one service.
pub struct UdpSession<'p> {
    socket: UdpSocket,
    permit: &'p mut HostPermit,
    budget: Budget,
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
        })
    }

    /// Sends one datagram and waits for one reply.
    pub async fn exchange(&mut self, request: &[u8]) -> Result<Vec<u8>, ProbeError> {
        self.permit.packet().await;
        self.socket.send(request).await?;
        self.receive().await
    }

    /// Waits for one more datagram.
    pub async fn receive(&mut self) -> Result<Vec<u8>, ProbeError> {
        // One byte more than the cap tells an oversized datagram from one that fits exactly.
        let mut buf = vec![0u8; self.budget.max_response.min(65_535) + 1];
        let n = timeout(self.budget.timeout, self.socket.recv(&mut buf))
            .await
            .map_err(|_| ProbeError::Timeout("waiting for a datagram"))?
            .map_err(ProbeError::Closed)?;
        if n > self.budget.max_response {
            return Err(ProbeError::TooLarge(self.budget.max_response));
        }
        buf.truncate(n);
        Ok(buf)
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
}
