//! Zero windows and the receive window on the virtual clock, written from Linux's
//! tcp_timer.c / tcp_output.c / tcp_input.c and RFC 9293 / RFC 1122:
//!
//! * zero-window probing (`tcp_probe_timer`, `tcp_send_probe0`, `tcp_ack_probe`): the
//!   persist timer's backoff, window updates resuming the flow, probing that never
//!   gives up on a peer that answers, and keepalive probes not counted as window probes;
//! * the advertised receive window bounding what is in flight (`tcp_snd_wnd_test`).
//!
//! Every time is virtual: a test that covers half an hour of TCP runs in milliseconds.

mod common;

use std::time::Duration;

use usnet::tcp::{SockOpt, TcpExt, TcpState};
use usnet::time::Instant;

use common::lifecycle::{drain, pattern, push, secs, segs_after, Conn, ACK};
use common::RTT;

// ---------------------------------------------------------------------------------
// Zero-window probing.
// ---------------------------------------------------------------------------------

/// A receiver with a small buffer (SO_RCVBUF 4 KiB, inherited from the listener) that
/// does not read. The sender fills the window until b advertises zero, then probes
/// (`tcp_send_probe0` → `tcp_write_wakeup`: an ACK with seq = snd_una − 1, counted
/// TCPWinProbe) with the persist timer backing off exponentially
/// (`tcp_probe0_when`: max(RTO, TCP_RTO_MIN) << icsk_backoff). When the reader reads,
/// `tcp_cleanup_rbuf` sends a window update at once and the sender resumes on it,
/// not on its next probe; every byte arrives intact and nothing was sent beyond the
/// window (no TCPZeroWindowDrop at the receiver).
#[test]
fn zero_window_probes_back_off_and_a_window_update_resumes_the_flow() {
    let k = Conn::with(107, |_, l| {
        l.set_opt(SockOpt::RcvBuf(4096)).unwrap();
    });
    let data = pattern(100_000);
    let mut sent = 0;
    let done = k.h.sim.run_while(
        || {
            push(&k.c, &data, &mut sent);
            !k.c.with_tcb(|t| t.snd_wnd == 0 && t.packets_out == 0)
        },
        Duration::from_secs(5),
    );
    assert!(done, "the window never closed: {:#?}", k.c.info());
    assert!(sent < data.len());
    let t_zero = k.h.sim.now();
    assert!(k.h.b.tcp.mib.get(TcpExt::TCPToZeroWindowAdv) >= 1);
    let probes0 = k.h.a.tcp.mib.get(TcpExt::TCPWinProbe);
    let una = k.c.with_tcb(|t| t.snd_una);
    k.h.sim.run_while(
        || {
            push(&k.c, &data, &mut sent);
            true
        },
        Duration::from_secs(10),
    );
    let probes: Vec<Instant> = segs_after(&k.log, t_zero, true)
        .iter()
        .filter(|s| s.len == 0 && s.flags == ACK && s.seq == una.wrapping_sub(1))
        .map(|s| s.at)
        .collect();
    assert!(
        (4..=6).contains(&probes.len()),
        "{} probes in 10 s of zero window",
        probes.len()
    );
    assert_eq!(
        k.h.a.tcp.mib.get(TcpExt::TCPWinProbe) - probes0,
        probes.len() as u64
    );
    assert!(
        segs_after(&k.log, t_zero, true).iter().all(|s| s.len == 0),
        "no data into a zero window"
    );
    let gaps: Vec<f64> = probes.windows(2).map(|w| secs(w[1], w[0])).collect();
    assert!(gaps[0] >= 0.4, "second probe after 2 × ≥ 200 ms: {gaps:?}");
    for w in gaps.windows(2) {
        let r = w[1] / w[0];
        assert!((1.9..=2.1).contains(&r), "backoff ratio {r:.3} in {gaps:?}");
    }
    assert_eq!(k.c.state(), TcpState::Established);
    assert!(k.c.take_error().is_none());
    // The reader wakes up.
    let mut got = Vec::new();
    drain(&k.s, &mut got);
    let t_read = k.h.sim.now();
    let finished = k.h.sim.run_while(
        || {
            push(&k.c, &data, &mut sent);
            drain(&k.s, &mut got);
            got.len() < data.len()
        },
        Duration::from_secs(30),
    );
    assert!(finished, "{} of {} bytes", got.len(), data.len());
    let first = segs_after(&k.log, t_read, true)
        .into_iter()
        .find(|s| s.len > 0)
        .expect("data after the window update");
    assert!(
        secs(first.at, t_read) <= RTT.as_secs_f64() + 0.001,
        "resumed {:.4} s after the read: on the window update, not a probe",
        secs(first.at, t_read)
    );
    assert!(got == data, "bytes differ");
    assert!(k.h.b.tcp.mib.get(TcpExt::TCPFromZeroWindowAdv) >= 1);
    assert_eq!(k.h.b.tcp.mib.get(TcpExt::TCPZeroWindowDrop), 0);
    assert_eq!(k.h.b.tcp.mib.get(TcpExt::TCPRcvQDrop), 0);
}

/// RFC 1122 § 4.2.2.17: the sender must keep probing a zero window indefinitely while
/// the receiver answers. Linux's `tcp_ack` sets `icsk_probes_out = 0` on every ACK
/// that is not older than snd_una — the receiver's answer to a probe is one — so
/// `tcp_probe_timer`'s `icsk_probes_out >= tcp_retries2` never triggers for a live
/// peer (only TCP_USER_TIMEOUT or an orphaned socket end it). Half an hour of zero
/// window: probes every 120 s (TCP_RTO_MAX), the connection alive, and the data flows
/// when the reader finally reads.
#[test]
fn zero_window_persists_while_the_receiver_answers_probes() {
    let k = Conn::with(108, |_, l| {
        l.set_opt(SockOpt::RcvBuf(4096)).unwrap();
    });
    let data = pattern(50_000);
    let mut sent = 0;
    k.h.sim.run_while(
        || {
            push(&k.c, &data, &mut sent);
            !k.c.with_tcb(|t| t.snd_wnd == 0 && t.packets_out == 0)
        },
        Duration::from_secs(5),
    );
    let t_zero = k.h.sim.now();
    let una = k.c.with_tcb(|t| t.snd_una);
    k.h.sim.run_while(
        || k.c.state() == TcpState::Established,
        Duration::from_secs(1800),
    );
    assert_eq!(
        k.c.state(),
        TcpState::Established,
        "aborted after {:.1} s of zero window: {:?}",
        secs(k.h.sim.now(), t_zero),
        k.c.take_error()
    );
    let probes: Vec<Instant> = segs_after(&k.log, t_zero, true)
        .iter()
        .filter(|s| s.len == 0 && s.flags == ACK && s.seq == una.wrapping_sub(1))
        .map(|s| s.at)
        .collect();
    assert!(probes.len() >= 20, "{} probes in 30 min", probes.len());
    let last_gap = secs(probes[probes.len() - 1], probes[probes.len() - 2]);
    assert!(
        (119.9..=120.1).contains(&last_gap),
        "probe interval capped at TCP_RTO_MAX: {last_gap:.3} s"
    );
    let mut got = Vec::new();
    let finished = k.h.sim.run_while(
        || {
            push(&k.c, &data, &mut sent);
            drain(&k.s, &mut got);
            got.len() < data.len()
        },
        Duration::from_secs(60),
    );
    assert!(finished && got == data);
}

/// Keepalive probes go through `tcp_write_wakeup(sk, LINUX_MIB_TCPKEEPALIVE)`: the
/// probe is counted as TCPKeepAlive only — TCPWinProbe is for zero-window probes
/// (`tcp_send_probe0` passes LINUX_MIB_TCPWINPROBE). With TCP_KEEPIDLE 10 s,
/// TCP_KEEPINTVL 2 s and a live peer answering each probe (which restarts the idle
/// time), 35 idle seconds give probes at 10, 20 and 30 s.
#[test]
fn keepalive_probes_are_not_counted_as_window_probes() {
    let k = Conn::new(139);
    k.c.set_opt(SockOpt::KeepAlive(true)).unwrap();
    k.c.set_opt(SockOpt::KeepIdle(Duration::from_secs(10)))
        .unwrap();
    k.c.set_opt(SockOpt::KeepIntvl(Duration::from_secs(2)))
        .unwrap();
    k.h.sim.run_for(Duration::from_secs(35));
    assert_eq!(k.c.state(), TcpState::Established);
    assert_eq!(k.h.a.tcp.mib.get(TcpExt::TCPKeepAlive), 3);
    assert_eq!(k.h.a.tcp.mib.get(TcpExt::TCPWinProbe), 0);
}

// ---------------------------------------------------------------------------------
// The receive window bounds what is in flight.
// ---------------------------------------------------------------------------------

/// A reader that always reads, behind a receive buffer of 16 KiB (SO_RCVBUF 8 KiB):
/// the advertised window (half the buffer, `tcp_adv_win_scale` = 1) is smaller than
/// what the congestion window allows, so `tcp_write_xmit`'s `tcp_snd_wnd_test` stops
/// the sender at the right edge every round trip and the ACKs moving the edge
/// (window updates) restart it at once. Every segment on the wire ends at or before
/// the right edge last advertised (RFC 9293 § 3.8.6: SND.NXT ≤ SND.UNA + SND.WND), the
/// window never closes (the reader keeps up), and the transfer takes at least
/// size / window round trips.
#[test]
fn receive_window_bounds_bytes_in_flight_and_updates_restart_the_sender() {
    let k = Conn::with(109, |_, l| {
        l.set_opt(SockOpt::RcvBuf(8192)).unwrap();
    });
    let wscale = k.c.info().wscale.0;
    let mss = k.c.info().snd_mss;
    let (una0, wnd0) = k.c.with_tcb(|t| (t.snd_una, t.snd_wnd));
    k.log.clear();
    let data = pattern(256 * 1024);
    let mut sent = 0;
    let mut got = Vec::new();
    let t0 = k.h.sim.now();
    let finished = k.h.sim.run_while(
        || {
            push(&k.c, &data, &mut sent);
            drain(&k.s, &mut got);
            got.len() < data.len()
        },
        Duration::from_secs(30),
    );
    assert!(finished);
    assert!(got == data);
    let elapsed = secs(k.h.sim.now(), t0);
    let segs = k.log.segs.lock().clone();
    let mut right = una0.wrapping_add(wnd0);
    let mut max_wnd = wnd0;
    let mut last_update: Option<Instant> = None;
    let mut stalled = false;
    let (mut stalls, mut resumed_on_update) = (0, 0);
    for s in &segs {
        if !s.outgoing {
            if s.flags & ACK != 0 {
                let wnd = u32::from(s.window) << wscale;
                max_wnd = max_wnd.max(wnd);
                let r = s.ack.wrapping_add(wnd);
                if (r.wrapping_sub(right) as i32) > 0 {
                    right = r;
                    last_update = Some(s.at);
                }
            }
            continue;
        }
        if s.len == 0 {
            continue;
        }
        let end = s.seq.wrapping_add(s.len);
        assert!(
            (right.wrapping_sub(end) as i32) >= 0,
            "segment {}+{} beyond the right edge {right}",
            s.seq,
            s.len
        );
        if stalled && last_update == Some(s.at) {
            resumed_on_update += 1;
        }
        stalled = right.wrapping_sub(end) < mss;
        if stalled {
            stalls += 1;
        }
    }
    assert!(
        max_wnd <= 8192,
        "window {max_wnd} > half of the 16 KiB buffer"
    );
    assert!(stalls >= 20, "{stalls} window-limited stalls");
    assert!(
        resumed_on_update >= 20,
        "{resumed_on_update} restarts right on a window update"
    );
    let rounds = data.len() as f64 / f64::from(max_wnd);
    assert!(
        elapsed >= (rounds - 1.0) * RTT.as_secs_f64(),
        "{elapsed:.3} s for {rounds:.1} windows of one RTT"
    );
    assert_eq!(k.h.b.tcp.mib.get(TcpExt::TCPToZeroWindowAdv), 0);
    assert_eq!(k.h.b.tcp.mib.get(TcpExt::TCPZeroWindowDrop), 0);
    assert_eq!(k.c.info().total_retrans, 0);
}

// ---------------------------------------------------------------------------------
// Opening the receive window (`tcp_grow_window`).
// ---------------------------------------------------------------------------------

/// Run a bulk transfer a → b (the reader always reading) with `loss` each way on a
/// 10 ms RTT path with no rate limit, the sender on BBR so that the receive window,
/// not loss, limits it; b's `rcv_ssthresh` (the window it may advertise) at `at`,
/// checked never to pass its window clamp on the way.
fn rcv_ssthresh_after(seed: u64, loss: f64, at: Duration) -> u32 {
    use usnet::link::{Loss, Netem};
    let k = common::Conn::with_nic(
        seed,
        |c| c.rx_ring = 4096,
        |h| {
            for port in [0, 1] {
                h.wire.set_netem(
                    port,
                    Netem {
                        delay: Duration::from_millis(5),
                        loss: if loss > 0.0 {
                            Loss::Random(loss)
                        } else {
                            Loss::None
                        },
                        limit: 100_000,
                        ..Netem::default()
                    },
                );
            }
        },
    );
    k.c.set_opt(SockOpt::Congestion("bbr".into())).unwrap();
    let chunk = vec![0x5au8; 1 << 16];
    let mut buf = vec![0u8; 1 << 16];
    let t0 = k.h.sim.now();
    k.h.sim.run_while(
        || {
            while k.c.send(&chunk).is_ok() {}
            while matches!(k.s.recv(&mut buf), Ok(n) if n > 0) {}
            let (w, clamp) = k.s.with_tcb(|t| (t.rcv_ssthresh, t.window_clamp));
            assert!(
                w <= clamp,
                "rcv_ssthresh {w} above the window clamp {clamp}"
            );
            k.h.sim.now().saturating_duration_since(t0) < at
        },
        at + Duration::from_secs(1),
    );
    k.s.with_tcb(|t| t.rcv_ssthresh)
}

/// Linux opens `rcv_ssthresh` by at least twice each arriving skb's length — a GRO
/// skb of many segments as much as its segments one by one — so a reader that keeps
/// up lets the window more than double per RTT from its initial 64 KiB. (Opened by two
/// MSS per skb instead, a GRO receiver's window crawled: ~140 KB after 50 ms.)
#[test]
fn the_window_opens_by_twice_what_arrives_in_order() {
    let w = rcv_ssthresh_after(331, 0.0, Duration::from_millis(50));
    assert!(w >= 250_000, "rcv_ssthresh {w} after 5 RTTs");
}

/// With SACK, data queued behind a hole opens the window too (`tcp_data_queue_ofo` →
/// `tcp_grow_window`): under 1% loss nearly every RTT has a hole, and a window that
/// grew only from in-order data stayed near 275 KB after 14 RTTs, capping the sender
/// far below the path.
#[test]
fn data_behind_a_hole_opens_the_window_with_sack() {
    let w = rcv_ssthresh_after(332, 0.01, Duration::from_millis(140));
    assert!(w >= 1_000_000, "rcv_ssthresh {w} after 14 RTTs at 1% loss");
}
