//! CUBIC (RFC 9438, as Linux's tcp_cubic.c) on the virtual clock: after a loss the
//! window follows W(t) = C·(t − K)³ + W_max, concave up to W_max and convex beyond it;
//! and HyStart ends slow start near the path capacity before any loss.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use usnet::link::Netem;
use usnet::tcp::{CaState, TcpExt};
use usnet::testutil::TwoHosts;
use usnet::time::Instant;

mod common;
use common::{roomy_buffers, Conn};

/// RFC 9438's constants: C = 0.4, β = 0.7 (Linux: 717/1024).
const C: f64 = 0.4;
const BETA: f64 = 717.0 / 1024.0;

fn one_way(h: &TwoHosts, d: Duration, rate_bps: u64) {
    for port in [0, 1] {
        h.wire.set_netem(
            port,
            Netem {
                delay: d,
                rate_bps,
                limit: 100_000,
                ..Netem::default()
            },
        );
    }
    // Buffers that never limit: cwnd does.
    roomy_buffers(h);
}

/// Keep the sender busy and the receiver reading for `d`; `each` sees every step.
fn run_bulk(k: &Conn, d: Duration, mut each: impl FnMut() -> bool) {
    let chunk = vec![0x5au8; 1 << 16];
    let mut buf = vec![0u8; 1 << 16];
    k.h.sim.run_while(
        || {
            while k.c.send(&chunk).is_ok() {}
            while let Ok(n) = k.s.recv(&mut buf) {
                if n == 0 {
                    break;
                }
            }
            each()
        },
        d,
    );
}

/// A switch that, when set, loses the next data segment toward b (and resets).
fn drop_next_data_segment(k: &Conn) -> Arc<AtomicBool> {
    let drop_next = Arc::new(AtomicBool::new(false));
    let d2 = drop_next.clone();
    k.h.wire.set_drop_filter(
        1,
        Some(Arc::new(move |f| {
            matches!(usnet::testutil::tcp_segment(f), Some((_, len, _)) if len > 0)
                && d2.swap(false, Ordering::Relaxed)
        })),
    );
    drop_next
}

/// After one loss at W_max ≈ 120 packets on a 100 ms path, cwnd tracks the cubic
/// curve for two K (RFC 9438 § 4.2): below W_max it rises fast then flattens (concave),
/// passes W_max at t ≈ K, then accelerates (convex) — not the straight line Reno
/// would draw.
#[test]
fn cubic_window_follows_the_rfc_9438_curve_after_a_loss() {
    let rtt = Duration::from_millis(100);
    // No line rate: a window's worth of frames lands at once, so the receiving NIC
    // needs a ring that holds it (or slow start would overflow it, not the path).
    let k = Conn::with_nic(51, |c| c.rx_ring = 4096, |h| one_way(h, rtt / 2, 0));
    let drop_next = drop_next_data_segment(&k);
    // Slow start up to about 120 packets, then lose one segment.
    let mut armed = false;
    let mut exit_at: Option<Instant> = None;
    let mut samples: Vec<(f64, u32)> = Vec::new();
    let mut w_max = 0u32;
    run_bulk(&k, Duration::from_secs(30), || {
        let i = k.c.info();
        let now = k.h.sim.now();
        if !armed && i.snd_cwnd >= 120 {
            w_max = i.snd_cwnd;
            drop_next.store(true, Ordering::Relaxed);
            armed = true;
        }
        if armed && exit_at.is_none() && i.ca_state == CaState::Open && i.total_retrans > 0 {
            exit_at = Some(now);
        }
        if let Some(t0) = exit_at {
            let t = now.saturating_duration_since(t0).as_secs_f64();
            samples.push((t, i.snd_cwnd));
            return t < 10.0;
        }
        true
    });
    assert_eq!(k.c.info().total_retrans, 1, "one loss, one retransmission");
    assert_eq!(k.h.a.tcp.mib.get(TcpExt::TCPTimeouts), 0);
    // W_max is cwnd when the loss was detected (slow start went on for the RTT it
    // took); recovery cut it to β·W_max.
    let info = k.c.with_tcb(|t| t.cc.info());
    let wmax: f64 = info
        .iter()
        .find(|(n, _)| *n == "wmax")
        .unwrap()
        .1
        .parse()
        .unwrap();
    assert!(
        wmax >= f64::from(w_max),
        "W_max {wmax}, cwnd at the drop {w_max}"
    );
    let k_s = (wmax * (1.0 - BETA) / C).cbrt();
    let w = |t: f64| C * (t - k_s).powi(3) + wmax;
    let first = samples[0].1;
    // Sampled at the first simulator step after recovery: the ACKs of that instant
    // have already grown cwnd along the curve (a few packets at W_max ≈ 300).
    assert!(
        (f64::from(first) - BETA * wmax).abs() <= 2.0_f64.max(0.02 * wmax),
        "cwnd after recovery {first} = β·W_max"
    );
    let r = rtt.as_secs_f64();
    let mut checked = 0;
    for &(t, cwnd) in samples
        .iter()
        .filter(|s| s.0 >= 2.0 * r && s.0 <= 2.0 * k_s)
    {
        // Linux evaluates the curve one min RTT ahead and spreads each step over an
        // RTT of ACKs: cwnd lies between the curve an RTT behind and two ahead.
        let lo = w(t - r) - 2.0;
        let hi = w(t + 2.0 * r) + 2.0;
        let c = f64::from(cwnd);
        assert!(
            (lo..=hi).contains(&c),
            "t = {t:.2} s: cwnd {cwnd}, the curve says {:.1} (K = {k_s:.2} s)",
            w(t)
        );
        checked += 1;
    }
    assert!(checked > 50, "{checked} samples checked");
}

/// HyStart (as Linux's CUBIC runs it): behind a 50 Mbit/s bottleneck with a deep queue
/// on a 40 ms path, the bottleneck spaces the ACKs until a round's ACK train outlasts
/// half the minimum RTT (or the queue pushes the RTT past min_rtt + max(4 ms,
/// min_rtt/8)), and slow start ends there — ssthresh = cwnd, no loss, no
/// retransmission — between one and two times the path's capacity, where plain slow
/// start would overshoot until the queue overflowed.
#[test]
fn hystart_leaves_slow_start_near_the_path_capacity_before_any_loss() {
    let rtt = Duration::from_millis(40);
    let rate = 50_000_000u64;
    let k = Conn::new(52, |h| one_way(h, rtt / 2, rate));
    let mss = f64::from(k.c.info().snd_mss);
    let bdp = rate as f64 / 8.0 * rtt.as_secs_f64() / mss;
    let mut exit: Option<(u32, u32, u32)> = None;
    run_bulk(&k, Duration::from_secs(5), || {
        let i = k.c.info();
        if exit.is_none() && i.snd_ssthresh < u32::MAX / 2 {
            exit = Some((i.snd_cwnd, i.snd_ssthresh, i.total_retrans));
        }
        exit.is_none()
    });
    let (cwnd, ssthresh, retrans) = exit.expect("slow start ended");
    let m = |x| k.h.a.tcp.mib.get(x);
    // The bottleneck spaces the ACKs: a round's ACK train outlasts min_rtt/2 (Linux's
    // hystart_detect: ACK train first, delay as the backstop).
    let (train, delay) = (
        m(TcpExt::TCPHystartTrainDetect),
        m(TcpExt::TCPHystartDelayDetect),
    );
    assert_eq!(
        train + delay,
        1,
        "ended by HyStart: train {train}, delay {delay}"
    );
    assert_eq!(retrans, 0, "before any loss");
    assert_eq!(ssthresh, cwnd, "ssthresh = cwnd");
    assert!(
        f64::from(cwnd) > bdp && f64::from(cwnd) < 2.0 * bdp,
        "left slow start at cwnd {cwnd}, BDP {bdp:.0} packets"
    );
    assert_eq!(
        m(TcpExt::TCPHystartTrainCwnd) + m(TcpExt::TCPHystartDelayCwnd),
        u64::from(cwnd)
    );
}

/// One value of the sender's congestion-control diagnostics.
fn cc_info(k: &Conn, key: &str) -> u64 {
    k.c.with_tcb(|t| t.cc.info())
        .into_iter()
        .find(|(n, _)| *n == key)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in the cc info"))
}

/// `CA_EVENT_TX_START`: when the application pauses (nothing in flight) and writes
/// again, the sender tells the congestion control before the first segment goes;
/// CUBIC moves its epoch forward by the idle time, so the window resumes its curve
/// instead of jumping ahead by where the curve would be after the pause.
#[test]
fn cubic_shifts_its_epoch_by_the_idle_time_when_sending_resumes() {
    let k = Conn::new(52, |h| one_way(h, Duration::from_millis(10), 0));
    let drop_next = drop_next_data_segment(&k);
    // Into congestion avoidance by one loss, then a while on the curve.
    let mut armed = false;
    run_bulk(&k, Duration::from_secs(2), || {
        if !armed && k.c.info().snd_cwnd >= 40 {
            drop_next.store(true, Ordering::Relaxed);
            armed = true;
        }
        true
    });
    assert!(armed && k.c.info().total_retrans >= 1);
    let epoch = cc_info(&k, "epoch_start_ms");
    assert_ne!(epoch, 0, "CUBIC is in an epoch");
    // Pause: the send queue drains, everything is ACKed, then 100 ms pass (less
    // than the RTO, so no cwnd restart).
    k.run_until_acked(Duration::from_secs(10));
    k.run_reading(Duration::from_millis(100));
    assert_eq!(k.c.info().unacked, 0, "nothing in flight");
    let idle = k.c.info().last_data_sent_ms;
    assert!(idle >= 100, "idle {idle} ms");
    assert_eq!(
        cc_info(&k, "epoch_start_ms"),
        epoch,
        "no epoch moves while idle"
    );
    let before = cc_info(&k, "epoch_start_ms");
    k.c.send(&[7u8; 1000]).unwrap();
    let after = cc_info(&k, "epoch_start_ms");
    assert_eq!(
        after - before,
        idle,
        "the epoch moved {} ms after {idle} ms idle",
        after - before
    );
}
