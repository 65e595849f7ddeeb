//! Loss recovery as Linux does it by default (SACK, RACK-TLP, PRR), one scenario each
//! on the virtual clock, 10 ms RTT: several holes repaired in one round trip, a DSACK
//! proving a retransmission spurious, RACK finding a lost retransmission, tail loss
//! probes repairing a tail drop without an RTO (and taking the first RTO's place with
//! one packet out), and PRR's sending rate during recovery.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use usnet::tcp::{CaState, TcpExt};
use usnet::testutil::SegRecord;
use usnet::time::Instant;

mod common;
use common::{drop_times, Conn, RTT};

fn since(a: Instant, b: Instant) -> Duration {
    a.saturating_duration_since(b)
}

/// Transmissions (original and retransmissions) that carried byte `rel` of the stream.
fn sends_of(k: &Conn, rel: u32) -> Vec<SegRecord> {
    let seq = k.c.with_tcb(|t| t.iss).wrapping_add(1).wrapping_add(rel);
    k.log
        .data_out()
        .into_iter()
        .filter(|s| seq.wrapping_sub(s.seq) < s.len)
        .collect()
}

/// With `USNET_DUMP=1`, print host a's segments (time, direction, relative seq/ack).
fn dump(k: &Conn) {
    if std::env::var("USNET_DUMP").is_err() {
        return;
    }
    let (isn, irs) = k.c.with_tcb(|t| (t.iss, t.irs));
    let all = k.log.all();
    let t0 = all.first().map(|s| s.at).unwrap_or_default();
    for s in all {
        let (dir, seq, ack) = if s.outgoing {
            (">", s.seq.wrapping_sub(isn), s.ack.wrapping_sub(irs))
        } else {
            ("<", s.seq.wrapping_sub(irs), s.ack.wrapping_sub(isn))
        };
        eprintln!(
            "{:9.3}ms {dir} seq {seq} len {} ack {ack} flags {:#04x}",
            since(s.at, t0).as_secs_f64() * 1e3,
            s.len,
            s.flags
        );
    }
}

fn mib(k: &Conn, m: TcpExt) -> u64 {
    k.h.a.tcp.mib.get(m)
}

fn bulk_with(k: &Conn, bytes: usize, limit: Duration, each: impl FnMut()) {
    common::bulk_with(k, bytes, limit, each);
    dump(k);
}

/// Run with b reading until `got` reaches `want` (5 s at most).
fn receive(k: &Conn, got: &mut usize, want: usize) {
    let mut buf = vec![0u8; 1 << 16];
    k.h.sim.run_while(
        || {
            while let Ok(m) = k.s.recv(&mut buf) {
                if m == 0 {
                    break;
                }
                *got += m;
            }
            *got < want
        },
        Duration::from_secs(5),
    );
}

fn bulk(k: &Conn, bytes: usize) {
    bulk_with(k, bytes, Duration::from_secs(10), || {});
}

/// RFC 6675 with RACK: three segments lost from one window are all retransmitted
/// within one round trip of the first, in one recovery episode, with no RTO.
#[test]
fn sack_repairs_three_holes_in_one_round_trip() {
    let k = Conn::new(41, |_| {});
    let mss = k.c.info().snd_mss;
    let holes = [20 * mss, 24 * mss, 28 * mss];
    let dropped = drop_times(&k, &holes.map(|h| (h, 1)));
    bulk(&k, 400_000);
    assert_eq!(dropped.load(Ordering::Relaxed), 3);
    assert_eq!(mib(&k, TcpExt::TCPSackRecovery), 1, "one recovery episode");
    assert_eq!(mib(&k, TcpExt::TCPTimeouts), 0, "no RTO");
    assert_eq!(
        k.c.info().total_retrans,
        3,
        "exactly the three holes resent"
    );
    let rtx: Vec<Instant> = holes
        .iter()
        .map(|&h| {
            let s = sends_of(&k, h);
            assert_eq!(s.len(), 2, "hole at {h}: sent, then resent once");
            assert!(since(s[1].at, s[0].at) >= RTT, "not before the SACKs came");
            s[1].at
        })
        .collect();
    let first = *rtx.iter().min().unwrap();
    let last = *rtx.iter().max().unwrap();
    assert!(
        since(last, first) < RTT,
        "all holes resent within one RTT: {:?}",
        since(last, first)
    );
}

/// Retransmissions the receiver did not need come back as DSACKs (RFC 2883): the ACKs
/// of a whole window are lost, a loss probe and then the RTO resend data the receiver
/// has, it reports each as a duplicate, and the sender undoes the window reduction
/// (TCPLossUndo).
#[test]
fn dsack_on_a_spurious_retransmission_undoes_the_reduction() {
    let k = Conn::new(42, |_| {});
    // A receive window that fills up, so the loss probe has nothing new to send.
    k.s.set_opt(usnet::tcp::SockOpt::RcvBuf(64 << 10)).unwrap();
    let cut = Arc::new(AtomicBool::new(false));
    let c2 = cut.clone();
    // Frames to a (port 0): ACKs are lost while `cut` is set.
    k.h.wire.set_drop_filter(
        0,
        Some(Arc::new(move |f| {
            c2.load(Ordering::Relaxed) && usnet::testutil::tcp_segment(f).is_some()
        })),
    );
    let mut phase = 0;
    let mut cwnd_before = 0;
    bulk_with(&k, 300_000, Duration::from_secs(10), || {
        let info = k.c.info();
        match phase {
            // Once a few round trips are in, lose the ACKs.
            0 if info.bytes_acked > 60_000 => {
                cwnd_before = info.snd_cwnd;
                cut.store(true, Ordering::Relaxed);
                phase = 1;
            }
            // The RTO fired and resent the head: let the ACKs through again.
            1 if mib(&k, TcpExt::TCPTimeouts) == 1 => {
                cut.store(false, Ordering::Relaxed);
                phase = 2;
            }
            _ => {}
        }
    });
    assert_eq!(phase, 2, "the RTO fired");
    assert!(mib(&k, TcpExt::TCPDSACKRecv) >= 1, "the DSACK came back");
    assert_eq!(mib(&k, TcpExt::TCPLossUndo), 1, "the reduction was undone");
    // Both retransmissions were spurious: the tail loss probe (the last segment: the
    // receive window allowed nothing new) and the RTO's head.
    assert_eq!(mib(&k, TcpExt::TCPLossProbes), 1);
    assert_eq!(k.c.info().total_retrans, 2);
    assert!(
        k.c.info().snd_cwnd >= cwnd_before,
        "cwnd {} restored to at least {cwnd_before}",
        k.c.info().snd_cwnd
    );
}

/// RACK (RFC 8985 § 6.2) detects a lost retransmission: segments sent after it are
/// SACKed an RTT later while it is not, so it is marked lost again and resent, without
/// waiting for the RTO.
#[test]
fn rack_detects_a_lost_retransmission() {
    let k = Conn::new(43, |_| {});
    let mss = k.c.info().snd_mss;
    let hole = 30 * mss;
    drop_times(&k, &[(hole, 2)]);
    bulk(&k, 600_000);
    let s = sends_of(&k, hole);
    assert_eq!(s.len(), 3, "original, lost retransmission, retransmission");
    assert!(mib(&k, TcpExt::TCPLostRetransmit) >= 1);
    assert_eq!(mib(&k, TcpExt::TCPTimeouts), 0, "no RTO");
    let gap = since(s[2].at, s[1].at);
    assert!(
        gap >= RTT && gap < 3 * RTT,
        "resent again {gap:?} after the lost retransmission"
    );
}

/// A tail loss probe (RFC 8985 § 7) repairs the loss of the last three segments of a
/// write: two smoothed RTTs (+2 ms) after the last ACK the last segment is resent;
/// its SACK lets RACK mark the other two lost, and PRR resends them one per ACK; all
/// is repaired long before the RTO would have fired.
#[test]
fn tail_loss_probe_repairs_a_tail_drop_without_an_rto() {
    let k = Conn::new(44, |_| {});
    // Warm up (the handshake's RTT sample included an ARP round trip, as Linux's
    // would; srtt comes down towards the path's 10 ms).
    let base = 100_000;
    bulk(&k, base as usize);
    k.h.sim.run_for(RTT * 2);
    let info = k.c.info();
    // (tcpi_bytes_acked counts the SYN, as Linux does.)
    assert_eq!(info.bytes_acked, u64::from(base) + 1);
    let mss = info.snd_mss;
    let srtt = Duration::from_micros(u64::from(info.rtt_us));
    let n = 10u32;
    drop_times(
        &k,
        &[
            (base + 7 * mss, 1),
            (base + 8 * mss, 1),
            (base + 9 * mss, 1),
        ],
    );
    let t0 = k.h.sim.now();
    assert_eq!(
        k.c.send(&vec![9u8; (n * mss) as usize]).unwrap(),
        (n * mss) as usize
    );
    let mut got = 0;
    receive(&k, &mut got, (n * mss) as usize);
    let done = since(k.h.sim.now(), t0);
    dump(&k);
    assert_eq!(got, (n * mss) as usize);
    assert_eq!(mib(&k, TcpExt::TCPLossProbes), 1);
    assert_eq!(mib(&k, TcpExt::TCPTimeouts), 0, "no RTO");
    // Recovery's one cwnd reduction settled the probe (tcp_init_cwnd_reduction): its
    // ACK does not reduce cwnd a second time.
    assert_eq!(mib(&k, TcpExt::TCPSackRecovery), 1);
    assert_eq!(mib(&k, TcpExt::TCPLossProbeRecovery), 0);
    let rto = Duration::from_micros(k.c.info().rto_us);
    assert!(done < rto / 2, "repaired in {done:?} (RTO {rto:?})");
    // The probe: the last segment again, 2·srtt + 2 ms after the ACK of the first
    // seven (one RTT after the send).
    let last = sends_of(&k, base + 9 * mss);
    assert_eq!(last.len(), 2, "the last segment was probed");
    let pto = since(last[1].at, t0 + RTT);
    assert!(
        pto >= 2 * RTT && pto <= 2 * srtt + Duration::from_millis(3),
        "probe {pto:?} after the last ACK (srtt {srtt:?})"
    );
}

/// A tail loss probe that repairs the only loss (the last segment of a write): the
/// probe resends it, the ACK covers everything, and that one loss costs one cwnd
/// reduction without entering recovery (TCPLossProbeRecovery, `tcp_process_tlp_ack`).
#[test]
fn a_probe_that_repairs_the_only_loss_reduces_cwnd_once() {
    let k = Conn::new(46, |_| {});
    let base = 200_000;
    bulk(&k, base as usize);
    k.h.sim.run_for(RTT * 2);
    let mss = k.c.info().snd_mss;
    let n = 8u32;
    drop_times(&k, &[(base + (n - 1) * mss, 1)]);
    let cwnd0 = k.c.info().snd_cwnd;
    let mut got = 0;
    k.c.send(&vec![3u8; (n * mss) as usize]).unwrap();
    receive(&k, &mut got, (n * mss) as usize);
    // The ACK of the probe itself is ambiguous (the original may have arrived late);
    // the episode is settled by an ACK beyond it: more data.
    assert_eq!(mib(&k, TcpExt::TCPLossProbes), 1);
    assert_eq!(mib(&k, TcpExt::TCPLossProbeRecovery), 0);
    k.c.send(&vec![4u8; mss as usize]).unwrap();
    receive(&k, &mut got, ((n + 1) * mss) as usize);
    k.h.sim.run_for(RTT);
    assert_eq!(mib(&k, TcpExt::TCPLossProbeRecovery), 1);
    assert_eq!(mib(&k, TcpExt::TCPSackRecovery), 0, "no recovery episode");
    assert_eq!(mib(&k, TcpExt::TCPTimeouts), 0);
    let info = k.c.info();
    assert!(
        info.snd_cwnd < cwnd0 && info.snd_ssthresh < cwnd0,
        "cwnd {cwnd0} reduced once to {} (ssthresh {})",
        info.snd_cwnd,
        info.snd_ssthresh
    );
}

/// Reordering on the path (netem sends some packets ahead of the others): a SACK for
/// a packet that was never retransmitted, below the highest SACKed one, shows the
/// network reorders (TCPSACKReorder), and the reordering degree grows from 3 to the
/// distance seen (`tcp_check_sack_reordering`), so later reordering is not taken for
/// loss by the dupthresh rule.
#[test]
fn sack_reordering_raises_the_reordering_degree() {
    let k = Conn::new(47, |h| {
        h.wire.set_netem(
            1,
            usnet::link::Netem {
                delay: common::D,
                reorder: 0.02,
                ..Default::default()
            },
        );
    });
    assert_eq!(k.c.with_tcb(|t| t.reordering), 3);
    bulk(&k, 2 << 20);
    assert!(mib(&k, TcpExt::TCPSACKReorder) >= 1);
    let reordering = k.c.with_tcb(|t| t.reordering);
    assert!(reordering > 3, "reordering degree {reordering}");
}

/// With one packet out on a dead path, the probe timeout (2·srtt + TCP_RTO_MIN) is
/// capped at the RTO, so the probe takes the first expiry's place; the RTO follows one
/// (not doubled) RTO later, then backs off.
#[test]
fn a_lone_packets_probe_takes_the_first_rtos_place() {
    let k = Conn::new(45, |_| {});
    let rto0 = Duration::from_micros(k.c.info().rto_us);
    k.h.wire.set_drop_filter(
        1,
        Some(Arc::new(|f| usnet::testutil::tcp_segment(f).is_some())),
    );
    let t0 = k.h.sim.now();
    k.c.send(&[1u8; 500]).unwrap();
    k.h.sim.run_for(rto0 * 4 + Duration::from_millis(20));
    let at: Vec<Duration> = k.log.data_out().iter().map(|s| since(s.at, t0)).collect();
    assert_eq!(at.len(), 4, "{at:?}");
    let near = |a: Duration, b: Duration| a.abs_diff(b) <= Duration::from_millis(3);
    assert!(near(at[1], rto0), "probe at {:?}, rto {rto0:?}", at[1]);
    assert!(near(at[2], rto0 * 2), "first RTO at {:?}", at[2]);
    assert!(near(at[3], rto0 * 4), "second RTO at {:?}", at[3]);
    assert_eq!(mib(&k, TcpExt::TCPLossProbes), 1);
    assert_eq!(mib(&k, TcpExt::TCPTimeouts), 2);
}

/// PRR (RFC 6937): during recovery the sender sends in proportion to what is
/// delivered — ssthresh/prior_cwnd of it (CUBIC's β = 0.7) — and leaves recovery with
/// cwnd = ssthresh, instead of halting and then bursting.
#[test]
fn prr_sends_in_proportion_during_recovery() {
    // Per-segment ACKs (GRO off at the receiver): loss is detected early in the
    // window and most of it is delivered during recovery, one ACK at a time.
    let k = Conn::new(46, |h| {
        h.db.set_features(h.db.features() - usnet::dev::Features::GRO);
        // A receive window that never limits: cwnd does.
        h.b.sysctl.set("net.ipv4.tcp_rmem_default", 4 << 20).ok();
    });
    let mss = k.c.info().snd_mss;
    drop_times(&k, &[(150 * mss, 1)]);
    // (state, cwnd, ssthresh, prior_cwnd, prr_delivered, prr_out) at every step.
    let mut samples: Vec<(CaState, u32, u32, u32, u32, u32)> = Vec::new();
    bulk_with(&k, 2_000_000, Duration::from_secs(10), || {
        samples.push(k.c.with_tcb(|t| {
            (
                t.ca_state,
                t.snd_cwnd,
                t.snd_ssthresh,
                t.prior_cwnd,
                t.prr_delivered,
                t.prr_out,
            )
        }));
    });
    assert_eq!(mib(&k, TcpExt::TCPSackRecovery), 1);
    assert_eq!(mib(&k, TcpExt::TCPTimeouts), 0);
    let enter = samples
        .iter()
        .position(|s| s.0 == CaState::Recovery)
        .expect("recovery");
    let exit = enter
        + samples[enter..]
            .iter()
            .position(|s| s.0 != CaState::Recovery)
            .expect("recovery ended");
    // (The counters keep their values past the end of recovery.)
    let (_, _, ssthresh, prior_cwnd, delivered, out) = samples[exit];
    assert_eq!(prior_cwnd, samples[enter - 1].1, "cwnd before the loss");
    let beta = f64::from(ssthresh) / f64::from(prior_cwnd);
    assert!((0.65..0.75).contains(&beta), "CUBIC β: {beta:.2}");
    assert_eq!(
        samples[exit].1, ssthresh,
        "cwnd = ssthresh when recovery ends"
    );
    // Over the episode: sent (retransmissions and new data) ≈ β × delivered, the
    // last ACKs' rounding aside.
    assert!(
        delivered >= prior_cwnd / 2,
        "{delivered} delivered in recovery"
    );
    let want = f64::from(delivered) * beta;
    assert!(
        (f64::from(out) - want).abs() <= 2.0,
        "sent {out} for {delivered} delivered (β × delivered = {want:.1})"
    );
}
