//! TCP timers and connection lifecycle on the virtual clock, each as Linux decides:
//! RTO backoff (tcp_retransmit_timer), SYN retries, TCP_USER_TIMEOUT, keepalive,
//! zero-window probes (tcp_probe_timer), RST generation and handling, and the accept
//! queue's overflow (sk_acceptq_is_full).

mod common;

use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::Duration;

use common::{ping_pong, Conn, RTT};
use usnet::sock::errno;
use usnet::tcp::{SockOpt, Tcp, TcpExt, TcpSock, TcpState};
use usnet::testutil::{ip, tcp_segment, SegLog, TwoHosts};
use usnet::time::Instant;

/// Drop every TCP segment going to host b (port 1), or stop dropping. ARP still
/// works, so the failure TCP sees is silence, not an unreachable neighbour (which
/// would end the connection with EHOSTUNREACH, the soft error, as in Linux).
fn cut_to_b(h: &TwoHosts, cut: bool) {
    h.wire.set_drop_filter(
        1,
        if cut {
            Some(Arc::new(|f| tcp_segment(f).is_some()))
        } else {
            None
        },
    );
}

fn secs(a: Instant, b: Instant) -> f64 {
    a.saturating_duration_since(b).as_secs_f64()
}

#[test]
fn rto_backs_off_exponentially_and_resets_after_recovery() {
    // Tail loss probes off: with one packet out the probe would take the first RTO's
    // place (tests/tcp_recovery.rs shows that); here the timer alone is watched.
    let k = Conn::new(21, |h| {
        h.a.sysctl.set("net.ipv4.tcp_early_retrans", 0).unwrap();
    });
    cut_to_b(&k.h, true);
    k.c.send(&[5; 1000]).unwrap();
    k.h.sim.run_for(Duration::from_secs(10));
    let sends: Vec<Instant> = k.log.data_out().iter().map(|s| s.at).collect();
    assert!(
        sends.len() >= 5,
        "{} transmissions in 10 s: {:?}",
        sends.len(),
        sends
            .windows(2)
            .map(|w| secs(w[1], w[0]))
            .collect::<Vec<_>>()
    );
    let gaps: Vec<f64> = sends.windows(2).map(|w| secs(w[1], w[0])).collect();
    // The first RTO is srtt + max(4·rttvar, TCP_RTO_MIN): just above 200 ms here.
    assert!(
        gaps[0] >= 0.2 && gaps[0] < 0.3,
        "first RTO {:.3} s",
        gaps[0]
    );
    for w in gaps.windows(2) {
        let ratio = w[1] / w[0];
        assert!(
            (1.99..2.01).contains(&ratio),
            "backoff ratio {ratio:.3} in {gaps:?}"
        );
    }
    assert!(k.c.info().backoff >= 4);
    assert_eq!(k.h.a.tcp.mib.get(TcpExt::TCPTimeouts), gaps.len() as u64);
    // Path back: the next retransmission is acknowledged, backoff resets, data flows.
    cut_to_b(&k.h, false);
    assert_eq!(k.run_reading(Duration::from_secs(20)), 1000);
    assert_eq!(k.c.info().backoff, 0);
    k.log.clear();
    let t0 = k.h.sim.now();
    k.c.send(&[6; 100]).unwrap();
    assert_eq!(k.run_reading(Duration::from_millis(50)), 100);
    assert!(secs(k.log.data_out()[0].at, t0) < 0.001, "sent at once");
}

#[test]
fn syn_retries_then_etimedout() {
    let h = TwoHosts::new(22, |_| {}).with_ip();
    let log = SegLog::attach(&h.da);
    cut_to_b(&h, true);
    let c = TcpSock::new(&h.a);
    c.set_nonblocking(true);
    c.set_opt(SockOpt::SynCnt(2)).unwrap();
    let t0 = h.sim.now();
    let e = c
        .connect(SocketAddrV4::new(ip(10, 0, 0, 2), 80))
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(errno::EINPROGRESS));
    h.sim
        .run_while(|| c.state() == TcpState::SynSent, Duration::from_secs(30));
    let syns: Vec<f64> = log
        .out()
        .iter()
        .filter(|s| s.flags & 0x02 != 0)
        .map(|s| secs(s.at, t0))
        .collect();
    // SYN at 0, retransmissions after 1 s and 2 s more (TCP_TIMEOUT_INIT, doubling);
    // the connection gives up when the third timer (4 s) expires: at 7 s.
    assert_eq!(syns.len(), 3, "{syns:?}");
    assert!(
        (syns[1] - 1.0).abs() < 0.01 && (syns[2] - 3.0).abs() < 0.01,
        "{syns:?}"
    );
    let gave_up = secs(h.sim.now(), t0);
    assert!((gave_up - 7.0).abs() < 0.01, "gave up at {gave_up:.3} s");
    assert_eq!(c.state(), TcpState::Close);
    assert_eq!(
        c.take_error().and_then(|e| e.raw_os_error()),
        Some(errno::ETIMEDOUT)
    );
    assert_eq!(h.a.tcp.snmp.get(Tcp::AttemptFails), 1);
}

#[test]
fn user_timeout_bounds_retransmission() {
    let k = Conn::new(23, |_| {});
    k.c.set_opt(SockOpt::UserTimeout(Duration::from_secs(5)))
        .unwrap();
    cut_to_b(&k.h, true);
    let t0 = k.h.sim.now();
    k.c.send(&[1; 500]).unwrap();
    k.h.sim.run_while(
        || k.c.state() == TcpState::Established,
        Duration::from_secs(60),
    );
    let at = secs(k.h.sim.now(), t0);
    // tcp_clamp_rto_to_user_timeout: the last RTO fires at the user timeout.
    assert!((5.0..5.3).contains(&at), "gave up at {at:.3} s");
    assert_eq!(
        k.c.take_error().and_then(|e| e.raw_os_error()),
        Some(errno::ETIMEDOUT)
    );
    assert_eq!(k.h.a.tcp.mib.get(TcpExt::TCPAbortOnTimeout), 1);
}

#[test]
fn keepalive_probes_an_idle_peer_then_gives_up() {
    let k = Conn::new(24, |_| {});
    k.c.set_opt(SockOpt::KeepAlive(true)).unwrap();
    k.c.set_opt(SockOpt::KeepIdle(Duration::from_secs(10)))
        .unwrap();
    k.c.set_opt(SockOpt::KeepIntvl(Duration::from_secs(2)))
        .unwrap();
    k.c.set_opt(SockOpt::KeepCnt(3)).unwrap();
    // A live peer answers: after 35 s idle the connection is fine and probes were sent.
    k.h.sim.run_for(Duration::from_secs(35));
    assert_eq!(k.c.state(), TcpState::Established);
    let probes = k.h.a.tcp.mib.get(TcpExt::TCPKeepAlive);
    assert!(probes >= 3, "{probes} keepalive probes in 35 s idle");
    // A dead peer: 3 unanswered probes, 2 s apart, then ETIMEDOUT.
    cut_to_b(&k.h, true);
    let t0 = k.h.sim.now();
    k.h.sim.run_while(
        || k.c.state() == TcpState::Established,
        Duration::from_secs(60),
    );
    let at = secs(k.h.sim.now(), t0);
    assert!(at <= 10.0 + 3.0 * 2.0 + 0.1, "gave up after {at:.2} s");
    assert_eq!(
        k.c.take_error().and_then(|e| e.raw_os_error()),
        Some(errno::ETIMEDOUT)
    );
}

#[test]
fn zero_window_probes_then_resume_when_the_reader_reads() {
    // A small receive buffer from the start (tcp_rmem), so the window is what closes.
    let k = Conn::new(25, |h| {
        h.b.sysctl
            .set("net.ipv4.tcp_rmem_default", 16 * 1024)
            .unwrap();
        h.b.sysctl.set("net.ipv4.tcp_rmem_max", 16 * 1024).unwrap();
    });
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut sent = 0;
    // Nobody reads for 5 s: the window closes and the sender probes.
    k.h.sim.run_while(
        || {
            while sent < data.len() {
                match k.c.send(&data[sent..]) {
                    Ok(n) => sent += n,
                    Err(_) => break,
                }
            }
            true
        },
        Duration::from_secs(5),
    );
    let info = k.c.info();
    assert_eq!(
        info.snd_wnd,
        0,
        "the receiver advertised a zero window\n{info:#?}\n{:#?}",
        k.s.info()
    );
    let probes = k.h.a.tcp.mib.get(TcpExt::TCPWinProbe);
    assert!(
        (3..=8).contains(&probes),
        "{probes} window probes in 5 s (backing off)"
    );
    assert!(k.h.b.tcp.mib.get(TcpExt::TCPToZeroWindowAdv) >= 1);
    assert_eq!(k.c.state(), TcpState::Established, "probes keep it alive");
    // The reader wakes up: window updates resume the flow; everything arrives intact.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    k.h.sim.run_while(
        || {
            while sent < data.len() {
                match k.c.send(&data[sent..]) {
                    Ok(n) => sent += n,
                    Err(_) => break,
                }
            }
            while let Ok(n) = k.s.recv(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            got.len() < data.len()
        },
        Duration::from_secs(60),
    );
    assert!(got == data);
}

#[test]
fn connecting_to_a_closed_port_is_refused_by_rst() {
    let h = TwoHosts::new(26, |_| {}).with_ip();
    let c = TcpSock::new(&h.a);
    c.set_nonblocking(true);
    let _ = c.connect(SocketAddrV4::new(ip(10, 0, 0, 2), 9));
    h.sim.run_for(Duration::from_millis(10));
    assert_eq!(c.state(), TcpState::Close);
    assert_eq!(
        c.take_error().and_then(|e| e.raw_os_error()),
        Some(errno::ECONNREFUSED)
    );
    assert_eq!(h.b.tcp.snmp.get(Tcp::OutRsts), 1);
    assert_eq!(h.a.tcp.snmp.get(Tcp::AttemptFails), 1);
}

#[test]
fn linger_zero_close_sends_rst_and_skips_time_wait() {
    let k = Conn::new(27, |_| {});
    k.c.set_opt(SockOpt::Linger(Some(Duration::ZERO))).unwrap();
    k.c.close();
    k.h.sim.run_for(Duration::from_millis(50));
    assert!(
        k.h.a.tcp.tw.is_empty(),
        "no TIME_WAIT after an abortive close"
    );
    let mut buf = [0u8; 8];
    let e = k.s.recv(&mut buf).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(errno::ECONNRESET));
    assert_eq!(k.s.state(), TcpState::Close);
    // tcp_close counts a zero-linger abort as TCPAbortOnData.
    assert_eq!(k.h.a.tcp.mib.get(TcpExt::TCPAbortOnData), 1);
}

#[test]
fn closing_with_unread_data_resets_the_peer() {
    let k = Conn::new(28, |_| {});
    k.c.send(b"never read").unwrap();
    k.h.sim.run_for(Duration::from_millis(50));
    // The server closes without reading: RFC 2525 / tcp_close sends RST, not FIN.
    k.s.close();
    k.h.sim.run_for(Duration::from_millis(50));
    assert_eq!(k.h.b.tcp.mib.get(TcpExt::TCPAbortOnClose), 1);
    let mut buf = [0u8; 8];
    let e = k.c.recv(&mut buf).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(errno::ECONNRESET));
}

#[test]
fn accept_queue_holds_backlog_plus_one_and_drops_the_rest_until_accept() {
    let h = TwoHosts::new(29, |_| {}).with_ip();
    let l = TcpSock::new(&h.b);
    l.set_nonblocking(true);
    l.bind(SocketAddrV4::new(ip(10, 0, 0, 2), 80)).unwrap();
    l.listen(2).unwrap();
    let clients: Vec<_> = (0..5)
        .map(|_| {
            let c = TcpSock::new(&h.a);
            c.set_nonblocking(true);
            let _ = c.connect(SocketAddrV4::new(ip(10, 0, 0, 2), 80));
            c
        })
        .collect();
    h.sim.run_for(Duration::from_millis(100));
    // sk_acceptq_is_full is `>`: backlog + 1 children wait.
    assert_eq!(l.accept_queue_len(), 3);
    assert!(h.b.tcp.mib.get(TcpExt::ListenOverflows) >= 1);
    assert!(h.b.tcp.mib.get(TcpExt::ListenDrops) >= h.b.tcp.mib.get(TcpExt::ListenOverflows));
    // Accepting makes room; the others complete on SYN-ACK/ACK retransmission.
    let mut accepted = Vec::new();
    h.sim.run_while(
        || {
            while let Ok(s) = l.accept() {
                accepted.push(s);
            }
            accepted.len() < 5
        },
        Duration::from_secs(30),
    );
    assert_eq!(accepted.len(), 5);
    assert!(clients.iter().all(|c| c.state() == TcpState::Established));
    let _ = RTT;
}

#[test]
fn simultaneous_open_reaches_established_on_both_sides() {
    let h = TwoHosts::new(30, |_| {}).with_ip();
    let a = TcpSock::new(&h.a);
    let b = TcpSock::new(&h.b);
    for s in [&a, &b] {
        s.set_nonblocking(true);
    }
    a.bind(SocketAddrV4::new(ip(10, 0, 0, 1), 1000)).unwrap();
    b.bind(SocketAddrV4::new(ip(10, 0, 0, 2), 2000)).unwrap();
    // Both SYNs cross on the wire: SYN_SENT → SYN_RECV → ESTABLISHED on each side
    // (RFC 9293 figure 7).
    let _ = a.connect(SocketAddrV4::new(ip(10, 0, 0, 2), 2000));
    let _ = b.connect(SocketAddrV4::new(ip(10, 0, 0, 1), 1000));
    h.sim.run_for(Duration::from_millis(100));
    assert_eq!(a.state(), TcpState::Established);
    assert_eq!(b.state(), TcpState::Established);
    ping_pong(&h, &a, &b);
}

#[test]
fn half_close_keeps_the_other_direction_open() {
    let k = Conn::new(31, |_| {});
    k.c.send(b"request").unwrap();
    k.c.shutdown(std::net::Shutdown::Write).unwrap();
    k.h.sim.run_for(Duration::from_millis(50));
    let mut buf = [0u8; 64];
    let n = k.s.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"request");
    assert_eq!(k.s.recv(&mut buf).unwrap(), 0, "EOF after the FIN");
    assert_eq!(k.s.state(), TcpState::CloseWait);
    assert_eq!(k.c.state(), TcpState::FinWait2);
    // The server still answers; the client still reads.
    k.s.send(b"response").unwrap();
    k.s.close();
    k.h.sim.run_for(Duration::from_millis(50));
    let n = k.c.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"response");
    assert_eq!(k.c.recv(&mut buf).unwrap(), 0);
    assert_eq!(k.c.state(), TcpState::TimeWait);
    assert_eq!(k.s.state(), TcpState::Close);
}

#[test]
fn ephemeral_ports_and_isns_are_unpredictable() {
    let h = TwoHosts::new(32, |_| {}).with_ip();
    let l = TcpSock::new(&h.b);
    l.set_nonblocking(true);
    l.bind(SocketAddrV4::new(ip(10, 0, 0, 2), 80)).unwrap();
    l.listen(128).unwrap();
    let clients: Vec<_> = (0..100)
        .map(|_| {
            let c = TcpSock::new(&h.a);
            c.set_nonblocking(true);
            let _ = c.connect(SocketAddrV4::new(ip(10, 0, 0, 2), 80));
            c
        })
        .collect();
    h.sim.run_for(Duration::from_millis(50));
    let mut ports: Vec<u16> = clients.iter().map(|c| c.local_addr().port()).collect();
    let isns: Vec<u32> = clients.iter().map(|c| c.with_tcb(|t| t.iss)).collect();
    assert!(
        ports.iter().all(|p| (32768..=60999).contains(p)),
        "ip_local_port_range"
    );
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 100, "distinct ports");
    // RFC 6528: ISN = hash(4-tuple, secret) + clock; consecutive connections are not
    // sequential, and the spread covers the sequence space.
    let steps: Vec<u32> = isns.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    assert!(
        steps.iter().filter(|s| **s < 1 << 20).count() < 5,
        "{steps:?}"
    );
    let high_bit_set = isns.iter().filter(|i| **i >= 1 << 31).count();
    assert!((20..80).contains(&high_bit_set));
}
