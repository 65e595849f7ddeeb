//! Opening connections on the virtual clock, written from Linux's tcp_input.c,
//! tcp_timer.c, tcp_minisocks.c, tcp_ipv4.c and inet_connection_sock.c and RFC 9293 /
//! RFC 6528:
//!
//! * SYN retransmission with backoff and `TCP_SYNCNT`;
//! * the accept queue (`sk_acceptq_is_full`), the SYN queue and SYN cookies
//!   (`tcp_conn_request`, `tcp_check_req`, `cookie_v4_check`);
//! * simultaneous open through SYN_RECV;
//! * ephemeral ports and RFC 6528 ISNs, including a new incarnation of a 4-tuple
//!   reopening a TIME_WAIT pair.
//!
//! Every time is virtual.

mod common;

use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::Duration;

use usnet::sock::errno;
use usnet::tcp::{SockOpt, Tcp, TcpExt, TcpSock, TcpState};
use usnet::testutil::{ip, SegLog, TwoHosts};

use common::lifecycle::{
    accept_for, connect, cut_tcp, drain, hosts, listen, ms, pattern, push, secs, server, ACK, SYN,
    TO_B,
};
use common::{craft_tcp, inject, ping_pong, D, RTT};

// ---------------------------------------------------------------------------------
// SYN retries.
// ---------------------------------------------------------------------------------

/// SYN_SENT retransmits the SYN with TCP_TIMEOUT_INIT = 1 s doubling (classic Linux;
/// since 6.5 `net.ipv4.tcp_syn_linear_timeouts` = 4 makes the first four 1 s apart,
/// which this stack does not model — it matches Linux with that sysctl at 0).
/// `tcp_write_timeout` gives up when `icsk_retransmits >= syn_retries`: with
/// TCP_SYNCNT 2, SYNs at 0, 1 and 3 s and ETIMEDOUT when the third timer (4 s) fires
/// at 7 s; with the default tcp_syn_retries = 6, seven SYNs and ETIMEDOUT at 127 s.
#[test]
fn syns_back_off_from_1_s_and_syncnt_bounds_the_connect() {
    let h = hosts(105);
    let log = SegLog::attach(&h.da);
    cut_tcp(&h, TO_B, true);
    let t0 = h.sim.now();
    let c2 = TcpSock::new(&h.a);
    c2.set_nonblocking(true);
    c2.set_opt(SockOpt::SynCnt(2)).unwrap();
    assert_eq!(
        c2.connect(server()).unwrap_err().raw_os_error(),
        Some(errno::EINPROGRESS)
    );
    let c6 = connect(&h, server());
    let (iss2, iss6) = (c2.with_tcb(|t| t.iss), c6.with_tcb(|t| t.iss));
    let syn_times = |iss: u32| -> Vec<f64> {
        log.out()
            .iter()
            .filter(|s| s.flags == SYN && s.seq == iss)
            .map(|s| secs(s.at, t0))
            .collect()
    };
    h.sim
        .run_while(|| c2.state() == TcpState::SynSent, Duration::from_secs(30));
    let gave_up = secs(h.sim.now(), t0);
    assert!((gave_up - 7.0).abs() < 0.003, "gave up at {gave_up:.3} s");
    let s2 = syn_times(iss2);
    assert_eq!(s2.len(), 3, "{s2:?}");
    for (got, want) in s2.iter().zip([0.0, 1.0, 3.0]) {
        assert!((got - want).abs() < 0.003, "{s2:?}");
    }
    assert_eq!(c2.state(), TcpState::Close);
    assert_eq!(
        c2.take_error().and_then(|e| e.raw_os_error()),
        Some(errno::ETIMEDOUT)
    );
    assert_eq!(h.a.tcp.snmp.get(Tcp::AttemptFails), 1);
    assert_eq!(h.a.tcp.mib.get(TcpExt::TCPAbortOnTimeout), 1);
    h.sim
        .run_while(|| c6.state() == TcpState::SynSent, Duration::from_secs(300));
    let gave_up = secs(h.sim.now(), t0);
    assert!(
        (gave_up - 127.0).abs() < 0.01,
        "default tcp_syn_retries: gave up at {gave_up:.3} s"
    );
    let s6 = syn_times(iss6);
    assert_eq!(s6.len(), 7, "{s6:?}");
    for (got, want) in s6.iter().zip([0.0, 1.0, 3.0, 7.0, 15.0, 31.0, 63.0]) {
        assert!((got - want).abs() < 0.01, "{s6:?}");
    }
    assert_eq!(
        c6.take_error().and_then(|e| e.raw_os_error()),
        Some(errno::ETIMEDOUT)
    );
    let m = |c| h.a.tcp.mib.get(c);
    let retrans = h.a.tcp.snmp.get(Tcp::RetransSegs);
    assert_eq!(
        retrans,
        2 + 6,
        "Tcp: RetransSegs counts real retransmissions"
    );
    assert_eq!(
        m(TcpExt::TCPTimeouts),
        3 + 7,
        "every expiry, the last included"
    );
    assert_eq!(h.a.tcp.snmp.get(Tcp::ActiveOpens), 2);
    assert_eq!(h.a.tcp.snmp.get(Tcp::AttemptFails), 2);
}

/// `TCPSynRetrans` is counted in `__tcp_retransmit_skb` for each SYN actually
/// retransmitted; the expiry that gives up retransmits nothing.
#[test]
fn syn_timeout_counts_only_real_syn_retransmissions() {
    let h = hosts(106);
    cut_tcp(&h, TO_B, true);
    let c = TcpSock::new(&h.a);
    c.set_nonblocking(true);
    c.set_opt(SockOpt::SynCnt(2)).unwrap();
    let _ = c.connect(server());
    h.sim
        .run_while(|| c.state() == TcpState::SynSent, Duration::from_secs(30));
    assert_eq!(h.a.tcp.snmp.get(Tcp::RetransSegs), 2);
    assert_eq!(h.a.tcp.mib.get(TcpExt::TCPSynRetrans), 2);
}

// ---------------------------------------------------------------------------------
// The accept queue.
// ---------------------------------------------------------------------------------

/// listen(2): `sk_acceptq_is_full` is `sk_ack_backlog > sk_max_ack_backlog`, so three
/// children wait. Then:
/// * a new SYN is dropped in `tcp_conn_request` (ListenOverflows, ListenDrops); the
///   client retransmits it at 1 s (dropped again) and at 3 s, when accept() has made
///   room, and gets in;
/// * a handshake whose SYN was taken while there was room but whose ACK arrives when
///   the queue is full: `tcp_v4_syn_recv_sock` refuses the child (ListenOverflows), the
///   request stays (`inet_rsk(req)->acked`), the client believes it is connected, and
///   the SYN-ACK retransmitted at 1 s (answered by the client with a challenge ACK,
///   TCPSYNChallenge) is dropped again while the queue is full; after accept() the one
///   at 3 s completes it.
#[test]
fn accept_queue_holds_backlog_plus_one_and_completes_the_rest_after_accept() {
    let h = hosts(126);
    let log = SegLog::attach(&h.da);
    let l = listen(&h, 80, 2);
    let m = |c| h.b.tcp.mib.get(c);
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(connect(&h, server()));
        h.sim.run_for(ms(50));
    }
    assert!(clients.iter().all(|c| c.state() == TcpState::Established));
    assert_eq!(l.accept_queue_len(), 3, "backlog + 1");
    assert_eq!(m(TcpExt::ListenOverflows), 0);
    // A fourth SYN: dropped, no SYN-ACK.
    let c4 = connect(&h, server());
    let t4 = h.sim.now();
    let iss4 = c4.with_tcb(|t| t.iss);
    h.sim.run_for(ms(50));
    assert_eq!(c4.state(), TcpState::SynSent);
    assert_eq!((m(TcpExt::ListenOverflows), m(TcpExt::ListenDrops)), (1, 1));
    let synacks_to_c4 = || {
        log.segs
            .lock()
            .iter()
            .filter(|s| !s.outgoing && s.flags == SYN | ACK && s.ack == iss4.wrapping_add(1))
            .count()
    };
    assert_eq!(synacks_to_c4(), 0);
    h.sim.run_until(t4 + ms(1500));
    assert_eq!(m(TcpExt::ListenOverflows), 2, "the 1 s retransmission too");
    let mut accepted = vec![l.accept().unwrap()];
    h.sim.run_until(t4 + ms(2990));
    assert_eq!(c4.state(), TcpState::SynSent);
    h.sim.run_until(t4 + ms(3050));
    assert_eq!(c4.state(), TcpState::Established, "the 3 s SYN got in");
    assert_eq!(synacks_to_c4(), 1);
    assert_eq!(l.accept_queue_len(), 3);
    // Room for one; two handshakes at once.
    accepted.push(l.accept().unwrap());
    let c5 = connect(&h, server());
    let c6 = connect(&h, server());
    let t5 = h.sim.now();
    let overflows = m(TcpExt::ListenOverflows);
    h.sim.run_for(ms(100));
    assert_eq!(c5.state(), TcpState::Established);
    assert_eq!(c6.state(), TcpState::Established, "the client thinks so");
    assert_eq!(l.accept_queue_len(), 3);
    assert_eq!(m(TcpExt::ListenOverflows), overflows + 1, "the ACK dropped");
    h.sim.run_until(t5 + ms(1500));
    assert_eq!(
        m(TcpExt::ListenOverflows),
        overflows + 2,
        "the answer to the 1 s SYN-ACK too"
    );
    assert!(h.a.tcp.mib.get(TcpExt::TCPSYNChallenge) >= 1);
    h.sim.run_until(t5 + ms(2000));
    while let Ok(s) = l.accept() {
        accepted.push(s);
    }
    assert_eq!(accepted.len(), 5);
    h.sim.run_until(t5 + ms(2990));
    assert!(l.accept().is_err(), "nothing before the 3 s SYN-ACK");
    h.sim.run_until(t5 + ms(3050));
    accepted.push(l.accept().expect("completed by the 3 s SYN-ACK"));
    assert_eq!(m(TcpExt::ListenOverflows), overflows + 2);
    assert_eq!(m(TcpExt::ListenDrops), m(TcpExt::ListenOverflows));
    // Every client has its own child, and data flows on each.
    clients.extend([c4, c5, c6]);
    let mut peers: Vec<SocketAddrV4> = accepted.iter().map(|s| s.peer_addr().unwrap()).collect();
    peers.sort();
    let mut locals: Vec<SocketAddrV4> = clients.iter().map(|c| c.local_addr()).collect();
    locals.sort();
    assert_eq!(peers, locals);
    for (i, c) in clients.iter().enumerate() {
        c.send(&[i as u8; 3]).unwrap();
    }
    h.sim.run_for(RTT);
    for s in &accepted {
        s.set_nonblocking(true);
        let i = clients
            .iter()
            .position(|c| c.local_addr() == s.peer_addr().unwrap())
            .unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(s.recv(&mut buf).unwrap(), 3);
        assert_eq!(buf[0], i as u8);
    }
}

// ---------------------------------------------------------------------------------
// The SYN queue and SYN cookies.
// ---------------------------------------------------------------------------------

/// SYNs from spoofed sources that never answer (10.0.0.99, distinct ports).
fn spoofed_syns(h: &TwoHosts, n: u32, port: u16) {
    for i in 0..n {
        inject(
            h,
            craft_tcp(
                SocketAddrV4::new(ip(10, 0, 0, 99), 1024 + i as u16),
                SocketAddrV4::new(ip(10, 0, 0, 2), port),
                i.wrapping_mul(2_654_435_761),
                0,
                SYN,
                65535,
                &[],
                false,
            ),
            false,
        );
    }
    h.sim.run_for(ms(20));
}

fn syn_queue_len(l: &Arc<TcpSock>) -> usize {
    l.with_tcb(|t| t.listen.as_ref().map_or(0, |q| q.syn_queue.len()))
}

/// tcp_syncookies = 0, listen(4): once `inet_csk_reqsk_queue_is_full` (the SYN queue
/// reached the backlog: `>=`, or `>` after the 2025 change "tcp/dccp: allow a
/// connection when sk_max_ack_backlog is zero"), `tcp_syn_flood_action`
/// counts TCPReqQFullDrop and the SYN is dropped (ListenDrops). A real client's SYN
/// is dropped too, until the flood's requests die after tcp_synack_retries (1 here:
/// SYN-ACKs at 0 and 1 s, gone at 3 s); its SYN retransmitted after that gets in.
#[test]
fn without_syn_cookies_a_full_syn_queue_drops_syns_until_requests_expire() {
    let h = hosts(127);
    h.b.sysctl.set("net.ipv4.tcp_syncookies", 0).unwrap();
    h.b.sysctl.set("net.ipv4.tcp_synack_retries", 1).unwrap();
    let l = listen(&h, 80, 4);
    let t_flood = h.sim.now();
    spoofed_syns(&h, 20, 80);
    let m = |c| h.b.tcp.mib.get(c);
    let kept = syn_queue_len(&l) as u64;
    assert!(kept == 4 || kept == 5, "{kept} requests for backlog 4");
    assert_eq!(m(TcpExt::TCPReqQFullDrop), 20 - kept);
    assert_eq!(m(TcpExt::ListenDrops), 20 - kept);
    assert_eq!(m(TcpExt::SyncookiesSent), 0);
    h.sim.run_until(t_flood + ms(500));
    let c = connect(&h, server());
    h.sim.run_until(t_flood + ms(3400));
    assert_eq!(
        c.state(),
        TcpState::SynSent,
        "SYNs at 0.5 and 1.5 s dropped"
    );
    assert_eq!(m(TcpExt::TCPReqQFullDrop), 20 - kept + 2);
    assert_eq!(syn_queue_len(&l), 0, "the flood's requests expired at 3 s");
    h.sim.run_until(t_flood + ms(3500) + RTT + ms(5));
    assert_eq!(c.state(), TcpState::Established, "the 3.5 s SYN got in");
    assert!(l.accept().is_ok());
}

/// Without cookies, `tcp_conn_request` keeps the last quarter of
/// tcp_max_syn_backlog for peers proven alive: a SYN from an unproven peer is dropped
/// when `max_syn_backlog − queue_len < max_syn_backlog >> 2` (ListenDrops only). With
/// tcp_max_syn_backlog = 8 and a large listen backlog, 7 requests are kept.
#[test]
fn tcp_max_syn_backlog_keeps_its_last_quarter_for_proven_peers() {
    let h = hosts(128);
    h.b.sysctl.set("net.ipv4.tcp_syncookies", 0).unwrap();
    h.b.sysctl.set("net.ipv4.tcp_max_syn_backlog", 8).unwrap();
    let l = listen(&h, 80, 128);
    spoofed_syns(&h, 20, 80);
    assert_eq!(syn_queue_len(&l), 7);
    assert_eq!(h.b.tcp.mib.get(TcpExt::ListenDrops), 13);
    assert_eq!(h.b.tcp.mib.get(TcpExt::TCPReqQFullDrop), 0);
}

/// tcp_syncookies = 1 (the default): beyond the backlog every SYN is answered with a
/// cookie SYN-ACK (SyncookiesSent, TCPReqQFullDoCookies) instead of being dropped, and
/// nothing is counted as dropped. A real client that arrives during the flood gets a
/// cookie too; its ACK passes `cookie_v4_check` (SyncookiesRecv), the child is
/// created, and the options the cookie carried in the timestamp (window scaling,
/// SACK) are in force on both ends.
#[test]
fn syn_cookies_answer_beyond_the_backlog_and_the_client_connects() {
    let h = hosts(129);
    let l = listen(&h, 80, 4);
    spoofed_syns(&h, 20, 80);
    let m = |c| h.b.tcp.mib.get(c);
    let kept = syn_queue_len(&l) as u64;
    assert!(kept == 4 || kept == 5, "{kept} requests for backlog 4");
    assert_eq!(m(TcpExt::SyncookiesSent), 20 - kept);
    assert_eq!(m(TcpExt::TCPReqQFullDoCookies), 20 - kept);
    assert_eq!(m(TcpExt::TCPReqQFullDrop), 0);
    assert_eq!(m(TcpExt::ListenDrops), 0);
    let c = connect(&h, server());
    let s = accept_for(&h, &l, &c);
    assert_eq!(m(TcpExt::SyncookiesSent), 20 - kept + 1, "the client's too");
    assert_eq!(m(TcpExt::SyncookiesRecv), 1);
    assert_eq!(m(TcpExt::SyncookiesFailed), 0);
    assert_eq!(
        syn_queue_len(&l) as u64,
        kept,
        "no state for cookie clients"
    );
    let (ci, si) = (c.info(), s.info());
    assert_eq!(ci.options, (true, true, true), "timestamps, SACK, wscale");
    assert_eq!(si.options, (true, true, true));
    assert_eq!((ci.wscale.0, ci.wscale.1), (si.wscale.1, si.wscale.0));
    let data = pattern(300_000);
    let (mut sent, mut got) = (0, Vec::new());
    let ok = h.sim.run_while(
        || {
            push(&c, &data, &mut sent);
            drain(&s, &mut got);
            got.len() < data.len()
        },
        Duration::from_secs(10),
    );
    assert!(ok && got == data, "a cookie connection carries data");
    s.send(b"reply").unwrap();
    h.sim.run_for(RTT);
    let mut buf = [0u8; 8];
    assert_eq!(c.recv(&mut buf).unwrap(), 5);
}

// ---------------------------------------------------------------------------------
// Simultaneous open.
// ---------------------------------------------------------------------------------

fn simultaneous_open(seed: u64) -> (TwoHosts, Arc<TcpSock>, Arc<TcpSock>, Arc<SegLog>) {
    let h = hosts(seed);
    let log = SegLog::attach(&h.da);
    let a = TcpSock::new(&h.a);
    let b = TcpSock::new(&h.b);
    for s in [&a, &b] {
        s.set_nonblocking(true);
    }
    a.bind(SocketAddrV4::new(ip(10, 0, 0, 1), 1000)).unwrap();
    b.bind(SocketAddrV4::new(ip(10, 0, 0, 2), 2000)).unwrap();
    let _ = a.connect(SocketAddrV4::new(ip(10, 0, 0, 2), 2000));
    let _ = b.connect(SocketAddrV4::new(ip(10, 0, 0, 1), 1000));
    (h, a, b, log)
}

/// Both sides connect to each other at once (RFC 9293 figure 8): each SYN reaches a
/// socket in SYN_SENT, which moves to SYN_RECV and sends a SYN-ACK with its own ISN
/// (`tcp_rcv_synsent_state_process`); the crossing SYN-ACKs complete both handshakes.
/// No listener is involved: ActiveOpens on both hosts, no PassiveOpens.
#[test]
fn simultaneous_open_passes_through_syn_recv_to_established() {
    let (h, a, b, log) = simultaneous_open(130);
    let t0 = h.sim.now();
    let (iss_a, iss_b) = (a.with_tcb(|t| t.iss), b.with_tcb(|t| t.iss));
    assert_eq!(a.state(), TcpState::SynSent);
    h.sim.run_until(t0 + D + ms(1));
    assert_eq!(a.state(), TcpState::SynRecv);
    assert_eq!(b.state(), TcpState::SynRecv);
    h.sim.run_until(t0 + ms(100));
    assert_eq!(a.state(), TcpState::Established);
    assert_eq!(b.state(), TcpState::Established);
    let out = log.out();
    assert_eq!((out[0].flags, out[0].seq), (SYN, iss_a));
    assert_eq!(
        (out[1].flags, out[1].seq, out[1].ack),
        (SYN | ACK, iss_a, iss_b.wrapping_add(1))
    );
    assert_eq!(
        a.with_tcb(|t| (t.snd_una, t.rcv_nxt)),
        (iss_a.wrapping_add(1), iss_b.wrapping_add(1))
    );
    for st in [&h.a, &h.b] {
        assert_eq!(st.tcp.snmp.get(Tcp::ActiveOpens), 1);
        assert_eq!(st.tcp.snmp.get(Tcp::PassiveOpens), 0);
        assert_eq!(st.tcp.snmp.get(Tcp::OutRsts), 0);
    }
    ping_pong(&h, &a, &b);
}

/// In SYN_RECV after a simultaneous open, the peer's SYN-ACK (seq + 1 == rcv_nxt,
/// ack == snd_nxt) is not challenged: `tcp_validate_incoming` lets it pass (the
/// `TCP_SYN_RECV && sk->sk_socket && th->ack` case) and it establishes the connection
/// one RTT after the SYNs crossed, without TCPSYNChallenge.
#[test]
fn simultaneous_open_synack_is_not_challenged() {
    let (h, a, b, _log) = simultaneous_open(131);
    let t0 = h.sim.now();
    h.sim.run_until(t0 + RTT + ms(1));
    assert_eq!(a.state(), TcpState::Established);
    assert_eq!(b.state(), TcpState::Established);
    assert_eq!(h.a.tcp.mib.get(TcpExt::TCPSYNChallenge), 0);
    assert_eq!(h.b.tcp.mib.get(TcpExt::TCPSYNChallenge), 0);
}

// ---------------------------------------------------------------------------------
// Ephemeral ports and ISNs.
// ---------------------------------------------------------------------------------

/// `inet_hash_connect` picks each connection's local port from
/// net.ipv4.ip_local_port_range (32768–60999), all distinct; RFC 6528 ISNs
/// (`secure_tcp_seq`: keyed hash of the 4-tuple + a 64 ns clock) differ by hash-random
/// amounts between connections opened at the same instant — not a counter.
#[test]
fn ephemeral_ports_come_from_the_range_and_isns_are_not_sequential() {
    let h = hosts(133);
    let l = listen(&h, 80, 128);
    let clients: Vec<Arc<TcpSock>> = (0..100).map(|_| connect(&h, server())).collect();
    h.sim.run_for(ms(50));
    let mut accepted = 0;
    while l.accept().is_ok() {
        accepted += 1;
    }
    assert_eq!(accepted, 100);
    let mut ports: Vec<u16> = clients.iter().map(|c| c.local_addr().port()).collect();
    assert!(
        ports.iter().all(|p| (32768..=60999).contains(p)),
        "{ports:?}"
    );
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 100, "distinct ports");
    let isns: Vec<u32> = clients.iter().map(|c| c.with_tcb(|t| t.iss)).collect();
    let close_steps = isns
        .windows(2)
        .filter(|w| {
            let d = w[1].wrapping_sub(w[0]);
            !((1 << 20)..=u32::MAX - (1 << 20)).contains(&d)
        })
        .count();
    assert!(
        close_steps <= 2,
        "{close_steps} near-sequential ISNs: {isns:?}"
    );
    let high = isns.iter().filter(|i| **i >= 1 << 31).count();
    assert!((25..=75).contains(&high), "{high} of 100 in the upper half");
    // A narrower range is honoured.
    h.a.sysctl
        .set("net.ipv4.ip_local_port_range_min", 40000)
        .unwrap();
    h.a.sysctl
        .set("net.ipv4.ip_local_port_range_max", 40009)
        .unwrap();
    let more: Vec<Arc<TcpSock>> = (0..10).map(|_| connect(&h, server())).collect();
    let mut p: Vec<u16> = more.iter().map(|c| c.local_addr().port()).collect();
    p.sort_unstable();
    assert_eq!(p, (40000..=40009).collect::<Vec<_>>());
    // The range is exhausted for this destination.
    let c = TcpSock::new(&h.a);
    assert_eq!(
        c.connect(server()).unwrap_err().raw_os_error(),
        Some(errno::EADDRNOTAVAIL)
    );
}

/// Same 4-tuple, later: the ISN advanced by exactly the clock part of RFC 6528's
/// formula (ns >> 6), so a new incarnation starts beyond the old one's sequence
/// space; b, holding the pair in TIME_WAIT, accepts its SYN (seq after tw_rcv_nxt:
/// TCP_TW_SYN) and the connection reopens.
#[test]
fn same_four_tuple_isn_advances_with_the_clock_and_time_wait_accepts_the_new_syn() {
    let h = hosts(134);
    let l = listen(&h, 80, 16);
    let local = SocketAddrV4::new(ip(10, 0, 0, 1), 45000);
    let c1 = TcpSock::new(&h.a);
    c1.set_nonblocking(true);
    c1.bind(local).unwrap();
    let t1 = h.sim.now();
    let _ = c1.connect(server());
    let s1 = accept_for(&h, &l, &c1);
    c1.send(&pattern(5000)).unwrap();
    h.sim.run_for(ms(50));
    let mut sink = Vec::new();
    drain(&s1, &mut sink);
    // b closes first: TIME_WAIT on b, a goes LAST_ACK → CLOSE and frees the port.
    s1.close();
    h.sim.run_for(RTT);
    let mut buf = [0u8; 8];
    assert_eq!(c1.recv(&mut buf).unwrap(), 0);
    c1.close();
    h.sim.run_for(RTT + ms(1));
    assert_eq!(c1.state(), TcpState::Close);
    assert!(h.b.tcp.tw.contains(server(), local));
    h.sim.run_until(t1 + Duration::from_secs(1));
    let c2 = TcpSock::new(&h.a);
    c2.set_nonblocking(true);
    c2.bind(local).unwrap();
    let t2 = h.sim.now();
    let _ = c2.connect(server());
    let (i1, i2) = (c1.with_tcb(|t| t.iss), c2.with_tcb(|t| t.iss));
    let ticks = ((t2.as_nanos() >> 6) - (t1.as_nanos() >> 6)) as u32;
    assert_eq!(i2.wrapping_sub(i1), ticks, "ISN = F(4-tuple) + ns >> 6");
    let s2 = accept_for(&h, &l, &c2);
    assert_eq!(s2.peer_addr().unwrap(), local);
    assert!(!h.b.tcp.tw.contains(server(), local), "TIME_WAIT replaced");
    c2.send(b"again").unwrap();
    h.sim.run_for(RTT);
    let n = s2.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"again");
}

/// `tcp_timewait_state_process` returns TCP_TW_SYN with `tw_isn` set to
/// tw_snd_nxt + 65535 + 2, and `tcp_conn_request` uses it as the new connection's
/// ISN: the reopened connection's SYN-ACK starts beyond anything the old incarnation
/// sent.
#[test]
fn time_wait_reuse_synack_isn_is_tw_snd_nxt_plus_65537() {
    let h = hosts(135);
    let l = listen(&h, 80, 16);
    let local = SocketAddrV4::new(ip(10, 0, 0, 1), 45001);
    let c1 = TcpSock::new(&h.a);
    c1.set_nonblocking(true);
    c1.bind(local).unwrap();
    let _ = c1.connect(server());
    let s1 = accept_for(&h, &l, &c1);
    s1.close();
    h.sim.run_for(RTT);
    c1.close();
    h.sim.run_for(RTT + ms(1));
    let tw =
        h.b.tcp
            .tw
            .entries()
            .into_iter()
            .find(|e| e.1 == local)
            .expect("TIME_WAIT on b")
            .2;
    h.sim.run_for(Duration::from_secs(1));
    let c2 = TcpSock::new(&h.a);
    c2.set_nonblocking(true);
    c2.bind(local).unwrap();
    let t0 = h.sim.now();
    let _ = c2.connect(server());
    let s2 = accept_for(&h, &l, &c2);
    assert_eq!(
        s2.with_tcb(|t| t.iss),
        tw.snd_nxt.wrapping_add(65537),
        "tcp_tw_isn"
    );
    // Answered at once: the first SYN reopened the pair (no retransmission after 1 s).
    assert!(h.sim.now() - t0 < Duration::from_millis(100));
}
