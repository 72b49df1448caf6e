//! The one gate every probe packet passes: a global packets-per-second cap, a per-host cap, and
//! one probe at a time per host.
//!
//! OT devices fall over under load that an IT host would not notice (small TCP stacks, a PLC
//! scan cycle sharing the CPU with the network), so there is no burst allowance: packets are
//! spaced by `1 / pps` (GCRA with a half-interval tolerance for timer lateness), no one-second
//! window ever holds more than `pps` packets, and a stall is never made up for with a burst.
//! A probe first takes the host's [`HostPermit`] (held for
//! as long as it talks to that host, which serialises probes per host), then calls
//! [`HostPermit::packet`] before every connect and every request write. A TCP connect counts as
//! one packet; the kernel's own ACKs and FINs are not paced, nor is the one SYN retransmission
//! the kernel makes (after 1 s) towards a silent host within the default 2 s connect timeout.
//!
//! Time comes from `tokio::time`, so the unit tests run it on a paused, virtual clock.

use std::collections::{HashMap, VecDeque};
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

/// Pacing: generic cell rate algorithm (GCRA) plus a sliding one-second window.
///
/// GCRA: a packet may go once `now >= tat - tolerance`, after which the theoretical arrival
/// time `tat` moves one interval past `max(tat, now)`. The tolerance absorbs timer lateness
/// (tokio wakes up to a millisecond late, more on a busy host) so the long-run rate stays at
/// the cap, and a stall is never caught up with a burst, because `tat` restarts from `now`.
///
/// Window: the tolerance alone would let a 1 s window hold `pps + 1` packets, so the grant
/// times of the last `pps` packets are kept and the next packet also waits until the oldest is
/// a full second old. Together: never more than `pps` packets in any one-second window.
#[derive(Debug)]
struct Gcra {
    interval: Duration,
    tolerance: Duration,
    tat: Option<Instant>,
    /// Grant times of the last `per_second` packets, oldest first.
    recent: VecDeque<Instant>,
    per_second: usize,
}

impl Gcra {
    fn new(pps: u32, tolerance_fraction: u32) -> Self {
        let pps = pps.max(1);
        let interval = Duration::from_secs(1) / pps;
        Self {
            interval,
            tolerance: interval / tolerance_fraction.max(1),
            tat: None,
            recent: VecDeque::new(),
            per_second: usize::try_from(pps).unwrap_or(usize::MAX),
        }
    }

    /// Strict pacing: no tolerance.
    fn strict(pps: u32) -> Self {
        Self {
            tolerance: Duration::ZERO,
            ..Self::new(pps, 1)
        }
    }

    /// The earliest instant the next packet may go (`None`: at once).
    fn earliest(&self) -> Option<Instant> {
        let paced = self
            .tat
            .map(|tat| tat.checked_sub(self.tolerance).unwrap_or(tat));
        let windowed = (self.recent.len() >= self.per_second)
            .then(|| {
                self.recent
                    .front()
                    .map(|oldest| *oldest + Duration::from_secs(1))
            })
            .flatten();
        paced.max(windowed)
    }

    /// Records a packet sent at `now`.
    fn grant(&mut self, now: Instant) {
        self.tat = Some(self.tat.map_or(now, |tat| tat.max(now)) + self.interval);
        self.recent.push_back(now);
        while self.recent.len() > self.per_second {
            self.recent.pop_front();
        }
    }
}

/// Global tolerance: half an interval (5 ms at 100 pps), above timer lateness on a busy host.
const GLOBAL_TOLERANCE_FRACTION: u32 = 2;

/// The shared limiter; clone the `Arc` into every task.
#[derive(Debug)]
pub struct Limiter {
    /// FIFO: the holder sleeps until its slot while the others queue behind it.
    global: AsyncMutex<Gcra>,
    hosts: Mutex<HashMap<IpAddr, Arc<AsyncMutex<Gcra>>>>,
    per_host_pps: u32,
    sent: AtomicU64,
}

impl Limiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            global: AsyncMutex::new(Gcra::new(limits.global_pps, GLOBAL_TOLERANCE_FRACTION)),
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
            // Per-host pacing is strict (no tolerance): a host never sees two packets closer
            // than 1 / per_host_pps.
            Arc::clone(
                hosts
                    .entry(host)
                    .or_insert_with(|| Arc::new(AsyncMutex::new(Gcra::strict(self.per_host_pps)))),
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

    async fn global_slot(&self) {
        let mut gcra = self.global.lock().await;
        if let Some(at) = gcra.earliest() {
            sleep_until(at).await;
        }
        gcra.grant(Instant::now());
    }
}

/// Exclusive right to probe one host; dropping it lets the next probe of that host run.
#[derive(Debug)]
pub struct HostPermit {
    pacer: OwnedMutexGuard<Gcra>,
    limiter: Arc<Limiter>,
}

impl HostPermit {
    /// Waits for a send slot under both caps. Call right before each connect or write.
    pub async fn packet(&mut self) {
        if let Some(at) = self.pacer.earliest() {
            sleep_until(at).await;
        }
        self.limiter.global_slot().await;
        // The global wait may have pushed this send past the host slot: space the next host
        // packet from the real send time, not from the slot.
        self.pacer.grant(Instant::now());
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

    /// Largest number of `times` inside any window of `window` length.
    fn busiest(times: &[Instant], window: Duration) -> usize {
        let mut best = 0;
        let mut j = 0;
        for i in 0..times.len() {
            while times[i] - times[j] >= window {
                j += 1;
            }
            best = best.max(i - j + 1);
        }
        best
    }

    #[tokio::test(start_paused = true)]
    async fn late_wakeups_and_stalls_never_burst_past_the_cap() {
        // Drive the pacer by hand with a jittery clock: wake-ups 0-3 ms late, and every 200th
        // one stalled by 300 ms (a busy host). No 1 s window may exceed the cap, and the jitter
        // alone must not cost 10 % of the rate.
        let mut gcra = Gcra::new(100, GLOBAL_TOLERANCE_FRACTION);
        let mut rng = crate::discovery::wire::fuzz::XorShift(7);
        let mut now = Instant::now();
        let mut times = Vec::new();
        for n in 0..3000u32 {
            if let Some(at) = gcra.earliest() {
                now = now.max(at);
            }
            now += Duration::from_micros(rng.next() % 3000);
            if n % 200 == 199 {
                now += Duration::from_millis(300);
            }
            gcra.grant(now);
            times.push(now);
        }
        let burst = busiest(&times, Duration::from_secs(1));
        assert!(burst <= 100, "{burst} packets in one second at 100 pps");
        let span = (*times.last().unwrap() - times[0]).as_secs_f64();
        let stalls = 15.0 * 0.3;
        let rate = 2999.0 / (span - stalls);
        assert!(rate >= 95.0, "rate outside stalls {rate:.1} pps");
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
