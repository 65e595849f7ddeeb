//! TSO and TCP small queues on the send path, on the virtual clock: skbs of size_goal
//! (many MSS each) cut at the peer's window edge on MSS boundaries
//! (`tcp_mss_split_point`, `tso_fragment`), and TSQ bounding the bytes a bulk flow keeps
//! in the qdisc and driver, with TX completions (not ACKs) releasing it so the link
//! never idles.

use std::time::Duration;

use usnet::tcp::SockOpt;

mod common;
use common::Conn;

/// The receiver's buffer is small (SO_RCVBUF 24 KiB: a window that is not a multiple
/// of the MSS), so the window edge falls inside size_goal skbs. Every skb TCP hands
/// down is at most size_goal and ends at or before the window edge the latest ACK
/// offered; many are cut short just below the edge (to whole MSS while data is in
/// flight, as Nagle asks, or to the edge itself when nothing is).
#[test]
fn tso_skbs_of_size_goal_are_cut_at_the_window_edge() {
    let k = Conn::new(61, |_| {});
    k.s.set_opt(SockOpt::RcvBuf(24 * 1024)).unwrap();
    let mss = k.c.info().snd_mss;
    // Let a window update with the small buffer reach the sender.
    k.c.send(&[0u8; 1]).unwrap();
    assert_eq!(k.run_reading(Duration::from_millis(50)), 1);
    // tcp_xmit_size_goal: the GSO limit, bounded by half the largest window seen
    // (tcp_bound_to_half_wnd), in whole MSS.
    let size_goal =
        k.c.with_tcb(|t| ((65536 - 256).min(t.max_window / 2) / mss).max(1) * mss);
    assert!(size_goal >= 4 * mss, "size_goal {size_goal}");
    let total = 600_000usize;
    let mut edge = Some(k.c.with_tcb(|t| t.snd_una.wrapping_add(t.snd_wnd)));
    k.log.clear();
    common::bulk_with(&k, total, Duration::from_secs(20), || {});
    let (isn, wscale) = k.c.with_tcb(|t| (t.iss, t.snd_wscale));
    let end_of_stream = isn.wrapping_add(2 + total as u32);
    // Walk the log in order, tracking the window edge from the last ACK received.
    let mut cut_at_edge = 0;
    let mut multi = 0;
    for s in k.log.all() {
        if !s.outgoing {
            if s.flags & 0x10 != 0 {
                edge = Some(s.ack.wrapping_add(u32::from(s.window) << wscale));
            }
            continue;
        }
        if s.len == 0 {
            continue;
        }
        let end = s.seq.wrapping_add(s.len);
        let e = edge.expect("an ACK before data");
        assert!(
            s.len <= size_goal,
            "skb of {} > size_goal {size_goal}",
            s.len
        );
        assert!(
            (e.wrapping_sub(end) as i32) >= 0,
            "skb ends {} bytes beyond the window",
            end.wrapping_sub(e)
        );
        if s.len > mss {
            multi += 1;
        }
        if s.len < size_goal && e.wrapping_sub(end) < mss && end != end_of_stream {
            cut_at_edge += 1;
        }
    }
    assert!(multi > 10, "{multi} multi-segment (TSO) skbs");
    assert!(
        cut_at_edge > 10,
        "{cut_at_edge} skbs cut at the window edge"
    );
}

/// Run a 16 MB transfer over a 100 Mbit/s NIC; returns (most bytes the socket had in
/// the qdisc and driver, times it was throttled, transfer time).
fn tsq_run(seed: u64, limit_output_bytes: i64) -> (usize, u32, Duration) {
    let k = Conn::with_nic(
        seed,
        |c| c.line_rate_bps = 100_000_000,
        |h| {
            h.a.sysctl
                .set("net.ipv4.tcp_limit_output_bytes", limit_output_bytes)
                .unwrap();
            h.b.sysctl
                .set("net.ipv4.tcp_rmem_default", 8 << 20)
                .unwrap();
        },
    );
    let total = 16_000_000usize;
    let (mut max_below, mut throttled, mut was) = (0usize, 0u32, false);
    let t0 = k.h.sim.now();
    common::bulk_with(&k, total, Duration::from_secs(30), || {
        let below = k.c.wmem.alloc.load(std::sync::atomic::Ordering::Relaxed);
        max_below = max_below.max(below);
        let now = k.c.with_tcb(|t| t.tsq_throttled);
        if now && !was {
            throttled += 1;
        }
        was = now;
    });
    (
        max_below,
        throttled,
        k.h.sim.now().saturating_duration_since(t0),
    )
}

/// TSQ (`tcp_small_queue_check`): a bulk flow on a slow NIC keeps at most about two
/// TSO skbs (or 1 ms at its pacing rate) in the qdisc and driver, and at most
/// `tcp_limit_output_bytes`; it is throttled, and each TX completion
/// releases it (`tcp_wfree` → the TSQ handler), so the link stays busy: the transfer
/// runs at line rate even with 16 KiB allowed below TCP — 1.3 ms of data, far less
/// than the 10 ms RTT, so ACKs alone could not keep the link fed.
#[test]
fn tsq_bounds_the_bytes_below_tcp_and_tx_completion_releases_it() {
    let line = |d: Duration| 16_000_000.0 * 8.0 / d.as_secs_f64() / 100e6;
    let (below, throttled, took) = tsq_run(62, 1 << 20);
    assert!(below <= 3 * 65536, "{below} bytes below TCP (two TSO skbs)");
    assert!(throttled > 0, "throttled {throttled} times");
    assert!(line(took) > 0.9, "{:.0}% of line rate", line(took) * 100.0);

    let (below, throttled, took) = tsq_run(63, 16 * 1024);
    // The check comes before an skb is queued: one skb may go over the limit.
    assert!(below <= 16 * 1024 + 65536 + 4096, "{below} bytes below TCP");
    assert!(throttled > 0, "throttled {throttled} times");
    assert!(line(took) > 0.9, "{:.0}% of line rate", line(took) * 100.0);
}
