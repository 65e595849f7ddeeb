//! BIG TCP for IPv4 (Linux 6.3's `gso_ipv4_max_size` / `gro_ipv4_max_size`): with the
//! device sizes raised above 64 KiB, TCP builds TSO packets beyond what the IP total
//! length can say, writes 0 there (`iph_set_totlen`), and the receiver takes the length
//! from the packet itself (`iph_totlen`); GRO builds packets that large only where its
//! own size allows; the defaults keep every packet within 64 KiB.

mod common;

use std::net::SocketAddrV4;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use usnet::dev::rx::{PacketTap, TapDir};
use usnet::dev::NetDeviceOps;
use usnet::dev::{Features, NetDevice, GRO_MAX_SIZE, GSO_MAX_SIZE};
use usnet::mib::Ip;
use usnet::skb::Skb;
use usnet::tcp::TcpSock;
use usnet::testutil::TwoHosts;
use usnet::time::Instant;

/// The size the kernel's own BIG TCP selftest uses.
const BIG: u32 = 128_000;

/// What a device's tap saw of each TCP/IPv4 packet: (direction out, IP length from the
/// packet, the header's total length field).
#[derive(Default)]
struct Sizes(Mutex<Vec<(bool, usize, u16)>>);

impl PacketTap for Sizes {
    fn tap(&self, _dev: &NetDevice, frame: &Skb, mac: usize, dir: TapDir, _now: Instant) {
        let lin_end = frame.data_offset() + frame.headlen();
        let Some(h) = frame.head_buf().get(mac..lin_end) else {
            return;
        };
        if h.len() < 14 + 20 || h[12..14] != [8, 0] || h[14 + 9] != 6 {
            return;
        }
        let ip_len = h.len() + frame.data_len() - 14;
        let tot = u16::from_be_bytes([h[16], h[17]]);
        self.0
            .lock()
            .push((matches!(dir, TapDir::Outgoing), ip_len, tot));
    }
}

impl Sizes {
    fn attach(dev: &NetDevice) -> Arc<Sizes> {
        let s = Arc::new(Sizes::default());
        dev.add_tap(s.clone());
        s
    }

    /// The largest packet seen going `out` (or in), and whether every packet above
    /// 64 KiB read 0 as its total length and every other one its true length.
    fn largest(&self, out: bool) -> usize {
        let v = self.0.lock();
        for &(_, len, tot) in v.iter() {
            let want = if len > 0xffff { 0 } else { len as u16 };
            assert_eq!(tot, want, "total length of a {len}-byte packet");
        }
        v.iter()
            .filter(|p| p.0 == out)
            .map(|p| p.1)
            .max()
            .unwrap_or(0)
    }
}

/// Two hosts on a 10 Gbit/s wire (so virtual time passes and the receive window
/// grows), `setup` applied before the connection a → b is made.
fn pair(seed: u64, setup: impl Fn(&TwoHosts)) -> (TwoHosts, Arc<TcpSock>, Arc<TcpSock>) {
    let h = TwoHosts::new(seed, |c| c.line_rate_bps = 10_000_000_000).with_ip();
    setup(&h);
    let (c, s) = h.tcp_pair(5001);
    (h, c, s)
}

fn big_tcp(d: &NetDevice, gso: u32, gro: u32) {
    d.set_gso_ipv4_max_size(gso).expect("gso_ipv4_max_size");
    d.set_gro_ipv4_max_size(gro).expect("gro_ipv4_max_size");
}

/// Move `n` patterned bytes a → b with the receiver reading all the time; asserts
/// they arrive intact.
fn bulk(h: &TwoHosts, c: &Arc<TcpSock>, s: &Arc<TcpSock>, n: usize) {
    common::bulk_intact(&h.sim, c, s, n, Duration::from_secs(60));
}

#[test]
fn big_tcp_sends_packets_beyond_64k_with_a_zero_total_length() {
    let (h, c, s) = pair(31, |h| {
        big_tcp(&h.da, BIG, BIG);
        big_tcp(&h.db, BIG, BIG);
    });
    let (ta, tb) = (Sizes::attach(&h.da), Sizes::attach(&h.db));
    bulk(&h, &c, &s, 16 << 20);
    let out = ta.largest(true);
    assert!(
        out > 0xffff && out < BIG as usize,
        "largest TSO packet {out} bytes: above 64 KiB, below gso_ipv4_max_size"
    );
    // The receiver's NIC took the trains whole (its hardware GRO allows BIG), and IP
    // took the length from the packet: no header errors, nothing truncated.
    assert!(tb.largest(false) > 0xffff);
    assert_eq!(h.b.ipv4.mib.get(Ip::InHdrErrors), 0);
    assert_eq!(h.b.ipv4.mib.get(Ip::InDiscards), 0);
    assert_eq!(c.info().total_retrans, 0);
}

#[test]
fn by_default_every_packet_stays_within_64k() {
    let (h, c, s) = pair(32, |h| {
        assert_eq!(h.da.gso_ipv4_max_size(), 65_536);
        assert_eq!(h.da.gro_ipv4_max_size(), 65_536);
    });
    let (ta, tb) = (Sizes::attach(&h.da), Sizes::attach(&h.db));
    bulk(&h, &c, &s, 16 << 20);
    let out = ta.largest(true);
    assert!(out > 60_000 && out <= 0xffff, "largest TSO packet {out}");
    assert!(tb.largest(false) <= 0xffff);
}

#[test]
fn a_receiver_without_big_gro_gets_big_packets_cut_into_frames() {
    // The sender builds BIG packets; the receiver's GRO (hardware and software) stops
    // at 64 KiB, so the wire hands it frames and software GRO merges them again.
    let (h, c, s) = pair(33, |h| big_tcp(&h.da, BIG, BIG));
    let (ta, tb) = (Sizes::attach(&h.da), Sizes::attach(&h.db));
    bulk(&h, &c, &s, 16 << 20);
    assert!(ta.largest(true) > 0xffff);
    assert!(
        tb.largest(false) <= 0xffff,
        "nothing above 64 KiB reached IP"
    );
    let sw: std::collections::HashMap<_, _> = h.db.offload_stats().into_iter().collect();
    assert!(sw["rx_gro_skbs"] > 0);
}

#[test]
fn software_gro_builds_big_packets_only_up_to_gro_ipv4_max_size() {
    // A BIG sender's MTU 9000 frames merged in software (hardware GRO off): 17 page
    // fragments reach past 64 KiB, which GRO builds only when gro_ipv4_max_size
    // allows it.
    for (gro, big) in [(65_536, false), (BIG, true)] {
        let h = TwoHosts::new(34, |c| {
            c.line_rate_bps = 10_000_000_000;
            c.mtu = 9000;
        })
        .with_ip();
        h.da.set_gso_ipv4_max_size(BIG).expect("gso size");
        h.db.set_features(h.db.features() - Features::GRO_HW);
        h.db.set_gro_ipv4_max_size(gro).expect("gro size");
        let (c, s) = h.tcp_pair(5001);
        let tap = Sizes::attach(&h.db);
        bulk(&h, &c, &s, 8 << 20);
        let largest = tap.largest(false);
        assert_eq!(
            largest > 0xffff,
            big,
            "gro_ipv4_max_size {gro}: largest packet up the stack {largest}"
        );
        assert!(largest < gro as usize);
    }
}

#[test]
fn software_gso_cuts_big_packets_for_a_device_without_tso() {
    // Without TSO the device cannot take the packets TCP builds: validate_xmit_skb
    // segments them in software, whatever their size.
    let (h, c, s) = pair(35, |h| {
        big_tcp(&h.da, BIG, BIG);
        big_tcp(&h.db, BIG, BIG);
        h.da.set_features(h.da.features() - Features::TSO);
    });
    bulk(&h, &c, &s, 8 << 20);
    // TCP sized its GSO packets past 64 KiB (tcp_tso_autosize from sk_gso_max_size)...
    let goal = c.with_tcb(|t| usnet::tcp::output::tcp_tso_segs(&h.a, t, t.mss_cache) * t.mss_cache);
    assert!(goal > 0xffff, "GSO packets of {goal} bytes");
    // ...and the device, without TSO, got them as frames.
    let a: std::collections::HashMap<_, _> = h.va.ethtool_stats().into_iter().collect();
    assert_eq!(a["tx_queue_0_tso"], 0);
    assert!(
        h.da.stats.tx_packets.load(Ordering::Relaxed) > (8 << 20) / 1500,
        "sent as frames"
    );
}

#[test]
fn device_gso_and_gro_sizes_are_bounded_as_linux_bounds_them() {
    let h = TwoHosts::new(36, |_| {}).with_ip();
    let e = |r: std::io::Result<()>| r.expect_err("refused").kind();
    // gso_ipv4_max_size: at most the hardware's tso_max_size (the vnic's, as veth's,
    // is GSO_MAX_SIZE), above what one TCP header needs.
    assert_eq!(h.da.tso_max_size, GSO_MAX_SIZE);
    h.da.set_gso_ipv4_max_size(GSO_MAX_SIZE)
        .expect("the largest");
    assert_eq!(
        e(h.da.set_gso_ipv4_max_size(GSO_MAX_SIZE + 1)),
        std::io::ErrorKind::InvalidInput
    );
    assert_eq!(
        e(h.da.set_gso_ipv4_max_size(100)),
        std::io::ErrorKind::InvalidInput
    );
    // gro_ipv4_max_size: at most GRO_MAX_SIZE.
    h.da.set_gro_ipv4_max_size(GRO_MAX_SIZE)
        .expect("the largest");
    assert_eq!(
        e(h.da.set_gro_ipv4_max_size(GRO_MAX_SIZE + 1)),
        std::io::ErrorKind::InvalidInput
    );
    // Loopback can go BIG (as Linux's lo); a device whose hardware says nothing more
    // stays at TSO_LEGACY_MAX_SIZE.
    let lo = h.a.devs.by_name("lo").expect("lo");
    lo.set_gso_ipv4_max_size(BIG).expect("lo takes BIG TCP");
    let cfg = usnet::dev::NetDeviceConfig::ethernet("plain0", usnet::testutil::mac(9));
    assert_eq!(cfg.tso_max_size, 65_536);
}

#[test]
fn a_zero_total_length_on_a_packet_that_is_not_big_tcp_is_a_header_error() {
    // iph_totlen reads 0 as "the skb's length" only for a TCP GSO packet; on a single
    // frame it is a total length shorter than the header.
    let h = TwoHosts::new(37, |_| {}).with_ip();
    let mut f = common::craft_tcp(
        SocketAddrV4::new(usnet::testutil::ip(10, 0, 0, 1), 4000),
        SocketAddrV4::new(usnet::testutil::ip(10, 0, 0, 2), 5000),
        1,
        0,
        0x02,
        1000,
        b"",
        false,
    );
    {
        let d = f.data_mut();
        d[16..18].copy_from_slice(&[0, 0]);
        d[24..26].copy_from_slice(&[0, 0]);
        let c = usnet_wire::checksum::checksum(&d[14..34]);
        d[24..26].copy_from_slice(&c.to_be_bytes());
    }
    let before = h.b.ipv4.mib.get(Ip::InHdrErrors);
    common::inject(&h, f, false);
    h.sim.run_for(Duration::from_millis(1));
    assert_eq!(h.b.ipv4.mib.get(Ip::InHdrErrors), before + 1);
}

/// Move 16 MiB a → b (10.0.2.1:7000) through the router and check it arrives intact.
fn routed_bulk(h: &usnet::testutil::Routed) {
    let l = TcpSock::new(&h.b);
    l.set_nonblocking(true);
    l.bind(SocketAddrV4::new(usnet::testutil::ip(10, 0, 2, 1), 7000))
        .expect("bind");
    l.listen(4).expect("listen");
    let c = TcpSock::new(&h.a);
    c.set_nonblocking(true);
    let _ = c.connect(SocketAddrV4::new(usnet::testutil::ip(10, 0, 2, 1), 7000));
    let mut s = None;
    h.sim.run_while(
        || {
            s = s.take().or_else(|| l.accept().ok());
            s.is_none()
        },
        Duration::from_secs(5),
    );
    let s = s.expect("accepted");
    s.set_nonblocking(true);
    common::bulk_intact(&h.sim, &c, &s, 16 << 20, Duration::from_secs(60));
    assert!(h.r.ipv4.mib.get(Ip::ForwDatagrams) > 0);
}

#[test]
fn a_router_segments_big_packets_for_a_link_without_big_tcp() {
    // a and the router's first NIC speak BIG TCP; the router's second NIC and b do not.
    // The router takes BIG packets in whole and, forwarding, hands its second NIC
    // nothing it could not send: validate_xmit_skb segments them in software.
    let h = usnet::testutil::Routed::new(38, |c| c.line_rate_bps = 10_000_000_000);
    big_tcp(&h.da, BIG, BIG);
    big_tcp(&h.r0, BIG, BIG);
    let (t_in, t_out) = (Sizes::attach(&h.r0), Sizes::attach(&h.r1));
    routed_bulk(&h);
    assert!(
        t_in.largest(false) > 0xffff,
        "BIG packets reached the router"
    );
    assert!(
        t_out.largest(true) <= 0xffff,
        "the router's second NIC sent nothing above its 64 KiB: {}",
        t_out.largest(true)
    );
}

#[test]
fn a_router_forwards_what_its_software_gro_merged_with_good_checksums() {
    // a sends finished frames (no checksum offload, so no TSO either); the router's NIC
    // verifies each and software GRO merges them. Forwarded, the merged packet goes out
    // as TSO — and each segment must get its own TCP checksum (tcp4_gro_complete leaves
    // the merged packet CHECKSUM_PARTIAL), which b's NIC checks.
    // No line rate: a's frames arrive in bursts, as GRO needs.
    let h = usnet::testutil::Routed::new(39, |c| c.line_rate_bps = 0);
    h.da.set_features(h.da.features() - Features::IP_CSUM);
    assert!(!h.da.features().contains(Features::TSO));
    routed_bulk(&h);
    let gro: std::collections::HashMap<_, _> = h.r0.offload_stats().into_iter().collect();
    assert!(gro["rx_gro_skbs"] > 0, "the router merged in software");
    assert_eq!(
        h.b.tcp.snmp.get(usnet::tcp::Tcp::InCsumErrors),
        0,
        "no segment reached b with a bad checksum"
    );
}

#[test]
fn a_big_coalesced_packet_goes_up_after_the_segment_gro_holds_for_its_flow() {
    // GRO holds a plain segment of a flow; a BIG packet of the same flow (total length
    // 0) arriving in the same poll must flush it first. GRO can only see the BIG packet
    // as TCP by taking its length from the skb (iph_totlen): read raw, the 0 would make
    // it "not TCP" and send it up ahead of the held segment — out of order.
    let h = TwoHosts::new(40, |_| {}).with_ip();
    for st in [&h.a, &h.b] {
        st.sysctl.set("net.ipv4.tcp_timestamps", 0).expect("sysctl");
    }
    big_tcp(&h.db, BIG, BIG);
    let (c, s) = h.tcp_pair(5001);
    let (rcv_nxt, ack) = (s.with_tcb(|t| t.rcv_nxt), c.with_tcb(|t| t.snd_nxt));
    const SEG: usize = 1000;
    const SEGS: usize = 70;
    let data: Vec<u8> = (0..SEG * (1 + SEGS)).map(|i| (i % 241) as u8).collect();
    let (src, dst) = (c.local_addr(), s.local_addr());
    let first = common::craft_tcp(src, dst, rcv_nxt, ack, 0x10, 60000, &data[..SEG], false);
    let mut big = common::craft_tcp(
        src,
        dst,
        rcv_nxt.wrapping_add(SEG as u32),
        ack,
        0x10,
        60000,
        &data[SEG..],
        false,
    );
    {
        let d = big.data_mut();
        let ip_len = d.len() - 14;
        usnet::ipv4::iph_set_totlen(&mut d[14..], ip_len);
        usnet::ipv4::ip_send_check(&mut d[14..34]);
    }
    assert_eq!(&big.data()[16..18], &[0, 0], "a BIG packet");
    // As a NIC's TSO packet: headers located, GSO fields set.
    big.set_network_header(14);
    big.set_transport_header(34);
    big.gso_type = usnet::skb::GsoType::TcpV4;
    big.gso_size = SEG as u16;
    big.gso_segs = SEGS as u16;
    // Both in one burst over a clean wire, so one NAPI poll takes them together and
    // the receiving NIC (rx-gro-hw, gro_ipv4_max_size BIG) keeps the train whole.
    h.wire.transmit(0, &mut vec![first, big]);
    h.sim.run_for(Duration::from_millis(20));
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while let Ok(n) = s.recv(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got == data,
        "{} of {} bytes in order",
        got.len(),
        data.len()
    );
    assert_eq!(
        h.b.tcp.mib.get(usnet::tcp::TcpExt::TCPOFOQueue),
        0,
        "nothing arrived out of order"
    );
    let hw: std::collections::HashMap<_, _> = h.vb.ethtool_stats().into_iter().collect();
    assert!(hw["rx_hw_gro_packets"] >= 1, "the BIG train arrived whole");
}
