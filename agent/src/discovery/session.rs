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

/// A paced, bounded TCP connection to one service.
pub struct TcpSession<'p> {
    stream: TcpStream,
    peer: SocketAddr,
    permit: &'p mut HostPermit,
    budget: Budget,
}

impl<'p> TcpSession<'p> {
    /// Connects after taking a packet slot (the SYN counts as a packet).
    pub async fn connect(
        addr: SocketAddr,
        permit: &'p mut HostPermit,
        budget: Budget,
    ) -> Result<Self, ProbeError> {
        permit.packet().await;
        let stream = timeout(budget.timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ProbeError::Timeout("connecting"))?
            .map_err(ProbeError::Closed)?;
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
