//! TCP over the fq qdisc: as in Linux, fq claims the socket's pacing
//! (`sk_pacing_status = SK_PACING_FQ`), TCP stops pacing with its own timer and only
//! stamps each skb with its departure time, and fq holds every skb until then.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use usnet::dev::sched::fq::{Fq, FqConfig};
use usnet::dev::sched::{Dequeue, Qdisc};
use usnet::dev::NetDevice;
use usnet::skb::Skb;
use usnet::sock::PacingStatus;
use usnet::tcp::SockOpt;
use usnet::time::Instant;

mod common;
use common::{bulk_with, burstiest, Conn};

const RATE: u64 = 1_250_000; // 10 Mbit/s in bytes per second.
const BYTES: usize = 1_000_000;

fn since(a: Instant, b: Instant) -> Duration {
    a.saturating_duration_since(b)
}

/// Send `BYTES` at `SO_MAX_PACING_RATE` = `RATE`; returns how long it took.
fn paced_transfer(k: &Conn) -> f64 {
    k.c.set_opt(SockOpt::MaxPacingRate(RATE)).unwrap();
    let t0 = k.h.sim.now();
    bulk_with(k, BYTES, Duration::from_secs(10), || {});
    since(k.h.sim.now(), t0).as_secs_f64()
}

/// fq, counting the skbs that arrive stamped with a departure time in the future.
struct StampWatch {
    fq: Fq,
    future: Arc<AtomicU64>,
}

impl Qdisc for StampWatch {
    fn kind(&self) -> &'static str {
        self.fq.kind()
    }
    fn enqueue(&mut self, skb: Skb, dev: &NetDevice, now: Instant) -> Result<(), Skb> {
        if skb.tstamp > now {
            self.future.fetch_add(1, Ordering::Relaxed);
        }
        self.fq.enqueue(skb, dev, now)
    }
    fn dequeue(&mut self, now: Instant) -> Dequeue {
        self.fq.dequeue(now)
    }
    fn qlen(&self) -> usize {
        self.fq.qlen()
    }
    fn backlog(&self) -> usize {
        self.fq.backlog()
    }
    fn reset(&mut self) -> usize {
        self.fq.reset()
    }
    fn describe(&self) -> String {
        self.fq.describe()
    }
    fn xstats(&self) -> Option<String> {
        self.fq.xstats()
    }
}

/// The counter after `name` on the `gc ...` line of `tc -s qdisc`'s fq lines.
fn xstat(x: &str, name: &str) -> u64 {
    let line = x
        .lines()
        .find(|l| l.trim_start().starts_with("gc "))
        .unwrap_or("");
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == name {
            return words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        }
    }
    panic!("no {name} in {x}")
}

#[test]
fn tcp_over_fq_is_paced_by_departure_times_without_the_pacing_timer() {
    let future = Arc::new(AtomicU64::new(0));
    let k = Conn::new(61, |h| {
        for txq in h.da.txqs.iter() {
            txq.qdisc.replace(Box::new(StampWatch {
                fq: Fq::new(FqConfig::for_device(&h.da)).unwrap(),
                future: future.clone(),
            }));
        }
    });
    assert_eq!(
        k.c.wmem.pacing.status(),
        PacingStatus::Fq,
        "the handshake through fq claimed the socket"
    );
    let took = paced_transfer(&k);
    let want = BYTES as f64 / RATE as f64;
    assert!(
        took > want * 0.9 && took < want * 1.3,
        "{BYTES} bytes in {took:.3} s at {RATE} B/s (expected about {want:.3} s)"
    );
    assert!(
        !k.c.timers.pace_used(),
        "TCP left pacing to fq: its pacing timer was never needed"
    );
    assert_eq!(k.c.wmem.pacing.status(), PacingStatus::Fq);
    // TCP stamped departure times ahead of the clock (EDT) ...
    let stamped = future.load(Ordering::Relaxed);
    assert!(stamped > 100, "{stamped} skbs stamped for the future");
    // ... and fq held the stamped skbs back: flows were throttled until their departure times.
    let x = k.h.da.txqs[0].qdisc.xstats().unwrap();
    assert!(xstat(&x, "throttled") > 100, "{x}");
    // And the data left spread out at the rate, not in cwnd-sized bursts.
    let worst = burstiest(&k.log, 20, Duration::from_millis(10));
    assert!(worst < 25_000, "{worst} bytes within 10 ms");
}

/// The same transfer over pfifo_fast: TCP paces itself with its timer (what the fq test
/// above shows does not happen).
#[test]
fn without_fq_tcp_paces_with_its_own_timer() {
    let k = Conn::new(61, |_| {});
    let took = paced_transfer(&k);
    assert!(took > 0.9 * BYTES as f64 / RATE as f64, "{took:.3} s");
    assert_eq!(k.c.wmem.pacing.status(), PacingStatus::Needed);
    assert!(k.c.timers.pace_used());
}
