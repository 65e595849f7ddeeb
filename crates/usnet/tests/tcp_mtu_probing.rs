//! Packetization-layer PMTU discovery (RFC 4821, Linux's `tcp_mtu_probing`) across a
//! black hole: the wire from a to b drops every frame longer than a 1200-byte MTU and
//! sends no ICMP "fragmentation needed", so only TCP itself can find the size.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Conn;
use usnet::tcp::{Tcp, TcpExt};

/// The path's real MTU (IP packet bytes), below the links' 1500.
const PATH_MTU: usize = 1200;

/// A connection whose a → b direction silently drops IP packets over `PATH_MTU`, with
/// `tcp_mtu_probing` = `mode` on a.
fn black_hole(seed: u64, mode: i64) -> Conn {
    let k = Conn::new(seed, |h| {
        h.a.sysctl.set("net.ipv4.tcp_mtu_probing", mode).unwrap();
    });
    k.h.wire.set_drop_filter(
        1,
        Some(Arc::new(|f: &usnet::skb::Skb| f.len() > 14 + PATH_MTU)),
    );
    k
}

/// Send `bytes` with b reading; returns what b got within `limit`.
fn transfer(k: &Conn, bytes: usize, limit: Duration) -> usize {
    let data = vec![0x42u8; bytes];
    let mut sent = 0;
    let mut got = 0;
    let mut buf = vec![0u8; 1 << 16];
    k.h.sim.run_while(
        || {
            if sent < bytes {
                if let Ok(n) = k.c.send(&data[sent..]) {
                    sent += n;
                }
            }
            while let Ok(n) = k.s.recv(&mut buf) {
                if n == 0 {
                    break;
                }
                got += n;
            }
            got < bytes
        },
        limit,
    );
    got
}

/// Always on (mode 2): the MSS starts from `tcp_base_mss` and the probes climb to the
/// path's MTU — the ones too large lost and not taken for congestion, the others
/// raising the MSS — ending within `tcp_probe_threshold` of it, with no timeout.
#[test]
fn probing_finds_the_mtu_of_a_black_hole_path_without_a_timeout() {
    let k = black_hole(61, 2);
    let first = k.c.with_tcb(|t| t.mss_cache);
    assert_eq!(first, 1024 - 12, "tcp_base_mss less the timestamp option");
    let got = transfer(&k, 8 << 20, Duration::from_secs(60));
    assert_eq!(got, 8 << 20);
    let mib = &k.h.a.tcp.mib;
    assert!(mib.get(TcpExt::TCPMTUPSuccess) >= 2, "probes got through");
    assert!(
        mib.get(TcpExt::TCPMTUPFail) >= 2,
        "probes were lost in the hole"
    );
    assert_eq!(mib.get(TcpExt::TCPTimeouts), 0, "no RTO");
    let (mss, lo, hi) =
        k.c.with_tcb(|t| (t.mss_cache, t.mtup.search_low, t.mtup.search_high));
    assert!(
        lo <= PATH_MTU as u32 && hi >= PATH_MTU as u32 && hi - lo < 8,
        "search converged around {PATH_MTU}: [{lo}, {hi}]"
    );
    assert_eq!(mss, lo - 40 - 12, "segments as large as the path allows");
    // Only probes were lost: everything resent was a probe cut to the MSS.
    let resent = k.h.a.tcp.snmp.get(Tcp::RetransSegs);
    assert!(
        resent <= 4 * mib.get(TcpExt::TCPMTUPFail) + 8,
        "{resent} resent"
    );
}

/// On after a black hole (mode 1, the RFC's "after ICMP black hole detection"): full
/// segments vanish, the RTO fires `tcp_retries1` times, then probing turns on, the
/// MSS drops to `tcp_base_mss` and the transfer completes — and probes climb again.
#[test]
fn black_hole_detection_turns_probing_on_after_timeouts() {
    let k = black_hole(62, 1);
    assert_eq!(
        k.c.with_tcb(|t| t.mss_cache),
        1448,
        "full-sized segments first"
    );
    let got = transfer(&k, 2 << 20, Duration::from_secs(120));
    assert_eq!(got, 2 << 20);
    let mib = &k.h.a.tcp.mib;
    assert!(mib.get(TcpExt::TCPTimeouts) >= 3, "timeouts found the hole");
    let (on, mss) = k.c.with_tcb(|t| (t.mtup.enabled, t.mss_cache));
    assert!(on);
    assert!(
        mss > 1024 - 12 && mss <= PATH_MTU as u32 - 52,
        "probed up: {mss}"
    );
}

/// Off (mode 0, Linux's default): the same path stalls — nothing full-sized gets
/// through, and TCP keeps retransmitting it.
#[test]
fn without_probing_a_black_hole_stalls_the_connection() {
    let k = black_hole(63, 0);
    let got = transfer(&k, 1 << 20, Duration::from_secs(20));
    assert_eq!(got, 0, "not one full segment crossed");
    assert!(k.h.a.tcp.mib.get(TcpExt::TCPTimeouts) >= 4);
    assert!(!k.c.with_tcb(|t| t.mtup.enabled));
}
