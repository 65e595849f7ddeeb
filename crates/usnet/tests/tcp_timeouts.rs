//! Retransmission timeouts on the virtual clock, written from Linux's tcp_timer.c
//! (`tcp_retransmit_timer`, `tcp_write_timeout`) and RFC 6298:
//!
//! * the RTO backing off exponentially from the handshake's RTO up to `TCP_RTO_MAX`,
//!   then `tcp_retries2` giving up with ETIMEDOUT; recovery when the path comes back;
//! * `TCP_USER_TIMEOUT` ending the connection, counted from the first retransmission.
//!
//! Every time is virtual: a test that covers half an hour of TCP runs in milliseconds.

mod common;

use std::sync::Arc;
use std::time::Duration;

use usnet::sock::errno;
use usnet::tcp::{SockOpt, Tcp, TcpExt, TcpSock, TcpState};
use usnet::testutil::TwoHosts;

use common::lifecycle::{cut_tcp, drain, ms, secs, Conn, TO_B};
use common::RTT;

/// Tail loss probes off (`tcp_early_retrans=0`), to watch the retransmission timer
/// alone: with one packet out, the probe timeout (2·srtt + TCP_RTO_MIN) is capped at
/// the RTO and the probe would take the first expiry's place (tests/tcp_recovery.rs
/// shows that).
fn no_tlp(h: &TwoHosts, _: &Arc<TcpSock>) {
    h.a.sysctl.set("net.ipv4.tcp_early_retrans", 0).unwrap();
}

// ---------------------------------------------------------------------------------
// Retransmission timeout: exponential backoff, TCP_RTO_MAX, tcp_retries2.
// ---------------------------------------------------------------------------------

/// `tcp_retransmit_timer`: every expiry retransmits the head and doubles `icsk_rto`
/// (`min(icsk_rto << 1, TCP_RTO_MAX)`), starting from the RTO the handshake's RTT
/// sample gave (`tcp_set_rto`: srtt + max(4·rttvar, TCP_RTO_MIN) = 10 ms + 200 ms).
/// `tcp_write_timeout` gives up once `tcp_model_timeout(tcp_retries2 = 15,
/// TCP_RTO_MIN)` = 924.6 s have passed since the first retransmission: the 16th expiry
/// (at 934.8 s) finds it over and ends the connection with ETIMEDOUT
/// (`tcp_write_err`, TCPAbortOnTimeout) without retransmitting.
#[test]
fn rto_doubles_from_the_initial_rto_to_the_120s_cap_then_tcp_retries2_gives_up() {
    let k = Conn::with(101, no_tlp);
    let info = k.c.info();
    let rto0 = Duration::from_micros(info.rto_us);
    let srtt = Duration::from_micros(u64::from(info.rtt_us));
    assert!(
        rto0 >= srtt + ms(200) && rto0 <= srtt + ms(201),
        "initial RTO {rto0:?} = srtt {srtt:?} + TCP_RTO_MIN"
    );
    let timeouts0 = k.h.a.tcp.mib.get(TcpExt::TCPTimeouts);
    let retrans0 = k.h.a.tcp.snmp.get(Tcp::RetransSegs);
    cut_tcp(&k.h, TO_B, true);
    let t0 = k.h.sim.now();
    k.c.send(&[7u8; 1000]).unwrap();
    // After four expiries: icsk_backoff 4, icsk_retransmits 4, icsk_rto 16·rto0.
    k.h.sim.run_until(t0 + rto0 * 15 + ms(20));
    let mid = k.c.info();
    assert_eq!((mid.backoff, mid.retransmits), (4, 4), "{mid:#?}");
    assert_eq!(Duration::from_micros(mid.rto_us), rto0 * 16);
    assert_eq!(mid.ca_state, usnet::tcp::CaState::Loss);
    k.h.sim.run_while(
        || k.c.state() == TcpState::Established,
        Duration::from_secs(1200),
    );
    let died = secs(k.h.sim.now(), t0);
    let sends: Vec<f64> = k.log.data_out().iter().map(|s| secs(s.at, t0)).collect();
    assert_eq!(
        sends.len(),
        16,
        "the original and tcp_retries2 = 15 retransmissions: {sends:?}"
    );
    // Each timer fires on the first 1 ms tick at or after its expiry.
    let mut expect_gap = rto0.as_secs_f64();
    for (i, w) in sends.windows(2).enumerate() {
        let gap = w[1] - w[0];
        assert!(
            gap >= expect_gap - 1e-6 && gap <= expect_gap + 0.0011,
            "gap {i}: {gap:.4} s, want {expect_gap:.4} s (all: {sends:?})"
        );
        expect_gap = (expect_gap * 2.0).min(120.0);
    }
    assert!(
        (120.0 - 1e-6..=120.0011).contains(&(sends[15] - sends[14])),
        "capped at TCP_RTO_MAX"
    );
    let last_timer = sends[15] + 120.0;
    assert!(
        (died - last_timer).abs() < 0.0015,
        "gave up at {died:.3} s, want the 16th expiry at {last_timer:.3} s"
    );
    assert!(died > 924.6, "tcp_model_timeout(15, 200 ms) = 924.6 s");
    assert_eq!(k.c.state(), TcpState::Close);
    assert_eq!(
        k.c.take_error().and_then(|e| e.raw_os_error()),
        Some(errno::ETIMEDOUT)
    );
    assert_eq!(k.h.a.tcp.mib.get(TcpExt::TCPTimeouts) - timeouts0, 16);
    assert_eq!(k.h.a.tcp.snmp.get(Tcp::RetransSegs) - retrans0, 15);
    assert_eq!(k.h.a.tcp.mib.get(TcpExt::TCPAbortOnTimeout), 1);
    assert_eq!(
        k.c.send(b"x").unwrap_err().raw_os_error(),
        Some(errno::EPIPE),
        "the error was reported; the socket is shut down"
    );
}

/// When the path comes back the next retransmission (not an earlier one: the timer
/// is in charge) is acknowledged; `tcp_ack` clears `icsk_retransmits`, the RTT sample
/// from the timestamp echo resets `icsk_backoff` and `icsk_rto` (`tcp_ack_update_rtt`,
/// RFC 6298 § 5), loss recovery ends, and new data goes out at once.
#[test]
fn rto_recovery_resets_backoff_and_new_data_goes_out_at_once() {
    let k = Conn::with(102, no_tlp);
    let rto0 = Duration::from_micros(k.c.info().rto_us);
    cut_tcp(&k.h, TO_B, true);
    let t0 = k.h.sim.now();
    k.c.send(&[1u8; 1000]).unwrap();
    // Retransmissions at 1, 3, 7, 15 × rto0; the next is due at 31 × rto0.
    k.h.sim.run_until(t0 + rto0 * 15 + ms(50));
    assert_eq!(k.c.info().backoff, 4);
    cut_tcp(&k.h, TO_B, false);
    k.h.sim.run_until(t0 + rto0 * 31 - ms(2));
    assert_eq!(k.log.data_out().len(), 5, "nothing before the timer");
    let mut got = Vec::new();
    k.h.sim.run_while(
        || {
            drain(&k.s, &mut got);
            got.len() < 1000 || k.c.info().unacked > 0
        },
        Duration::from_secs(1),
    );
    let sends: Vec<f64> = k.log.data_out().iter().map(|s| secs(s.at, t0)).collect();
    assert_eq!(sends.len(), 6, "{sends:?}");
    let want = (rto0 * 31).as_secs_f64();
    assert!(
        (sends[5] - want).abs() < 0.005,
        "5th retransmission at {:.3} s",
        sends[5]
    );
    assert_eq!(got, vec![1u8; 1000]);
    let info = k.c.info();
    assert_eq!((info.backoff, info.retransmits), (0, 0), "{info:#?}");
    assert!(
        Duration::from_micros(info.rto_us) < ms(300),
        "RTO recomputed from the new sample: {} µs",
        info.rto_us
    );
    assert_eq!(info.ca_state, usnet::tcp::CaState::Open);
    k.log.clear();
    let t1 = k.h.sim.now();
    k.c.send(&[2u8; 100]).unwrap();
    k.h.sim.run_for(RTT + ms(1));
    let out = k.log.data_out();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].at, t1, "sent at once, no backoff left");
    assert_eq!(k.c.info().unacked, 0, "acknowledged within one RTT");
}

// ---------------------------------------------------------------------------------
// TCP_USER_TIMEOUT.
// ---------------------------------------------------------------------------------

/// `tcp_clamp_rto_to_user_timeout` shortens the last RTO so the timer fires when the
/// user timeout is over; `retransmits_timed_out(.., icsk_user_timeout)` then ends the
/// connection with ETIMEDOUT and TCPAbortOnTimeout. Linux measures the 5 s from
/// `retrans_stamp`, the first retransmission, so the end lies in [5 s, 5 s + RTO].
#[test]
fn user_timeout_ends_the_connection_with_etimedout_after_about_5_s() {
    let k = Conn::with(103, no_tlp);
    k.c.set_opt(SockOpt::UserTimeout(Duration::from_secs(5)))
        .unwrap();
    let rto0 = k.c.info().rto_us as f64 / 1e6;
    cut_tcp(&k.h, TO_B, true);
    let t0 = k.h.sim.now();
    k.c.send(&[1u8; 500]).unwrap();
    k.h.sim.run_while(
        || k.c.state() == TcpState::Established,
        Duration::from_secs(60),
    );
    let at = secs(k.h.sim.now(), t0);
    assert!(
        (5.0..=5.0 + rto0 + 0.002).contains(&at),
        "gave up at {at:.3} s"
    );
    let sends: Vec<f64> = k.log.data_out().iter().map(|s| secs(s.at, t0)).collect();
    // Retransmissions at 1, 3, 7, 15 × rto0 (3.15 s); the next full RTO would be at
    // 31 × rto0 = 6.5 s, past the user timeout: no fifth retransmission.
    assert_eq!(sends.len(), 5, "{sends:?}");
    assert!((sends[4] - 15.0 * rto0).abs() < 0.005, "{sends:?}");
    assert_eq!(k.c.state(), TcpState::Close);
    assert_eq!(
        k.c.take_error().and_then(|e| e.raw_os_error()),
        Some(errno::ETIMEDOUT)
    );
    assert_eq!(k.h.a.tcp.mib.get(TcpExt::TCPAbortOnTimeout), 1);
    // Nothing was sent to the peer (no RST on a timeout).
    assert_eq!(k.h.a.tcp.snmp.get(Tcp::OutRsts), 0);
}

/// Precisely: Linux's `retrans_stamp` is the time of the first retransmission
/// (`tcp_retransmit_skb` saves `tcp_skb_timestamp_ts(skb)` after `__tcp_transmit_skb`
/// has restamped the skb with the retransmission's send time), so with an RTO of
/// rto0 the user timeout of 5 s expires at rto0 + 5 s after the original send.
#[test]
fn user_timeout_counts_from_the_first_retransmission() {
    let k = Conn::new(104);
    k.c.set_opt(SockOpt::UserTimeout(Duration::from_secs(5)))
        .unwrap();
    let rto0 = k.c.info().rto_us as f64 / 1e6;
    cut_tcp(&k.h, TO_B, true);
    let t0 = k.h.sim.now();
    k.c.send(&[1u8; 500]).unwrap();
    k.h.sim.run_while(
        || k.c.state() == TcpState::Established,
        Duration::from_secs(60),
    );
    let at = secs(k.h.sim.now(), t0);
    assert!(
        (at - (rto0 + 5.0)).abs() < 0.003,
        "gave up at {at:.3} s, Linux at {:.3} s",
        rto0 + 5.0
    );
}
