//! Connection-lifecycle decisions of the TCP stack on the virtual clock, each written
//! from what Linux does (net/ipv4/tcp_input.c, tcp_timer.c, tcp_minisocks.c,
//! tcp_ipv4.c, inet_connection_sock.c) and RFC 9293 / RFC 5961 / RFC 6528 / RFC 1122:
//!
//! * retransmission timeout with exponential backoff up to `TCP_RTO_MAX`,
//!   `tcp_retries2` and `TCP_USER_TIMEOUT` (`tcp_retransmit_timer`, `tcp_write_timeout`);
//! * SYN retransmission and `TCP_SYNCNT`;
//! * zero-window probing (`tcp_probe_timer`, `tcp_send_probe0`, `tcp_ack_probe`) and the
//!   receive window bounding what is in flight;
//! * TIME_WAIT (`tcp_time_wait`, `tcp_timewait_state_process`), LAST_ACK, CLOSING;
//! * RSTs: refused connections, RFC 5961 challenge ACKs, `SO_LINGER` 0, `tcp_close`
//!   with unread data, data after close;
//! * the accept queue (`sk_acceptq_is_full`), the SYN queue and SYN cookies
//!   (`tcp_conn_request`, `tcp_check_req`);
//! * simultaneous open, half-close, ephemeral ports and RFC 6528 ISNs.
//!
//! Every time is virtual: a test that covers half an hour of TCP runs in milliseconds.
//! Tests marked `#[ignore = "bug: ..."]` describe where this stack differs from Linux.

use std::net::{Shutdown, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use usnet::link::Netem;
use usnet::skb::Skb;
use usnet::sock::errno;
use usnet::tcp::{SockOpt, Tcp, TcpExt, TcpSock, TcpState};
use usnet::testutil::{ip, mac, tcp_segment, SegLog, SegRecord, TwoHosts};
use usnet::time::Instant;

/// One-way delay on the wire in both directions: the RTT is 10 ms.
const D: Duration = Duration::from_millis(5);
const RTT: Duration = Duration::from_millis(10);

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// Wire port of host a (frames *to* a) and of host b.
const TO_A: usize = 0;
const TO_B: usize = 1;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(later: Instant, earlier: Instant) -> f64 {
    later.saturating_duration_since(earlier).as_secs_f64()
}

fn server() -> SocketAddrV4 {
    SocketAddrV4::new(ip(10, 0, 0, 2), 80)
}

/// Two hosts with a 5 ms one-way delay each way and static ARP entries, so the first
/// segment of a test leaves at once (no ARP round trip shifts the timings).
fn hosts(seed: u64) -> TwoHosts {
    let h = TwoHosts::new(seed, |_| {}).with_ip();
    h.a.ipv4
        .arp
        .add_permanent(&h.a, &h.da, ip(10, 0, 0, 2), mac(2))
        .expect("neigh a");
    h.b.ipv4
        .arp
        .add_permanent(&h.b, &h.db, ip(10, 0, 0, 1), mac(1))
        .expect("neigh b");
    let delayed = Netem {
        delay: D,
        ..Netem::default()
    };
    h.wire.set_netem(TO_A, delayed);
    h.wire.set_netem(TO_B, delayed);
    h
}

fn listen(h: &TwoHosts, port: u16, backlog: usize) -> Arc<TcpSock> {
    let l = TcpSock::new(&h.b);
    l.set_nonblocking(true);
    l.bind(SocketAddrV4::new(ip(10, 0, 0, 2), port)).unwrap();
    l.listen(backlog).unwrap();
    l
}

/// A non-blocking connect from host a (`EINPROGRESS`).
fn connect(h: &TwoHosts, to: SocketAddrV4) -> Arc<TcpSock> {
    let c = TcpSock::new(&h.a);
    c.set_nonblocking(true);
    let e = c.connect(to).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(errno::EINPROGRESS));
    c
}

/// Wait (virtual time) until `c` is established and `l` hands out its child.
fn accept_for(h: &TwoHosts, l: &Arc<TcpSock>, c: &Arc<TcpSock>) -> Arc<TcpSock> {
    let mut s = None;
    h.sim.run_while(
        || {
            s = s.take().or_else(|| l.accept().ok());
            s.is_none() || c.state() != TcpState::Established
        },
        Duration::from_secs(5),
    );
    let s = s.expect("accepted");
    s.set_nonblocking(true);
    s
}

/// Drop every TCP segment going to `port` (ARP still passes, so TCP sees silence, not
/// an unreachable neighbour), or stop dropping.
fn cut_tcp(h: &TwoHosts, port: usize, cut: bool) {
    h.wire.set_drop_filter(
        port,
        if cut {
            Some(Arc::new(|f: &Skb| tcp_segment(f).is_some()))
        } else {
            None
        },
    );
}

/// An established connection a → b:80, a segment log on each NIC.
struct Conn {
    h: TwoHosts,
    l: Arc<TcpSock>,
    c: Arc<TcpSock>,
    s: Arc<TcpSock>,
    /// What a's NIC sends and receives.
    log: Arc<SegLog>,
    /// What b's NIC sends and receives.
    blog: Arc<SegLog>,
}

impl Conn {
    fn new(seed: u64) -> Conn {
        Conn::with(seed, |_, _| {})
    }

    /// `setup` runs on the hosts and the listener before the client connects.
    fn with(seed: u64, setup: impl FnOnce(&TwoHosts, &Arc<TcpSock>)) -> Conn {
        let h = hosts(seed);
        let l = listen(&h, 80, 16);
        setup(&h, &l);
        let c = connect(&h, server());
        let s = accept_for(&h, &l, &c);
        // Let the handshake's last ACK settle.
        h.sim.run_for(ms(50));
        let log = SegLog::attach(&h.da);
        let blog = SegLog::attach(&h.db);
        Conn {
            h,
            l,
            c,
            s,
            log,
            blog,
        }
    }

    /// The server's (rcv_nxt, snd_nxt).
    fn server_seqs(&self) -> (u32, u32) {
        self.s.with_tcb(|t| (t.rcv_nxt, t.snd_nxt))
    }
}

/// Read everything `s` has now.
fn drain(s: &Arc<TcpSock>, into: &mut Vec<u8>) -> bool {
    let mut buf = vec![0u8; 1 << 16];
    let mut eof = false;
    loop {
        match s.recv(&mut buf) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    eof
}

/// Queue as much of `data[*sent..]` as the send buffer takes.
fn push(c: &Arc<TcpSock>, data: &[u8], sent: &mut usize) {
    while *sent < data.len() {
        match c.send(&data[*sent..]) {
            Ok(n) => *sent += n,
            Err(_) => break,
        }
    }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 131 + i / 251) as u8).collect()
}

/// A hand-made Ethernet/IPv4/TCP frame (no options) with correct checksums, for
/// segments a well-behaved peer would not send. Addressed to a if `to_a`, else to b.
#[allow(clippy::too_many_arguments)]
fn craft(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    payload: &[u8],
    to_a: bool,
) -> Skb {
    craft_opts(src, dst, seq, ack, flags, window, &[], payload, to_a)
}

/// The timestamps option (NOP, NOP, TS) — RFC 7323 § 3.2 wants it on every non-RST
/// segment of a connection that negotiated it, so injected non-RST segments carry one
/// whose TSval (the receiver's `ts_recent`) passes PAWS.
fn ts_opt(val: u32, ecr: u32) -> [u8; 12] {
    let mut o = [1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0];
    o[4..8].copy_from_slice(&val.to_be_bytes());
    o[8..12].copy_from_slice(&ecr.to_be_bytes());
    o
}

/// As [`craft`], with TCP options `opts` (a multiple of 4 bytes).
#[allow(clippy::too_many_arguments)]
fn craft_opts(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    opts: &[u8],
    payload: &[u8],
    to_a: bool,
) -> Skb {
    use usnet_wire::checksum;
    assert_eq!(opts.len() % 4, 0);
    let (smac, dmac) = if to_a {
        (mac(2), mac(1))
    } else {
        (mac(1), mac(2))
    };
    let hlen = 20 + opts.len();
    let tcp_len = hlen + payload.len();
    let mut f = vec![0u8; 14 + 20 + tcp_len];
    f[0..6].copy_from_slice(dmac.as_bytes());
    f[6..12].copy_from_slice(smac.as_bytes());
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let iph = &mut f[14..34];
    iph[0] = 0x45;
    iph[2..4].copy_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
    iph[6] = 0x40;
    iph[8] = 64;
    iph[9] = 6;
    iph[12..16].copy_from_slice(&src.ip().octets());
    iph[16..20].copy_from_slice(&dst.ip().octets());
    let c = checksum::checksum(iph);
    iph[10..12].copy_from_slice(&c.to_be_bytes());
    let t = &mut f[34..];
    t[0..2].copy_from_slice(&src.port().to_be_bytes());
    t[2..4].copy_from_slice(&dst.port().to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = ((hlen / 4) as u8) << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&window.to_be_bytes());
    t[20..hlen].copy_from_slice(opts);
    t[hlen..].copy_from_slice(payload);
    let mut acc = checksum::Accumulator::with_initial(checksum::pseudo_header_v4(
        src.ip(),
        dst.ip(),
        6,
        tcp_len as u32,
    ));
    acc.add(t);
    let c = acc.finish();
    t[16..18].copy_from_slice(&c.to_be_bytes());
    Skb::from_slice(&f, 64)
}

/// Put a crafted frame on the wire towards a (`to_a`) or b; it crosses the wire's
/// delay and drop filter like any other frame.
fn inject(h: &TwoHosts, frame: Skb, to_a: bool) {
    let from = if to_a { TO_B } else { TO_A };
    h.wire.transmit(from, &mut vec![frame]);
}

fn segs_after(log: &SegLog, t: Instant, outgoing: bool) -> Vec<SegRecord> {
    log.segs
        .lock()
        .iter()
        .filter(|s| s.at >= t && s.outgoing == outgoing)
        .copied()
        .collect()
}

/// Tail loss probes off (`tcp_early_retrans=0`), to watch the retransmission timer
/// alone: with one packet out, the probe timeout (2·srtt + TCP_RTO_MIN) is capped at
/// the RTO and the probe would take the first expiry's place (tests/tcp_recovery.rs
/// shows that).
fn no_tlp(h: &TwoHosts, _: &Arc<TcpSock>) {
    h.a.sysctl.set("net.ipv4.tcp_early_retrans", 0).unwrap();
}

// ---------------------------------------------------------------------------------
// 1. Retransmission timeout: exponential backoff, TCP_RTO_MAX, tcp_retries2.
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
// 2. TCP_USER_TIMEOUT.
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

// ---------------------------------------------------------------------------------
// 3. SYN retries.
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
// 4. Zero-window probing.
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
// 5. The receive window bounds what is in flight.
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
// 6. TIME_WAIT, LAST_ACK, CLOSING.
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
        craft_opts(
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

/// The ACK answering a retransmitted FIN in TIME_WAIT is sent, not skipped: Linux
/// counts TCPACKSkippedTimeWait only when `tcp_timewait_check_oow_rate_limit`
/// suppresses an ACK (a FIN occupies sequence space, so it is never rate limited).
#[test]

fn time_wait_ack_of_a_retransmitted_fin_is_not_counted_as_skipped() {
    let k = Conn::new(111);
    k.c.close();
    k.h.sim.run_for(RTT + ms(1));
    k.s.close();
    k.h.sim.run_for(RTT + ms(1));
    let key = (k.c.local_addr(), server());
    let tw = k.h.a.tcp.tw.entries()[0].2;
    cut_tcp(&k.h, TO_B, true);
    let t = k.h.sim.now();
    inject(
        &k.h,
        craft_opts(
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
    k.c.close();
    k.h.sim.run_for(RTT + ms(1));
    k.s.close();
    k.h.sim.run_for(RTT + ms(1));
    let key = (k.c.local_addr(), server());
    let tw = k.h.a.tcp.tw.entries()[0].2;
    for off in [1u32, 1000, 100_000] {
        inject(
            &k.h,
            craft(
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
        craft(server(), key.0, tw.rcv_nxt, 0, RST, 0, &[], true),
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
// 7. RSTs.
// ---------------------------------------------------------------------------------

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
        craft(
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
        craft(k.c.local_addr(), server(), rcv_nxt, 0, RST, 0, &[], false),
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
        craft_opts(
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
            craft(
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
        let old = craft_opts(
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
    let rst = craft(
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
        let far = craft_opts(
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
        craft(
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
        craft(from, server(), 1000, 5000, ACK, 100, &[], false),
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

// ---------------------------------------------------------------------------------
// 8. The accept queue.
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
// 9. The SYN queue and SYN cookies.
// ---------------------------------------------------------------------------------

/// SYNs from spoofed sources that never answer (10.0.0.99, distinct ports).
fn spoofed_syns(h: &TwoHosts, n: u32, port: u16) {
    for i in 0..n {
        inject(
            h,
            craft(
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
// 10. Simultaneous open.
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
    a.send(b"ping").unwrap();
    b.send(b"pong").unwrap();
    h.sim.run_for(RTT);
    let mut buf = [0u8; 8];
    let n = b.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    let n = a.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"pong");
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
// 11. Half-close.
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

// ---------------------------------------------------------------------------------
// 12. Ephemeral ports and ISNs.
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
#[ignore = "bug: the SYN reopening a TIME_WAIT pair now gets tw_isn, but its SYN-ACK never reaches the client, which connects only on its SYN retransmission with a fresh ISN"]
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
    let _ = c2.connect(server());
    let s2 = accept_for(&h, &l, &c2);
    assert_eq!(
        s2.with_tcb(|t| t.iss),
        tw.snd_nxt.wrapping_add(65537),
        "tcp_tw_isn"
    );
}
