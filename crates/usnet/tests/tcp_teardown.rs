//! Closing connections on the virtual clock, written from Linux's tcp_input.c,
//! tcp_minisocks.c and tcp_timer.c and RFC 9293:
//!
//! * FIN_WAIT1 → FIN_WAIT2 → TIME_WAIT for 60 s (`tcp_time_wait`,
//!   `tcp_timewait_state_process`), retransmitted FINs re-ACKed, TIME_WAIT assassination
//!   only by an exact RST, the orphaned FIN_WAIT2 timeout, LAST_ACK and simultaneous
//!   close through CLOSING;
//! * half-close: shutdown(SHUT_WR) keeping the other direction open.
//!
//! Every time is virtual: a test that covers minutes of TCP runs in milliseconds.

mod common;

use std::net::Shutdown;
use std::sync::Arc;
use std::time::Duration;

use usnet::sock::errno;
use usnet::tcp::minisocks::TimeWait;
use usnet::tcp::{Tcp, TcpExt, TcpSock, TcpState};
use usnet::testutil::{SegLog, SegRecord};

use common::lifecycle::{
    accept_for, connect, cut_tcp, drain, hosts, listen, ms, pattern, push, segs_after, server,
    Conn, ACK, FIN, RST, TO_B,
};
use common::{craft_tcp, craft_tcp_opts, inject, ts_opt, D, RTT};

// ---------------------------------------------------------------------------------
// TIME_WAIT, LAST_ACK, CLOSING.
// ---------------------------------------------------------------------------------

/// The active closer goes FIN_WAIT1 → FIN_WAIT2 → TIME_WAIT and keeps the pair for
/// TCP_TIMEWAIT_LEN = 60 s; the passive closer goes CLOSE_WAIT → LAST_ACK → CLOSE with
/// no TIME_WAIT. A retransmitted FIN reaching the TIME_WAIT pair (out of window: seq =
/// rcv_nxt − 1, with ACK) is answered with an ACK of rcv_nxt and restarts the 60 s
/// (`tcp_timewait_state_process`: `inet_twsk_reschedule(tw, TCP_TIMEWAIT_LEN)`, then
/// TCP_TW_ACK).
#[test]
fn time_wait_lasts_60_s_and_a_retransmitted_fin_is_reacked_and_restarts_it() {
    let h = hosts(110);
    let l = listen(&h, 80, 16);
    let c1 = connect(&h, server());
    let s1 = accept_for(&h, &l, &c1);
    let c2 = connect(&h, server());
    let s2 = accept_for(&h, &l, &c2);
    h.sim.run_for(ms(50));
    let log = SegLog::attach(&h.da);
    c1.close();
    c2.close();
    assert_eq!(c1.state(), TcpState::FinWait1);
    // The peer, now in CLOSE_WAIT (pingpong mode), delays the FIN's ACK (tcp_fin).
    h.sim.run_for(RTT + ms(250));
    assert_eq!(c1.state(), TcpState::FinWait2);
    assert_eq!(s1.state(), TcpState::CloseWait);
    let mut buf = [0u8; 8];
    assert_eq!(s1.recv(&mut buf).unwrap(), 0, "EOF");
    s1.close();
    s2.close();
    assert_eq!(s1.state(), TcpState::LastAck);
    let key = |c: &Arc<TcpSock>| (c.local_addr(), server());
    let (k1, k2) = (key(&c1), key(&c2));
    h.sim
        .run_while(|| !h.a.tcp.tw.contains(k1.0, k1.1), Duration::from_secs(1));
    let t_tw = h.sim.now();
    assert!(h.a.tcp.tw.contains(k2.0, k2.1));
    h.sim.run_for(D + ms(1));
    assert_eq!(s1.state(), TcpState::Close, "LAST_ACK → CLOSE on the ACK");
    assert_eq!(s2.state(), TcpState::Close);
    assert!(
        h.b.tcp.tw.is_empty(),
        "the passive closer keeps no TIME_WAIT"
    );
    assert_eq!(h.a.tcp.mib.get(TcpExt::TW), 2);
    // Keep a's TIME_WAIT ACKs from reaching b (which would answer them with RSTs that
    // kill the entries: TIME_WAIT assassination, tcp_rfc1337 = 0).
    cut_tcp(&h, TO_B, true);
    h.sim.run_until(t_tw + Duration::from_secs(30));
    let tw2 =
        h.a.tcp
            .tw
            .entries()
            .into_iter()
            .find(|e| (e.0, e.1) == k2)
            .expect("entry")
            .2;
    let t_inj = h.sim.now();
    inject(
        &h,
        craft_tcp_opts(
            server(),
            k2.0,
            tw2.rcv_nxt.wrapping_sub(1),
            tw2.snd_nxt,
            FIN | ACK,
            65535,
            &ts_opt(tw2.ts_recent.expect("timestamps"), 0),
            &[],
            true,
        ),
        true,
    );
    h.sim.run_for(ms(20));
    let acks: Vec<SegRecord> = segs_after(&log, t_inj, true);
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert_eq!(acks[0].flags, ACK);
    assert_eq!((acks[0].seq, acks[0].ack), (tw2.snd_nxt, tw2.rcv_nxt));
    let t_fin = t_inj + D;
    h.sim.run_until(t_tw + ms(59_900));
    assert!(h.a.tcp.tw.contains(k1.0, k1.1), "present at 59.9 s");
    assert!(h.a.tcp.tw.contains(k2.0, k2.1));
    h.sim.run_until(t_tw + ms(60_100));
    assert!(!h.a.tcp.tw.contains(k1.0, k1.1), "gone at 60.1 s");
    assert!(h.a.tcp.tw.contains(k2.0, k2.1), "restarted by the FIN");
    h.sim.run_until(t_fin + ms(59_900));
    assert!(h.a.tcp.tw.contains(k2.0, k2.1));
    h.sim.run_until(t_fin + ms(60_100));
    assert!(h.a.tcp.tw.is_empty(), "60 s after the retransmitted FIN");
    assert_eq!(h.a.tcp.snmp.get(Tcp::OutRsts), 0);
    assert_eq!(h.b.tcp.snmp.get(Tcp::OutRsts), 0);
}

/// Close both ends (a first), so a's side of the connection sits in TIME_WAIT: its
/// four-tuple and the entry.
fn into_time_wait(k: &Conn) -> ((std::net::SocketAddrV4, std::net::SocketAddrV4), TimeWait) {
    k.c.close();
    k.h.sim.run_for(RTT + ms(1));
    k.s.close();
    k.h.sim.run_for(RTT + ms(1));
    let key = (k.c.local_addr(), server());
    (key, k.h.a.tcp.tw.entries()[0].2)
}

/// The ACK answering a retransmitted FIN in TIME_WAIT is sent, not skipped: Linux
/// counts TCPACKSkippedTimeWait only when `tcp_timewait_check_oow_rate_limit`
/// suppresses an ACK (a FIN occupies sequence space, so it is never rate limited).
#[test]
fn time_wait_ack_of_a_retransmitted_fin_is_not_counted_as_skipped() {
    let k = Conn::new(111);
    let (key, tw) = into_time_wait(&k);
    cut_tcp(&k.h, TO_B, true);
    let t = k.h.sim.now();
    inject(
        &k.h,
        craft_tcp_opts(
            server(),
            key.0,
            tw.rcv_nxt.wrapping_sub(1),
            tw.snd_nxt,
            FIN | ACK,
            65535,
            &ts_opt(tw.ts_recent.expect("timestamps"), 0),
            &[],
            true,
        ),
        true,
    );
    k.h.sim.run_for(ms(20));
    assert_eq!(segs_after(&k.log, t, true).len(), 1, "the FIN is re-ACKed");
    assert_eq!(k.h.a.tcp.mib.get(TcpExt::TCPACKSkippedTimeWait), 0);
}

/// `tcp_timewait_state_process` kills the entry on a RST only when its sequence is
/// exactly `tw_rcv_nxt` (TIME_WAIT assassination with tcp_rfc1337 = 0); any other
/// RST is out of window and dropped, so a blind RST cannot end TIME_WAIT early.
#[test]
fn time_wait_is_killed_only_by_an_rst_at_rcv_nxt() {
    let k = Conn::new(112);
    let (key, tw) = into_time_wait(&k);
    for off in [1u32, 1000, 100_000] {
        inject(
            &k.h,
            craft_tcp(
                server(),
                key.0,
                tw.rcv_nxt.wrapping_add(off),
                0,
                RST,
                0,
                &[],
                true,
            ),
            true,
        );
        k.h.sim.run_for(ms(20));
        assert!(
            k.h.a.tcp.tw.contains(key.0, key.1),
            "a RST at rcv_nxt + {off} killed TIME_WAIT"
        );
    }
    inject(
        &k.h,
        craft_tcp(server(), key.0, tw.rcv_nxt, 0, RST, 0, &[], true),
        true,
    );
    k.h.sim.run_for(ms(20));
    assert!(!k.h.a.tcp.tw.contains(key.0, key.1));
}

/// An orphaned socket (close() with the peer still open) in FIN_WAIT2 lives for
/// tcp_fin_timeout = 60 s after its FIN was ACKed (`tcp_rcv_state_process` hands it to
/// a FIN_WAIT2 timewait socket for `tcp_fin_time`): a peer FIN at 59.9 s is ACKed and
/// moves it to TIME_WAIT; one at 60.1 s finds nothing and is answered with a RST,
/// which resets the peer in LAST_ACK (ECONNRESET).
#[test]
fn orphaned_fin_wait2_lasts_tcp_fin_timeout() {
    let h = hosts(137);
    let l = listen(&h, 80, 16);
    let c1 = connect(&h, server());
    let s1 = accept_for(&h, &l, &c1);
    let c2 = connect(&h, server());
    let s2 = accept_for(&h, &l, &c2);
    h.sim.run_for(ms(50));
    c1.close();
    c2.close();
    // The FIN's ACK is delayed by the peer in CLOSE_WAIT (pingpong mode): FIN_WAIT2
    // (and tcp_fin_timeout) starts when it arrives.
    h.sim
        .run_while(|| c1.state() != TcpState::FinWait2, RTT + ms(250));
    let t_ack = h.sim.now();
    assert_eq!(c1.state(), TcpState::FinWait2);
    h.sim.run_until(t_ack + ms(59_900));
    s1.close();
    h.sim.run_for(RTT + ms(1));
    assert_eq!(s1.state(), TcpState::Close, "ACKed: LAST_ACK → CLOSE");
    assert!(s1.take_error().is_none());
    assert!(h.a.tcp.tw.contains(c1.local_addr(), server()));
    assert_eq!(h.a.tcp.snmp.get(Tcp::OutRsts), 0);
    h.sim.run_until(t_ack + ms(60_100));
    s2.close();
    assert_eq!(s2.state(), TcpState::LastAck);
    h.sim.run_for(RTT + ms(1));
    assert_eq!(h.a.tcp.snmp.get(Tcp::OutRsts), 1, "the late FIN gets a RST");
    assert!(!h.a.tcp.tw.contains(c2.local_addr(), server()));
    assert_eq!(s2.state(), TcpState::Close);
    assert_eq!(
        s2.take_error().and_then(|e| e.raw_os_error()),
        Some(errno::ECONNRESET)
    );
}

/// Both ends close at once: each FIN reaches a socket in FIN_WAIT1, which goes to
/// CLOSING (`tcp_fin`) and ACKs; the ACK of its own FIN then moves it to TIME_WAIT
/// (`tcp_rcv_state_process`, TCP_CLOSING). Both hosts keep the pair for 60 s.
#[test]
fn simultaneous_close_goes_through_closing_to_time_wait_on_both_sides() {
    let k = Conn::new(113);
    let (ca, sa) = (k.c.local_addr(), k.s.local_addr());
    k.c.close();
    k.s.close();
    assert_eq!(k.c.state(), TcpState::FinWait1);
    assert_eq!(k.s.state(), TcpState::FinWait1);
    // The FINs cross on the wire.
    k.h.sim.run_for(D + ms(1));
    assert_eq!(k.c.state(), TcpState::Closing);
    assert_eq!(k.s.state(), TcpState::Closing);
    k.h.sim.run_for(D);
    assert!(k.h.a.tcp.tw.contains(ca, sa));
    assert!(k.h.b.tcp.tw.contains(sa, ca));
    let fins: Vec<SegRecord> = k
        .log
        .segs
        .lock()
        .iter()
        .filter(|s| s.flags & FIN != 0)
        .copied()
        .collect();
    assert_eq!(
        fins.len(),
        2,
        "one FIN each way, no retransmission: {fins:?}"
    );
    k.h.sim.run_for(ms(59_900));
    assert!(k.h.a.tcp.tw.contains(ca, sa) && k.h.b.tcp.tw.contains(sa, ca));
    k.h.sim.run_for(ms(200));
    assert!(k.h.a.tcp.tw.is_empty() && k.h.b.tcp.tw.is_empty());
    assert_eq!(k.h.a.tcp.mib.get(TcpExt::TW), 1);
    assert_eq!(k.h.b.tcp.mib.get(TcpExt::TW), 1);
    assert_eq!(k.h.a.tcp.snmp.get(Tcp::OutRsts), 0);
    assert_eq!(k.h.b.tcp.snmp.get(Tcp::OutRsts), 0);
}

// ---------------------------------------------------------------------------------
// Half-close.
// ---------------------------------------------------------------------------------

/// shutdown(SHUT_WR) sends a FIN after the queued data (FIN_WAIT1 → FIN_WAIT2); the
/// server reads the data, then EOF, and in CLOSE_WAIT still sends — a response larger
/// than a window — which the half-closed client receives whole (its receive side is
/// open: no reset for data in FIN_WAIT2 after a shutdown, unlike after close). A send
/// on the shut-down side fails with EPIPE. Then the server closes: LAST_ACK → CLOSE,
/// the client reads EOF and ends in TIME_WAIT.
#[test]
fn half_close_keeps_the_other_direction_open_until_the_full_close() {
    let k = Conn::new(132);
    let request = pattern(20_000);
    let mut sent = 0;
    push(&k.c, &request, &mut sent);
    assert_eq!(sent, request.len());
    k.c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(k.c.state(), TcpState::FinWait1);
    assert_eq!(
        k.c.send(b"x").unwrap_err().raw_os_error(),
        Some(errno::EPIPE)
    );
    let mut got = Vec::new();
    let eof =
        k.h.sim
            .run_while(|| !drain(&k.s, &mut got), Duration::from_secs(2));
    assert!(eof);
    assert!(got == request);
    assert_eq!(k.s.state(), TcpState::CloseWait);
    k.h.sim.run_for(D + ms(1));
    assert_eq!(k.c.state(), TcpState::FinWait2, "the FIN was ACKed");
    let response = pattern(300_000);
    let mut rsent = 0;
    let mut back = Vec::new();
    let ok = k.h.sim.run_while(
        || {
            push(&k.s, &response, &mut rsent);
            drain(&k.c, &mut back);
            back.len() < response.len()
        },
        Duration::from_secs(10),
    );
    assert!(
        ok && back == response,
        "{} of {}",
        back.len(),
        response.len()
    );
    assert_eq!(k.c.state(), TcpState::FinWait2);
    k.s.close();
    assert_eq!(k.s.state(), TcpState::LastAck);
    let mut buf = [0u8; 8];
    let eof = k.h.sim.run_while(
        || k.c.recv(&mut buf).map_or(true, |n| n != 0),
        Duration::from_secs(1),
    );
    assert!(eof, "EOF after the server's FIN");
    k.h.sim.run_for(RTT);
    assert_eq!(k.s.state(), TcpState::Close);
    assert!(k.h.a.tcp.tw.contains(k.c.local_addr(), server()));
    assert!(k.h.b.tcp.tw.is_empty());
    for st in [&k.h.a, &k.h.b] {
        assert_eq!(st.tcp.snmp.get(Tcp::OutRsts), 0);
        assert_eq!(st.tcp.mib.get(TcpExt::TCPAbortOnData), 0);
    }
    drop(k.l);
}
