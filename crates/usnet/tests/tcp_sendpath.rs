//! The send path's decisions, one scenario each, on the virtual clock: Nagle, TCP_NODELAY,
//! TCP_CORK, MSG_MORE, autocorking, slow start and congestion avoidance growth, fast
//! retransmit with NewReno (one and several losses), and one segment's journey through
//! the seed functions. Expected behaviour is Linux's (tcp_output.c, tcp_input.c,
//! tcp_cong.c); each test says which decision it pins down.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use usnet::tcp::TcpExt;
use usnet::tcp::{msg, SockOpt, TcpSock};
use usnet::time::Instant;
use usnet::trace::Stage;

mod common;
use common::{burstiest, Conn, RTT};

fn lens(v: &[usnet::testutil::SegRecord]) -> Vec<u32> {
    v.iter().map(|s| s.len).collect()
}

fn since(a: Instant, b: Instant) -> Duration {
    a.saturating_duration_since(b)
}

/// `ethtool -K eth0 gro off` on host b: one ACK per received segment, the ACK clock
/// these sender-side figures are stated for (with GRO the receiver ACKs a merged skb
/// once, and the same sender sees fewer, larger ACKs).
fn gro_off(h: &usnet::testutil::TwoHosts) {
    h.db.set_features(h.db.features() - usnet::dev::Features::GRO);
}

#[test]
fn nagle_holds_a_small_segment_until_the_ack() {
    let k = Conn::new(1, |_| {});
    let t0 = k.h.sim.now();
    for b in [1u8, 2, 3] {
        assert_eq!(k.c.send(&[b; 100]).unwrap(), 100);
    }
    assert_eq!(k.run_reading(Duration::from_millis(100)), 300);
    let data = k.log.data_out();
    // The first small segment goes at once; the next two writes wait for its ACK
    // (tcp_nagle_check: a partial segment while data is unacknowledged) and leave
    // together as one segment.
    assert_eq!(lens(&data), vec![100, 200]);
    assert_eq!(data[0].at, t0);
    let wait = since(data[1].at, data[0].at);
    assert!(
        wait >= RTT && wait < RTT + Duration::from_millis(2),
        "held {wait:?}"
    );
}

#[test]
fn nodelay_sends_each_write_at_once() {
    let k = Conn::new(2, |_| {});
    k.c.set_opt(SockOpt::NoDelay(true)).unwrap();
    let t0 = k.h.sim.now();
    for b in [1u8, 2, 3] {
        k.c.send(&[b; 100]).unwrap();
        // Let TX completion run, so autocorking has nothing to wait for.
        k.h.sim.run_for(Duration::from_micros(500));
    }
    assert_eq!(k.run_reading(Duration::from_millis(100)), 300);
    let data = k.log.data_out();
    assert_eq!(lens(&data), vec![100, 100, 100]);
    assert!(
        data.iter().all(|s| since(s.at, t0) < RTT),
        "none waited for an ACK"
    );
}

#[test]
fn autocorking_coalesces_writes_while_the_first_is_in_the_driver() {
    for autocork in [1, 0] {
        let k = Conn::new(3, |h| {
            h.a.sysctl
                .set("net.ipv4.tcp_autocorking", autocork)
                .unwrap();
        });
        k.c.set_opt(SockOpt::NoDelay(true)).unwrap();
        // Back-to-back writes from the application: the first skb is still in the
        // qdisc/driver (its TX completion has not run) when the others arrive.
        for b in [1u8, 2, 3, 4] {
            k.c.send(&[b; 100]).unwrap();
        }
        assert_eq!(k.run_reading(Duration::from_millis(100)), 400);
        let data = k.log.data_out();
        let corked = k.h.a.tcp.mib.get(TcpExt::TCPAutoCorking);
        if autocork == 1 {
            // tcp_should_autocork holds a tail no larger than what is in flight
            // (sk_wmem_alloc > skb->truesize, with the socket's own reference): write
            // 2 waits; write 3 makes the tail bigger than the 100 bytes in flight, so
            // 2+3 leave together; write 4 waits behind them and TX completion (TSQ)
            // pushes it. All long before the first ACK.
            assert_eq!(lens(&data), vec![100, 200, 100]);
            assert!(data.iter().all(|s| since(s.at, data[0].at) < RTT));
            // Counted when the socket becomes throttled (TSQ_THROTTLED was clear).
            assert_eq!(corked, 1);
        } else {
            assert_eq!(lens(&data), vec![100, 100, 100, 100]);
            assert_eq!(corked, 0);
        }
    }
}

#[test]
fn cork_holds_partial_segments_but_not_full_ones() {
    let k = Conn::new(4, |_| {});
    k.c.set_opt(SockOpt::Cork(true)).unwrap();
    k.c.send(&[1; 100]).unwrap();
    k.c.send(&[2; 100]).unwrap();
    k.h.sim.run_for(Duration::from_millis(100));
    assert!(k.log.data_out().is_empty(), "corked: nothing sent");
    // Enough for two full segments: those go, the partial remainder stays.
    k.c.send(&[3; 3000]).unwrap();
    k.h.sim.run_for(Duration::from_millis(1));
    let mss = k.c.info().snd_mss;
    let sent: u32 = k.log.data_out().iter().map(|s| s.len).sum();
    assert_eq!(sent, 2 * mss, "only full-sized segments while corked");
    // Uncork: the remainder goes at once (Minshall: no small segment is unacked).
    k.c.set_opt(SockOpt::Cork(false)).unwrap();
    k.h.sim.run_for(Duration::from_millis(1));
    let sent: u32 = k.log.data_out().iter().map(|s| s.len).sum();
    assert_eq!(sent, 3200);
    assert_eq!(k.run_reading(Duration::from_millis(50)), 3200);
}

#[test]
fn corked_data_leaves_after_the_probe_timer() {
    // tcp(7): "a 200 millisecond ceiling on the time for which output is corked": with
    // nothing in flight, __tcp_push_pending_frames arms the probe timer, and its
    // tcp_write_wakeup sends the corked head.
    let k = Conn::new(5, |_| {});
    k.c.set_opt(SockOpt::Cork(true)).unwrap();
    let t0 = k.h.sim.now();
    k.c.send(&[1; 100]).unwrap();
    k.h.sim.run_for(Duration::from_millis(150));
    assert!(k.log.data_out().is_empty());
    k.h.sim.run_for(Duration::from_millis(1500));
    let data = k.log.data_out();
    assert_eq!(lens(&data), vec![100]);
    assert!(since(data[0].at, t0) >= Duration::from_millis(200));
}

#[test]
fn msg_more_corks_until_a_write_without_it() {
    let k = Conn::new(6, |_| {});
    k.c.send_flags(&[&[1; 100]], msg::MORE).unwrap();
    k.h.sim.run_for(Duration::from_millis(100));
    assert!(
        k.log.data_out().is_empty(),
        "MSG_MORE holds the partial segment"
    );
    k.c.send(&[2; 100]).unwrap();
    assert_eq!(k.run_reading(Duration::from_millis(50)), 200);
    assert_eq!(lens(&k.log.data_out()), vec![200]);
}

/// cwnd sampled in the middle of each of `rounds` RTTs, with a bulk sender.
fn cwnd_per_rtt(k: &Conn, rounds: usize, bytes: usize) -> Vec<u32> {
    let data = vec![7u8; bytes];
    let mut sent = 0;
    let mut out = Vec::new();
    let start = k.h.sim.now();
    let mut next = start + RTT / 2;
    k.h.sim.run_while(
        || {
            while sent < data.len() {
                match k.c.send(&data[sent..]) {
                    Ok(n) => sent += n,
                    Err(_) => break,
                }
            }
            k.drain();
            if k.h.sim.now() >= next {
                out.push(k.c.info().snd_cwnd);
                next += RTT;
            }
            out.len() < rounds
        },
        RTT * (rounds as u32 + 2),
    );
    out
}

#[test]
fn slow_start_doubles_cwnd_every_rtt() {
    let k = Conn::new(7, |h| {
        // A receive buffer large enough that the window never limits.
        h.b.sysctl.set("net.ipv4.tcp_rmem_default", 4 << 20).ok();
        gro_off(h);
    });
    k.c.set_opt(SockOpt::Congestion("reno".into())).unwrap();
    k.s.set_opt(SockOpt::RcvBuf(8 << 20)).unwrap();
    let w = cwnd_per_rtt(&k, 4, 4 << 20);
    // IW10, then +1 per acknowledged segment (tcp_slow_start): x2 per RTT. While the
    // receiver's window grows it ACKs every segment (`tcp_grow_window` asks for a quick
    // ACK); once it stops growing it ACKs every second one, and a round's odd last
    // segment then waits for the delayed ACK: that round shows one short of double.
    assert_eq!(w[0], 10, "IW10: {w:?}");
    for r in w.windows(2) {
        assert!(
            r[1] <= 2 * r[0] && r[1] + 1 >= 2 * r[0],
            "cwnd per RTT doubles: {w:?}"
        );
    }
}

/// Drop the data segments of a→b whose sequence numbers (relative to the first data
/// byte) are listed, once each.
fn drop_once(k: &Conn, rel: &[u32]) -> Arc<AtomicU32> {
    let once: Vec<(u32, u32)> = rel.iter().map(|&r| (r, 1)).collect();
    common::drop_times(k, &once)
}

trait IsnExt {
    fn info_isn(&self) -> u32;
}

impl IsnExt for Arc<TcpSock> {
    /// The initial send sequence number.
    fn info_isn(&self) -> u32 {
        self.with_tcb(|t| t.iss)
    }
}

/// Send `bytes` and read them all; returns when done.
fn bulk(k: &Conn, bytes: usize, limit: Duration) {
    common::bulk_with(k, bytes, limit, || {});
}

#[test]
fn fast_retransmit_and_newreno_recover_one_loss_without_a_timeout() {
    let k = Conn::new(8, |h| {
        h.a.sysctl.set("net.ipv4.tcp_sack", 0).unwrap();
        h.b.sysctl.set("net.ipv4.tcp_sack", 0).unwrap();
        // Without SACK, duplicate ACKs are the only loss signal, and the receiver sends
        // one per skb: with GRO a whole run after the hole would be one dupack.
        gro_off(h);
    });
    let c = k;
    c.c.set_opt(SockOpt::Congestion("reno".into())).unwrap();
    let mss = c.c.info().snd_mss;
    let dropped = drop_once(&c, &[15 * mss]);
    bulk(&c, 200_000, Duration::from_secs(5));
    assert_eq!(dropped.load(Ordering::Relaxed), 1);
    let m = |x| c.h.a.tcp.mib.get(x);
    assert_eq!(m(TcpExt::TCPRenoRecovery), 1, "one recovery episode");
    assert_eq!(m(TcpExt::TCPTimeouts), 0, "no RTO");
    assert_eq!(
        c.c.info().total_retrans,
        1,
        "only the lost segment was resent"
    );
    // Three duplicate ACKs came back about one RTT after the loss.
    let segs = c.log.data_out();
    let target = c.c.info_isn().wrapping_add(1 + 15 * mss);
    let firsts = covering(&segs, target);
    assert_eq!(firsts.len(), 2, "sent, then retransmitted once");
    assert_eq!(
        (firsts[1].seq, firsts[1].len),
        (target, mss),
        "one MSS resent"
    );
    let gap = since(firsts[1].at, firsts[0].at);
    assert!(gap >= RTT && gap < 2 * RTT, "fast retransmit after {gap:?}");
    // Reno halves the window (tcp_reno_ssthresh).
    let info = c.c.info();
    assert!(info.snd_ssthresh >= 2 && info.snd_ssthresh < 40);
}

#[test]
fn newreno_repairs_several_losses_in_one_window_with_partial_acks() {
    let k = Conn::new(9, |h| {
        h.a.sysctl.set("net.ipv4.tcp_sack", 0).unwrap();
        h.b.sysctl.set("net.ipv4.tcp_sack", 0).unwrap();
    });
    k.c.set_opt(SockOpt::Congestion("reno".into())).unwrap();
    let mss = k.c.info().snd_mss;
    let holes = [12 * mss, 15 * mss, 18 * mss];
    let dropped = drop_once(&k, &holes);
    bulk(&k, 300_000, Duration::from_secs(5));
    assert_eq!(dropped.load(Ordering::Relaxed), 3);
    let m = |x| k.h.a.tcp.mib.get(x);
    // RFC 6582: one fast recovery; each partial ACK retransmits the next hole.
    assert_eq!(m(TcpExt::TCPRenoRecovery), 1, "a single recovery episode");
    assert_eq!(m(TcpExt::TCPTimeouts), 0, "no RTO");
    assert_eq!(k.c.info().total_retrans, 3);
    let segs = k.log.data_out();
    let isn1 = k.c.info_isn().wrapping_add(1);
    let rtx_at: Vec<Instant> = holes
        .iter()
        .map(|h| {
            let v = covering(&segs, isn1.wrapping_add(*h));
            assert_eq!(v.len(), 2, "hole at {h} sent twice");
            assert_eq!((v[1].seq, v[1].len), (isn1.wrapping_add(*h), mss));
            v[1].at
        })
        .collect();
    // One hole per RTT: the partial ACK for hole n arrives an RTT after its resend.
    for w in rtx_at.windows(2) {
        let gap = since(w[1], w[0]);
        assert!(gap >= RTT && gap < 2 * RTT, "next hole after {gap:?}");
    }
}

#[test]
fn congestion_avoidance_adds_one_segment_per_rtt() {
    let k = Conn::new(10, |h| {
        h.a.sysctl.set("net.ipv4.tcp_sack", 0).unwrap();
    });
    k.c.set_opt(SockOpt::Congestion("reno".into())).unwrap();
    let mss = k.c.info().snd_mss;
    // A loss early in slow start ends it with a small ssthresh.
    drop_once(&k, &[20 * mss]);
    bulk(&k, 150_000, Duration::from_secs(5));
    let ssthresh = k.c.info().snd_ssthresh;
    assert!(ssthresh < 30, "ssthresh {ssthresh}");
    // Now in congestion avoidance (cwnd >= ssthresh): +1 per RTT (tcp_cong_avoid_ai).
    let w = cwnd_per_rtt(&k, 9, 8 << 20);
    assert!(w[0] >= ssthresh, "{w:?}");
    // An RTT sample and the time to acknowledge a whole window differ slightly, so a
    // sample may see no step; never more than one, and about one per RTT overall.
    for p in w.windows(2) {
        assert!(
            p[1] == p[0] || p[1] == p[0] + 1,
            "at most one segment per RTT: {w:?}"
        );
    }
    let growth = w[8] - w[0];
    assert!(
        (6..=8).contains(&growth),
        "{growth} segments in 8 RTTs: {w:?}"
    );
}

#[test]
fn one_segment_journey_hits_the_seed_functions_in_order() {
    let k = Conn::new(11, |_| {});
    k.c.set_opt(SockOpt::NoDelay(true)).unwrap();
    k.h.a.trace.enable();
    k.h.b.trace.enable();
    k.c.send(b"one traced segment").unwrap();
    assert_eq!(k.run_reading(Duration::from_millis(50)), 18);
    let ev_a = k.h.a.trace.events();
    let id = ev_a
        .iter()
        .find(|e| e.stage == Stage::TcpSendmsg)
        .expect("tcp_sendmsg traced")
        .id;
    let on_a: Vec<Stage> = ev_a
        .iter()
        .filter(|e| e.id == id)
        .map(|e| e.stage)
        .collect();
    let on_b: Vec<Stage> =
        k.h.b
            .trace
            .events()
            .iter()
            .filter(|e| e.id == id)
            .map(|e| e.stage)
            .collect();
    // The send path, in the seeds' order (seed 000 §三–§五, seed 004 §3).
    let send = [
        Stage::TcpSendmsg,
        Stage::TcpPush,
        Stage::TcpWriteXmit,
        Stage::TcpTransmitSkb,
        Stage::IpQueueXmit,
        Stage::IpLocalOut,
        Stage::IpOutput,
        Stage::IpFinishOutput,
        Stage::IpFinishOutput2,
        Stage::DevQueueXmit,
        Stage::XmitOne,
        Stage::DriverXmit,
        Stage::HwTx,
    ];
    assert_subsequence(&on_a, &send);
    assert!(
        on_a.contains(&Stage::NeighHhOutput) || on_a.contains(&Stage::NeighResolveOutput),
        "{on_a:?}"
    );
    assert!(on_a.contains(&Stage::QdiscBypass) || on_a.contains(&Stage::QdiscRestart));
    // The peer's receive path.
    let recv = [
        Stage::HwRx,
        Stage::CleanRxIrq,
        Stage::NetifReceiveSkb,
        Stage::IpRcv,
        Stage::IpLocalDeliver,
        Stage::TcpV4Rcv,
    ];
    assert_subsequence(&on_b, &recv);
    // Back home: TX completion freed the clone, and the ACK freed the original.
    assert_subsequence(&on_a, &[Stage::HwTx, Stage::CleanTxIrq]);
    assert_subsequence(&on_a, &[Stage::HwTx, Stage::TcpAck]);
}

/// Segments (TSO skbs as the tap sees them) that carry the byte at `seq`.
fn covering(segs: &[usnet::testutil::SegRecord], seq: u32) -> Vec<usnet::testutil::SegRecord> {
    segs.iter()
        .filter(|s| seq.wrapping_sub(s.seq) < s.len)
        .copied()
        .collect()
}

fn assert_subsequence(have: &[Stage], want: &[Stage]) {
    let mut it = have.iter();
    for w in want {
        assert!(
            it.any(|h| h == w),
            "{:?} missing or out of order in {:?}",
            w.name(),
            have.iter().map(|s| s.name()).collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_qdisc_drop_enters_cwr_without_retransmitting() {
    // A slow NIC with a one-packet qdisc: a local drop (NET_XMIT_DROP) is congestion
    // signalled by our own host. tcp_transmit_skb calls tcp_enter_cwr: ssthresh and
    // cwnd come down once, and the dropped clone's original is simply sent later.
    let k = Conn::with_nic(
        12,
        |c| c.line_rate_bps = 20_000_000,
        |h| {
            h.da.set_tx_queue_len(1);
            gro_off(h);
        },
    );
    k.c.set_opt(SockOpt::Congestion("reno".into())).unwrap();
    let data = vec![3u8; 2_000_000];
    let mut sent = 0;
    let mut got = 0;
    let mut saw_cwr = false;
    k.h.sim.run_while(
        || {
            while sent < data.len() {
                match k.c.send(&data[sent..]) {
                    Ok(n) => sent += n,
                    Err(_) => break,
                }
            }
            got += k.drain();
            saw_cwr |= k.c.info().ca_state == usnet::tcp::CaState::Cwr;
            got < data.len()
        },
        Duration::from_secs(30),
    );
    assert_eq!(got, data.len());
    let drops = k.h.da.txqs[0].qdisc.stats().drops;
    assert!(drops > 0, "the qdisc dropped");
    assert!(saw_cwr, "TCP entered CWR");
    assert!(k.c.info().snd_ssthresh < 1000);
    assert_eq!(
        k.c.info().total_retrans,
        0,
        "a local drop is not a loss to repair"
    );
}

/// Receive-buffer autotuning (DRS, `tcp_rcv_space_adjust`) starts from an initial
/// window's worth (`tcp_init_buffer_space`: 10 × advmss), so a reader that keeps up
/// grows the buffer — and the advertised window — past the initial 64 KiB within a
/// few RTTs; starting from the whole initial window kept it there forever.
#[test]
fn a_reader_that_keeps_up_grows_the_receive_buffer() {
    let k = Conn::new(48, |_| {});
    let before = k.s.info();
    assert_eq!(
        before.rcv_space,
        10 * before.advmss,
        "tcp_init_buffer_space"
    );
    bulk(&k, 4 << 20, Duration::from_secs(30));
    let after = k.s.info();
    assert!(
        after.rcvbuf > 4 * before.rcvbuf,
        "{} → {}",
        before.rcvbuf,
        after.rcvbuf
    );
    assert!(after.rcv_wnd > 4 << 16, "window {}", after.rcv_wnd);
}

/// The receiver keeps its own RTT estimate for DRS (`rcv_rtt_est`, `ss`'s `rcv_rtt`):
/// from the timestamps echoed on full-sized segments (smoothed; ms resolution, and
/// counting the time the sender held the data: above the path's RTT, as in Linux), or,
/// without timestamps, from how long a window of data takes to arrive (the minimum
/// seen). Before any estimate the buffer is not tuned.
#[test]
fn the_receiver_estimates_the_rtt_for_autotuning() {
    let rtt_us = RTT.as_micros() as u32;
    let k = Conn::new(50, |_| {});
    assert_eq!(k.s.info().rcv_rtt_us, 0, "no data yet, no estimate");
    bulk(&k, 2 << 20, Duration::from_secs(30));
    let est = k.s.info().rcv_rtt_us;
    assert!(
        (rtt_us * 9 / 10..=rtt_us * 2).contains(&est),
        "from timestamps: {est} µs for a {rtt_us} µs path"
    );
    assert!(format!("{}", k.s.info()).contains("rcv_rtt:"));
    let k = Conn::new(51, |h| {
        for s in [&h.a, &h.b] {
            s.sysctl.set("net.ipv4.tcp_timestamps", 0).unwrap();
        }
    });
    bulk(&k, 2 << 20, Duration::from_secs(30));
    let est = k.s.info().rcv_rtt_us;
    assert!(
        (rtt_us / 2..=rtt_us * 3).contains(&est),
        "from window timing: {est} µs for a {rtt_us} µs path"
    );
    assert!(k.s.info().rcvbuf > 131_072, "and the buffer grew");
}

/// `SO_MAX_PACING_RATE` turns on TCP's internal pacing (no fq qdisc here, as Linux
/// then paces in TCP): after the first ten packets, data leaves at the capped rate,
/// spread out by the pacing timer instead of in cwnd-sized bursts.
#[test]
fn max_pacing_rate_spreads_a_transfer_at_that_rate() {
    let rate = 1_250_000u64; // 10 Mbit/s in bytes per second.
    let bytes = 1_000_000usize;
    let k = Conn::new(49, |_| {});
    k.c.set_opt(usnet::tcp::SockOpt::MaxPacingRate(rate))
        .unwrap();
    let t0 = k.h.sim.now();
    bulk(&k, bytes, Duration::from_secs(10));
    let took = since(k.h.sim.now(), t0).as_secs_f64();
    let want = bytes as f64 / rate as f64;
    assert!(
        took > want * 0.9 && took < want * 1.3,
        "{bytes} bytes in {took:.3} s at {rate} B/s (expected about {want:.3} s)"
    );
    // No 10 ms stretch carries much more than the rate allows (12.5 kB), past the
    // unpaced start.
    let worst = burstiest(&k.log, 20, Duration::from_millis(10));
    assert!(worst < 25_000, "{worst} bytes within 10 ms");
}

/// `sk_stream_write_space` via `tcp_check_space`: a writer that found the send buffer
/// full (`SOCK_NOSPACE`) is not woken by every ACK that frees a little; it is woken
/// once the free space is at least half of what is still queued (a third of a full
/// buffer), and until then the socket does not poll writable.
#[test]
fn a_writer_on_a_full_send_buffer_wakes_when_a_third_is_free() {
    // A 100 Mbit/s bottleneck spaces the segments, so their ACKs come one by one.
    let k = Conn::new(95, |h| {
        gro_off(h);
        h.wire.set_netem(
            1,
            usnet::link::Netem {
                delay: Duration::from_millis(1),
                rate_bps: 100_000_000,
                limit: 10_000,
                ..Default::default()
            },
        );
    });
    k.c.set_nonblocking(true);
    let chunk = vec![0x11u8; 16 * 1024];
    while k.c.send(&chunk).is_ok() {}
    assert!(!k.c.writable(), "a full buffer does not poll writable");
    let (queued0, sndbuf) = k.c.with_tcb(|t| (t.wmem_queued, t.sndbuf));
    let seq0 = k.c.wq.seq();
    let mut buf = vec![0u8; 1 << 16];
    let (mut freed_quietly, mut woke_at) = (0, None);
    let mut last = queued0;
    k.h.sim.run_while(
        || {
            while let Ok(n) = k.s.recv(&mut buf) {
                if n == 0 {
                    break;
                }
            }
            let (queued, sndbuf) = k.c.with_tcb(|t| (t.wmem_queued, t.sndbuf));
            if k.c.wq.seq() != seq0 {
                woke_at = Some((queued, sndbuf));
                return false;
            }
            if queued < last {
                freed_quietly += 1;
                assert!(
                    sndbuf - queued < queued / 2,
                    "{} free of {sndbuf} with {queued} queued, and no wake-up",
                    sndbuf - queued
                );
                assert!(!k.c.writable());
            }
            last = queued;
            true
        },
        Duration::from_secs(5),
    );
    let (queued, sndbuf_then) = woke_at.expect("the writer was never woken");
    assert!(
        sndbuf_then - queued >= queued / 2,
        "woken with {} free and {queued} queued",
        sndbuf_then - queued
    );
    assert!(
        freed_quietly >= 3,
        "{freed_quietly} ACKs freed space before the wake-up (buffer {sndbuf}, {queued0} queued)"
    );
    assert!(k.c.writable());
}

/// `TCP_NOTSENT_LOWAT` (and `net.ipv4.tcp_notsent_lowat`): a writer may queue only
/// until this many bytes wait unsent (a last skb may overshoot), however large the
/// send buffer; the socket polls writable again once fewer than half remain, as the
/// window lets the queue drain.
#[test]
fn notsent_lowat_bounds_what_waits_unsent() {
    let lowat = 16 * 1024u32;
    let roomy = |h: &usnet::testutil::TwoHosts| {
        h.a.sysctl.set("net.core.wmem_max", 8 << 20).unwrap();
    };
    let k = Conn::new(52, roomy);
    k.c.set_opt(SockOpt::SndBuf(4 << 20)).unwrap();
    let big = vec![7u8; 4 << 20];
    // Without the mark, the send buffer is the only bound.
    let n0 = k.c.send(&big).unwrap();
    assert!(n0 > 1 << 20, "{n0} bytes taken without a mark");

    let k = Conn::new(53, roomy);
    k.c.set_opt(SockOpt::SndBuf(4 << 20)).unwrap();
    k.c.set_opt(SockOpt::NotsentLowat(lowat)).unwrap();
    let n = k.c.send(&big).unwrap();
    let unsent = k.c.with_tcb(|t| t.notsent_bytes());
    assert!(
        n < 256 << 10 && unsent >= lowat && unsent < lowat + (64 << 10),
        "{n} bytes taken, {unsent} unsent"
    );
    assert!(k.c.send(&big).is_err(), "EAGAIN at the mark");
    assert!(!k.c.writable());
    // The receiver reads; ACKs open the window, the queue drains, writers may go on.
    let mut woke = false;
    k.h.sim.run_while(
        || {
            k.drain();
            woke = k.c.writable();
            !woke
        },
        20 * RTT,
    );
    assert!(woke, "writable once the unsent bytes drained");
    assert!(k.c.with_tcb(|t| t.notsent_bytes()) < lowat / 2);

    // The sysctl applies to sockets that set no mark of their own.
    let k = Conn::new(54, |h| {
        roomy(h);
        h.a.sysctl
            .set("net.ipv4.tcp_notsent_lowat", i64::from(lowat))
            .unwrap();
    });
    k.c.set_opt(SockOpt::SndBuf(4 << 20)).unwrap();
    let n = k.c.send(&big).unwrap();
    assert!(n < 256 << 10, "{n} bytes taken under the sysctl");
}
