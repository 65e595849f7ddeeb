//! RSTs and challenge ACKs on the virtual clock, written from Linux's tcp_input.c and
//! tcp_ipv4.c and RFC 9293 / RFC 5961 / RFC 2525: connections refused by RST|ACK,
//! in-window RSTs and SYNs answered with rate-limited challenge ACKs, exact RSTs
//! resetting (also at the FIN's sequence in CLOSE_WAIT), out-of-window segments and
//! their dupACKs, aborts by `SO_LINGER` 0 and by `tcp_close` with unread data, stray
//! ACKs to a listener, data after close, and Tcp: EstabResets.
//!
//! Every time is virtual.

mod common;

use std::net::{Shutdown, SocketAddrV4};
use std::time::Duration;

use usnet::sock::errno;
use usnet::tcp::{SockOpt, Tcp, TcpExt, TcpState};
use usnet::testutil::{ip, SegLog, SegRecord};

use common::lifecycle::{
    connect, cut_tcp, hosts, listen, ms, segs_after, server, Conn, ACK, FIN, RST, SYN, TO_A, TO_B,
};
use common::{craft_tcp, craft_tcp_opts, inject, ts_opt, RTT};

/// A SYN to a port nobody listens on gets `tcp_v4_send_reset`'s answer: RST|ACK with
/// seq 0 and ack = the SYN's seq + 1 (RFC 9293 § 3.10.7.1); the connect fails with
/// ECONNREFUSED (`tcp_reset` in SYN_SENT) and counts AttemptFails.
#[test]
fn connect_to_a_closed_port_is_refused_by_rst_ack() {
    let h = hosts(114);
    let log = SegLog::attach(&h.da);
    let c = connect(&h, SocketAddrV4::new(ip(10, 0, 0, 2), 9));
    let iss = c.with_tcb(|t| t.iss);
    h.sim.run_for(RTT + ms(1));
    assert_eq!(c.state(), TcpState::Close);
    assert_eq!(
        c.take_error().and_then(|e| e.raw_os_error()),
        Some(errno::ECONNREFUSED)
    );
    let rsts: Vec<SegRecord> = log
        .segs
        .lock()
        .iter()
        .filter(|s| !s.outgoing && s.flags & RST != 0)
        .copied()
        .collect();
    assert_eq!(rsts.len(), 1);
    assert_eq!(rsts[0].flags, RST | ACK);
    assert_eq!((rsts[0].seq, rsts[0].ack), (0, iss.wrapping_add(1)));
    assert_eq!(h.b.tcp.snmp.get(Tcp::OutRsts), 1);
    assert_eq!(h.a.tcp.snmp.get(Tcp::AttemptFails), 1);
    assert_eq!(h.a.tcp.snmp.get(Tcp::EstabResets), 0);
    // A retry is refused again (nothing cached).
    let c2 = connect(&h, SocketAddrV4::new(ip(10, 0, 0, 2), 9));
    h.sim.run_for(RTT + ms(1));
    assert_eq!(
        c2.take_error().and_then(|e| e.raw_os_error()),
        Some(errno::ECONNREFUSED)
    );
}

/// RFC 5961 § 3.2: a RST inside the window but not at rcv_nxt is answered with a
/// challenge ACK (seq = snd_nxt, ack = rcv_nxt) and does not end the connection.
#[test]
fn in_window_rst_gets_a_challenge_ack_and_the_connection_survives() {
    let k = Conn::new(115);
    let (rcv_nxt, snd_nxt) = k.server_seqs();
    let t = k.h.sim.now();
    inject(
        &k.h,
        craft_tcp(
            k.c.local_addr(),
            server(),
            rcv_nxt.wrapping_add(2000),
            0,
            RST,
            0,
            &[],
            false,
        ),
        false,
    );
    k.h.sim.run_for(ms(20));
    assert_eq!(k.s.state(), TcpState::Established);
    assert_eq!(k.h.b.tcp.mib.get(TcpExt::TCPChallengeACK), 1);
    let out = segs_after(&k.blog, t, true);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].flags, ACK);
    assert_eq!((out[0].seq, out[0].ack), (snd_nxt, rcv_nxt));
    assert_eq!(k.h.b.tcp.snmp.get(Tcp::EstabResets), 0);
    // Both directions still work.
    k.c.send(b"ping").unwrap();
    k.s.send(b"pong").unwrap();
    k.h.sim.run_for(RTT);
    let mut buf = [0u8; 8];
    assert_eq!(k.s.recv(&mut buf).unwrap(), 4);
    assert_eq!(k.c.recv(&mut buf).unwrap(), 4);
}

/// A RST at exactly rcv_nxt resets the connection: the reader gets ECONNRESET
/// (`tcp_reset` in ESTABLISHED), the socket is closed, Tcp: EstabResets counts it, and
/// a later send fails with EPIPE.
#[test]
fn rst_at_rcv_nxt_resets_and_the_reader_sees_econnreset() {
    let k = Conn::new(116);
    let (rcv_nxt, _) = k.server_seqs();
    inject(
        &k.h,
        craft_tcp(k.c.local_addr(), server(), rcv_nxt, 0, RST, 0, &[], false),
        false,
    );
    k.h.sim.run_for(ms(20));
    assert_eq!(k.s.state(), TcpState::Close);
    let mut buf = [0u8; 8];
    assert_eq!(
        k.s.recv(&mut buf).unwrap_err().raw_os_error(),
        Some(errno::ECONNRESET)
    );
    assert_eq!(k.h.b.tcp.snmp.get(Tcp::EstabResets), 1);
    assert_eq!(k.h.b.tcp.mib.get(TcpExt::TCPChallengeACK), 0);
    assert_eq!(
        k.s.send(b"x").unwrap_err().raw_os_error(),
        Some(errno::EPIPE)
    );
    assert!(k.h.b.tcp.ehash.read().is_empty(), "unhashed");
}

/// RFC 5961 § 4.2: a SYN on a synchronized connection (in window or not) gets a
/// challenge ACK, counted TCPSYNChallenge and TCPChallengeACK; the connection lives.
#[test]
fn syn_on_an_established_connection_gets_a_challenge_ack() {
    let k = Conn::new(117);
    let (rcv_nxt, snd_nxt) = k.server_seqs();
    let t = k.h.sim.now();
    inject(
        &k.h,
        craft_tcp_opts(
            k.c.local_addr(),
            server(),
            rcv_nxt.wrapping_add(10),
            0,
            SYN,
            65535,
            &ts_opt(k.s.with_tcb(|t| t.ts_recent), 0),
            &[],
            false,
        ),
        false,
    );
    k.h.sim.run_for(ms(20));
    assert_eq!(k.h.b.tcp.mib.get(TcpExt::TCPSYNChallenge), 1);
    assert_eq!(k.h.b.tcp.mib.get(TcpExt::TCPChallengeACK), 1);
    assert_eq!(k.s.state(), TcpState::Established);
    let out = segs_after(&k.blog, t, true);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(
        (out[0].flags, out[0].seq, out[0].ack),
        (ACK, snd_nxt, rcv_nxt)
    );
    assert_eq!(k.h.b.tcp.snmp.get(Tcp::OutRsts), 0, "no RST for the SYN");
}

/// `tcp_send_challenge_ack` first applies the per-socket rate limit
/// (`__tcp_oow_rate_limited`, tcp_invalid_ratelimit = 500 ms): a second in-window RST
/// 100 ms after the first gets no ACK and counts TCPACKSkippedChallenge; one 600 ms
/// later is answered again.
#[test]
fn challenge_acks_are_rate_limited_per_socket() {
    let k = Conn::new(118);
    let (rcv_nxt, _) = k.server_seqs();
    let t = k.h.sim.now();
    for delay in [0u64, 100, 500] {
        k.h.sim.run_for(ms(delay));
        inject(
            &k.h,
            craft_tcp(
                k.c.local_addr(),
                server(),
                rcv_nxt.wrapping_add(5000),
                0,
                RST,
                0,
                &[],
                false,
            ),
            false,
        );
    }
    k.h.sim.run_for(ms(20));
    assert_eq!(k.s.state(), TcpState::Established);
    assert_eq!(segs_after(&k.blog, t, true).len(), 2);
    assert_eq!(k.h.b.tcp.mib.get(TcpExt::TCPChallengeACK), 2);
    assert_eq!(k.h.b.tcp.mib.get(TcpExt::TCPACKSkippedChallenge), 1);
}

/// Segments outside the receive window are answered with a duplicate ACK
/// (`tcp_validate_incoming` → `tcp_send_dupack`), rate limited per socket by
/// `tcp_oow_rate_limited` — except segments carrying data (seq != end_seq, no SYN),
/// which "are not likely part of an ACK loop" and are always answered. Only a
/// suppressed ACK counts TCPACKSkippedSeq; an out-of-window RST is dropped silently
/// and counts nothing.
#[test]
fn out_of_window_segments_get_dupacks_rate_limited_only_without_data() {
    let k = Conn::new(138);
    let (rcv_nxt, snd_nxt) = k.server_seqs();
    let ts = ts_opt(k.s.with_tcb(|t| t.ts_recent), 0);
    let from = k.c.local_addr();
    let t = k.h.sim.now();
    // Old data (already received), twice, 100 ms apart: two duplicate ACKs.
    for _ in 0..2 {
        let old = craft_tcp_opts(
            from,
            server(),
            rcv_nxt.wrapping_sub(1000),
            snd_nxt,
            ACK,
            500,
            &ts,
            &[9; 100],
            false,
        );
        inject(&k.h, old, false);
        k.h.sim.run_for(ms(100));
    }
    assert_eq!(segs_after(&k.blog, t, true).len(), 2, "both answered");
    // A RST far outside the window: dropped, nothing counted.
    let rst = craft_tcp(
        from,
        server(),
        rcv_nxt.wrapping_add(1 << 30),
        0,
        RST,
        0,
        &[],
        false,
    );
    inject(&k.h, rst, false);
    k.h.sim.run_for(ms(600));
    let t2 = k.h.sim.now();
    // Pure ACKs beyond the window, twice, 100 ms apart: the second is rate limited.
    for _ in 0..2 {
        let far = craft_tcp_opts(
            from,
            server(),
            rcv_nxt.wrapping_add(1 << 30),
            snd_nxt,
            ACK,
            500,
            &ts,
            &[],
            false,
        );
        inject(&k.h, far, false);
        k.h.sim.run_for(ms(100));
    }
    assert_eq!(segs_after(&k.blog, t2, true).len(), 1);
    assert_eq!(k.h.b.tcp.mib.get(TcpExt::TCPACKSkippedSeq), 1);
    assert_eq!(k.s.state(), TcpState::Established);
}

/// `tcp_reset_check`: in CLOSE_WAIT, LAST_ACK and CLOSING a RST whose sequence is
/// rcv_nxt − 1 (the peer's FIN) is accepted as exact too — stacks that send the RST
/// with the FIN's sequence. `tcp_reset` in CLOSE_WAIT reports EPIPE.
#[test]
fn rst_at_the_fin_sequence_resets_a_close_wait_connection() {
    let k = Conn::new(119);
    k.c.shutdown(Shutdown::Write).unwrap();
    k.h.sim.run_for(RTT + ms(1));
    assert_eq!(k.s.state(), TcpState::CloseWait);
    let (rcv_nxt, _) = k.server_seqs();
    inject(
        &k.h,
        craft_tcp(
            k.c.local_addr(),
            server(),
            rcv_nxt.wrapping_sub(1),
            0,
            RST,
            0,
            &[],
            false,
        ),
        false,
    );
    k.h.sim.run_for(ms(20));
    assert_eq!(k.s.state(), TcpState::Close);
    assert_eq!(
        k.s.take_error().and_then(|e| e.raw_os_error()),
        Some(errno::EPIPE)
    );
    assert_eq!(k.h.b.tcp.mib.get(TcpExt::TCPChallengeACK), 0);
}

/// SO_LINGER with a zero timeout: `tcp_close` → `tcp_disconnect` sends a RST (seq =
/// snd_nxt) instead of a FIN, counts TCPAbortOnData, and leaves no TIME_WAIT on either
/// side; the peer's reader gets ECONNRESET.
#[test]
fn linger_zero_close_sends_rst_and_leaves_no_time_wait() {
    let k = Conn::new(120);
    let snd_nxt = k.c.with_tcb(|t| t.snd_nxt);
    k.c.set_opt(SockOpt::Linger(Some(Duration::ZERO))).unwrap();
    let t = k.h.sim.now();
    k.c.close();
    assert_eq!(k.c.state(), TcpState::Close);
    k.h.sim.run_for(ms(20));
    let out = segs_after(&k.log, t, true);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].flags & RST != 0 && out[0].flags & FIN == 0);
    assert_eq!(out[0].seq, snd_nxt);
    assert_eq!(k.h.a.tcp.snmp.get(Tcp::OutRsts), 1);
    assert_eq!(k.h.a.tcp.mib.get(TcpExt::TCPAbortOnData), 1);
    assert!(k.h.a.tcp.tw.is_empty() && k.h.b.tcp.tw.is_empty());
    let mut buf = [0u8; 8];
    assert_eq!(
        k.s.recv(&mut buf).unwrap_err().raw_os_error(),
        Some(errno::ECONNRESET)
    );
    assert_eq!(k.s.state(), TcpState::Close);
    assert_eq!(k.h.b.tcp.snmp.get(Tcp::OutRsts), 0, "no RST answers a RST");
}

/// RFC 2525 § 2.17 / `tcp_close`: closing with unread data sends a RST, not a FIN
/// (TCPAbortOnClose). If that RST is lost, the peer's next segment — here the RTO
/// retransmission of its data (b closed before its delayed ACK was due; the new
/// bytes wait behind Nagle) — finds no connection: the listener answers the ACK
/// with a RST (seq = the segment's ack), which resets the peer.
#[test]
fn close_with_unread_data_resets_and_later_data_finds_no_socket() {
    let k = Conn::new(121);
    k.c.send(b"never read").unwrap();
    k.h.sim.run_for(RTT);
    // Lose the RST tcp_close sends.
    cut_tcp(&k.h, TO_A, true);
    let t = k.h.sim.now();
    k.s.close();
    k.h.sim.run_for(ms(20));
    let out = segs_after(&k.blog, t, true);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].flags & RST != 0 && out[0].flags & FIN == 0);
    assert_eq!(k.h.b.tcp.mib.get(TcpExt::TCPAbortOnClose), 1);
    assert_eq!(k.h.b.tcp.snmp.get(Tcp::OutRsts), 1);
    assert_eq!(k.c.state(), TcpState::Established, "the RST was lost");
    cut_tcp(&k.h, TO_A, false);
    let c_rcv_nxt = k.c.with_tcb(|t| t.rcv_nxt);
    let t2 = k.h.sim.now();
    k.c.send(b"more").unwrap();
    k.h.sim.run_for(ms(500));
    assert_eq!(k.h.b.tcp.snmp.get(Tcp::OutRsts), 2);
    let rst = segs_after(&k.log, t2, false);
    assert_eq!(rst.len(), 1, "{rst:?}");
    assert_eq!((rst[0].flags & RST, rst[0].seq), (RST, c_rcv_nxt));
    let mut buf = [0u8; 8];
    assert_eq!(
        k.c.recv(&mut buf).unwrap_err().raw_os_error(),
        Some(errno::ECONNRESET)
    );
    assert_eq!(k.c.state(), TcpState::Close);
}

/// A segment with ACK that reaches a listener and matches no request is answered with
/// a RST (`tcp_rcv_state_process` in LISTEN: `if (th->ack) return 1`). Linux only tries
/// it as a SYN cookie when the SYN queue overflowed in the last two minutes
/// (`cookie_v4_check`: `tcp_synq_no_recent_overflow`), so a stray ACK without any
/// flood does not count SyncookiesFailed.
#[test]
fn stray_ack_to_a_listener_is_reset_without_a_failed_cookie() {
    let h = hosts(136);
    let _l = listen(&h, 80, 16);
    let log = SegLog::attach(&h.da);
    let from = SocketAddrV4::new(ip(10, 0, 0, 1), 40000);
    inject(
        &h,
        craft_tcp(from, server(), 1000, 5000, ACK, 100, &[], false),
        false,
    );
    h.sim.run_for(RTT + ms(1));
    let rst: Vec<SegRecord> = log.segs.lock().clone();
    assert_eq!(rst.len(), 1, "{rst:?}");
    assert_eq!((rst[0].flags & RST, rst[0].seq), (RST, 5000));
    assert_eq!(h.b.tcp.snmp.get(Tcp::OutRsts), 1);
    assert_eq!(h.b.tcp.mib.get(TcpExt::SyncookiesFailed), 0);
}

/// After close() (SHUT_RDWR) a socket in FIN_WAIT2 that receives new data answers
/// with a RST (RFC 1122 § 4.2.2.13; `tcp_rcv_state_process` counts TCPAbortOnData and
/// resets); the peer in CLOSE_WAIT gets EPIPE (`tcp_reset` in CLOSE_WAIT).
#[test]
fn data_after_close_in_fin_wait2_is_answered_with_rst() {
    let k = Conn::new(122);
    k.c.close();
    // The FIN's ACK is delayed by the peer in CLOSE_WAIT (pingpong mode).
    k.h.sim.run_for(RTT + ms(250));
    assert_eq!(k.c.state(), TcpState::FinWait2);
    assert_eq!(k.s.state(), TcpState::CloseWait);
    let t = k.h.sim.now();
    k.s.send(b"too late").unwrap();
    k.h.sim.run_for(RTT + ms(1));
    assert_eq!(k.h.a.tcp.mib.get(TcpExt::TCPAbortOnData), 1);
    let rst: Vec<SegRecord> = segs_after(&k.log, t, true)
        .into_iter()
        .filter(|s| s.flags & RST != 0)
        .collect();
    assert_eq!(rst.len(), 1);
    assert_eq!(k.c.state(), TcpState::Close);
    assert!(k.h.a.tcp.tw.is_empty(), "a reset leaves no TIME_WAIT");
    assert_eq!(k.s.state(), TcpState::Close);
    assert_eq!(
        k.s.take_error().and_then(|e| e.raw_os_error()),
        Some(errno::EPIPE)
    );
}

/// Tcp: EstabResets (RFC 4022 tcpEstabResets) counts every ESTABLISHED/CLOSE_WAIT →
/// CLOSED transition — `tcp_set_state(sk, TCP_CLOSE)` increments it whatever the cause:
/// a received RST, but also our own abort by SO_LINGER 0 or by closing with unread
/// data, and a timeout.
#[test]
fn estab_resets_counts_local_aborts_too() {
    let k = Conn::new(123);
    k.c.set_opt(SockOpt::Linger(Some(Duration::ZERO))).unwrap();
    k.c.close();
    k.h.sim.run_for(ms(20));
    assert_eq!(k.h.b.tcp.snmp.get(Tcp::EstabResets), 1, "received RST");
    assert_eq!(k.h.a.tcp.snmp.get(Tcp::EstabResets), 1, "linger-0 abort");
    let k = Conn::new(124);
    k.c.send(b"unread").unwrap();
    k.h.sim.run_for(RTT);
    k.s.close();
    k.h.sim.run_for(ms(20));
    assert_eq!(k.h.b.tcp.snmp.get(Tcp::EstabResets), 1, "unread-data abort");
    let k = Conn::new(125);
    k.c.set_opt(SockOpt::UserTimeout(Duration::from_secs(1)))
        .unwrap();
    cut_tcp(&k.h, TO_B, true);
    k.c.send(b"lost").unwrap();
    k.h.sim.run_for(Duration::from_secs(5));
    assert_eq!(k.c.state(), TcpState::Close);
    assert_eq!(k.h.a.tcp.snmp.get(Tcp::EstabResets), 1, "timeout");
}
