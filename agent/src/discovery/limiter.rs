//! The one gate every probe packet passes: a global packets-per-second cap, a per-host cap, and
//! one probe at a time per host.
//!
//! OT devices fall over under load that an IT host would not notice (small TCP stacks, a PLC
//! scan cycle sharing the CPU with the network), so the pacing is strict: packets are spaced by
//! `1 / pps` with no burst allowance. A probe first takes the host's [`HostPermit`] (held for
//! as long as it talks to that host, which serialises probes per host), then calls
//! [`HostPermit::packet`] before every connect and every request write. A TCP connect counts as
//! one packet; the kernel's own ACKs and FINs are not paced.
//!
//! Time comes from `tokio::time`, so the unit tests run it on a paused, virtual clock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use tokio::time::{Instant, sleep_until};

/// Rate caps, both in packets per second and both at least 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Across all hosts.
    pub global_pps: u32,
    /// Towards any one host.
    pub per_host_pps: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            global_pps: 100,
            per_host_pps: 10,
        }
    }
}

/// Hands out evenly spaced send slots.
#[derive(Debug)]
struct Pacer {
    interval: Duration,
    next: Option<Instant>,
}

impl Pacer {
    fn new(pps: u32) -> Self {
        Self {
            interval: Duration::from_secs(1) / pps.max(1),
            next: None,
        }
    }

    /// Reserves the earliest free slot at or after `now`.
    fn reserve(&mut self, now: Instant) -> Instant {
        let at = self.next.map_or(now, |next| next.max(now));
        self.next = Some(at + self.interval);
        at
    }
}

/// The shared limiter; clone the `Arc` into every task.
#[derive(Debug)]
pub struct Limiter {
    global: Mutex<Pacer>,
    hosts: Mutex<HashMap<IpAddr, Arc<AsyncMutex<Pacer>>>>,
    per_host_pps: u32,
    sent: AtomicU64,
}

impl Limiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            global: Mutex::new(Pacer::new(limits.global_pps)),
            hosts: Mutex::new(HashMap::new()),
            per_host_pps: limits.per_host_pps,
            sent: AtomicU64::new(0),
        })
    }

    /// Waits until no other probe talks to `host`, then returns the permit to talk to it.
    pub async fn host(self: &Arc<Self>, host: IpAddr) -> HostPermit {
        let slot = {
            // A poisoned map only means another task panicked mid-insert; the map is still valid.
            let mut hosts = self
                .hosts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(
                hosts
                    .entry(host)
                    .or_insert_with(|| Arc::new(AsyncMutex::new(Pacer::new(self.per_host_pps)))),
            )
        };
        HostPermit {
            pacer: slot.lock_owned().await,
            limiter: Arc::clone(self),
        }
    }

    /// Packets granted so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    fn reserve_global(&self) -> Instant {
        let mut pacer = self
            .global
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pacer.reserve(Instant::now())
    }
}

/// Exclusive right to probe one host; dropping it lets the next probe of that host run.
#[derive(Debug)]
pub struct HostPermit {
    pacer: OwnedMutexGuard<Pacer>,
    limiter: Arc<Limiter>,
}

impl HostPermit {
    /// Waits for a send slot under both caps. Call right before each connect or write.
    pub async fn packet(&mut self) {
        let host_slot = self.pacer.next.unwrap_or_else(Instant::now);
        sleep_until(host_slot).await;
        sleep_until(self.limiter.reserve_global()).await;
        // The global wait may have pushed this send past the host slot: space the next host
        // packet from the real send time, not from the slot.
        let sent_at = Instant::now();
        self.pacer.next = Some(sent_at + self.pacer.interval);
        self.limiter.sent.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn host(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, n))
    }

    /// Runs `hosts` tasks sending as fast as allowed and returns the packets granted after
    /// `secs` of virtual time.
    async fn granted(limits: Limits, hosts: u8, secs: u64) -> u64 {
        let limiter = Limiter::new(limits);
        for n in 0..hosts {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move {
                let mut permit = limiter.host(host(n)).await;
                loop {
                    permit.packet().await;
                }
            });
        }
        tokio::time::sleep(Duration::from_secs(secs)).await;
        limiter.sent()
    }

    #[tokio::test(start_paused = true)]
    async fn global_cap_holds_over_virtual_time() {
        // 50 hosts at 10 pps each could send 500 pps; the global cap of 100 must win.
        let sent = granted(
            Limits {
                global_pps: 100,
                per_host_pps: 10,
            },
            50,
            10,
        )
        .await;
        assert!(
            (1000..=1001).contains(&sent),
            "granted {sent} in 10 s at 100 pps"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn per_host_cap_holds_over_virtual_time() {
        let sent = granted(
            Limits {
                global_pps: 100,
                per_host_pps: 10,
            },
            1,
            10,
        )
        .await;
        assert!(
            (100..=101).contains(&sent),
            "granted {sent} to one host in 10 s at 10 pps"
        );
        let sent = granted(
            Limits {
                global_pps: 100,
                per_host_pps: 10,
            },
            3,
            10,
        )
        .await;
        assert!((300..=303).contains(&sent), "granted {sent} to three hosts");
    }

    #[tokio::test(start_paused = true)]
    async fn one_probe_per_host_at_a_time() {
        let limiter = Limiter::new(Limits::default());
        let first = limiter.host(host(1)).await;
        let second = tokio::time::timeout(Duration::from_mins(1), limiter.host(host(1))).await;
        assert!(second.is_err(), "a second probe of the same host must wait");
        let other = tokio::time::timeout(Duration::from_secs(1), limiter.host(host(2))).await;
        assert!(other.is_ok(), "another host is not blocked");
        drop(first);
        let again = tokio::time::timeout(Duration::from_secs(1), limiter.host(host(1))).await;
        assert!(again.is_ok(), "the host is free once the first probe ends");
    }

    #[tokio::test(start_paused = true)]
    async fn host_spacing_survives_global_delay() {
        // With a global cap below the host cap, each host packet waits for the global slot; the
        // host spacing must be measured from the real send, never letting two host packets
        // closer than 1/per_host_pps.
        let limiter = Limiter::new(Limits {
            global_pps: 2,
            per_host_pps: 10,
        });
        let mut permit = limiter.host(host(1)).await;
        let mut last: Option<Instant> = None;
        for _ in 0..10 {
            permit.packet().await;
            let now = Instant::now();
            if let Some(last) = last {
                assert!(now - last >= Duration::from_millis(100));
            }
            last = Some(now);
        }
    }
}
