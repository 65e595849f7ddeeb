//! Software segmentation checked byte by byte, with etherparse as an independent oracle.

use super::*;
use bytes::Bytes;
use etherparse::{PacketHeaders, TransportHeader};

/// A TCP/IPv4 GSO skb: Ethernet + IPv4 + TCP (with 12 bytes of options) in the linear
/// area, `payload` in fragments of `frag` bytes.
fn tcp_gso_skb(payload: &[u8], mss: u16, frag: usize, flags: u8) -> Skb {
    let mut skb = Skb::alloc(14 + 20 + 32, 128);
    {
        let h = skb.put(14 + 20 + 32);
        h[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        h[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        h[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut h[14..34];
        ip[0] = 0x45;
        let tot = (20 + 32 + payload.len()) as u16;
        ip[2..4].copy_from_slice(&tot.to_be_bytes());
        ip[4..6].copy_from_slice(&1000u16.to_be_bytes());
        ip[6] = 0x40; // DF
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        let t = &mut h[34..66];
        t[0..2].copy_from_slice(&40000u16.to_be_bytes());
        t[2..4].copy_from_slice(&80u16.to_be_bytes());
        t[4..8].copy_from_slice(&0xffff_f000u32.to_be_bytes()); // wraps during the burst
        t[8..12].copy_from_slice(&77u32.to_be_bytes());
        t[12] = 8 << 4;
        t[13] = flags;
        t[14..16].copy_from_slice(&512u16.to_be_bytes());
        // NOP NOP TS(10)
        t[20..32].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
    }
    skb.reset_mac_header();
    skb.set_network_header(14);
    skb.set_transport_header(34);
    let p = Bytes::copy_from_slice(payload);
    let mut off = 0;
    while off < payload.len() {
        let end = (off + frag).min(payload.len());
        skb.push_frag(p.slice(off..end)).unwrap();
        off = end;
    }
    skb.gso_size = mss;
    skb.gso_segs = payload.len().div_ceil(usize::from(mss)) as u16;
    skb.gso_type = GsoType::TcpV4;
    set_partial_csum(
        &mut skb,
        34,
        6,
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
        32 + payload.len(),
    );
    skb
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

#[test]
fn tcp_segments_carry_the_right_headers_and_checksums() {
    let data = payload(10_000);
    let skb = tcp_gso_skb(&data, 1448, 4096, 0x18 | 0x01 | 0x80); // PSH|ACK|FIN|CWR
    let mut out = Vec::new();
    segment(skb, false, &mut out).unwrap();
    assert_eq!(out.len(), 7);
    let mut joined = Vec::new();
    for (i, seg) in out.iter().enumerate() {
        let bytes = seg.to_vec();
        let h = PacketHeaders::from_ethernet_slice(&bytes).expect("etherparse parses it");
        let ip = match h.net {
            Some(etherparse::NetHeaders::Ipv4(ip, _)) => ip,
            other => panic!("{other:?}"),
        };
        assert_eq!(ip.identification, 1000 + i as u16, "IP ID increments");
        assert!(ip.dont_fragment);
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
        let tcp = match h.transport {
            Some(TransportHeader::Tcp(t)) => t,
            other => panic!("{other:?}"),
        };
        let seg_payload = h.payload.slice();
        let expect_len = if i == 6 { 10_000 - 6 * 1448 } else { 1448 };
        assert_eq!(seg_payload.len(), expect_len);
        assert_eq!(
            tcp.sequence_number,
            0xffff_f000u32.wrapping_add((i * 1448) as u32)
        );
        assert_eq!(tcp.fin, i == 6, "FIN only on the last");
        assert_eq!(tcp.psh, i == 6, "PSH only on the last");
        assert_eq!(tcp.cwr, i == 0, "CWR only on the first");
        assert!(tcp.ack);
        assert_eq!(tcp.acknowledgment_number, 77);
        let want = tcp
            .calc_checksum_ipv4(&ip, seg_payload)
            .expect("checksum computable");
        assert_eq!(tcp.checksum, want, "segment {i} checksum");
        assert_eq!(seg.ip_summed, IpSummed::None);
        joined.extend_from_slice(seg_payload);
    }
    assert_eq!(joined, data);
}

#[test]
fn hw_csum_segments_stay_partial_and_help_finishes_them() {
    let data = payload(3000);
    let skb = tcp_gso_skb(&data, 1000, 1000, 0x10);
    let mut out = Vec::new();
    segment(skb, true, &mut out).unwrap();
    assert_eq!(out.len(), 3);
    for mut seg in out {
        assert_eq!(seg.ip_summed, IpSummed::Partial);
        assert!(skb_checksum_help(&mut seg));
        let bytes = seg.to_vec();
        let h = PacketHeaders::from_ethernet_slice(&bytes).unwrap();
        let (Some(etherparse::NetHeaders::Ipv4(ip, _)), Some(TransportHeader::Tcp(tcp))) =
            (h.net, h.transport)
        else {
            panic!("not TCP/IPv4");
        };
        assert_eq!(
            tcp.checksum,
            tcp.calc_checksum_ipv4(&ip, h.payload.slice()).unwrap()
        );
    }
}

#[test]
fn segments_share_the_payload_pages() {
    let data = payload(4000);
    let skb = tcp_gso_skb(&data, 1000, 4000, 0x10);
    let page = skb.frags()[0].as_ptr();
    let mut out = Vec::new();
    segment(skb, true, &mut out).unwrap();
    for (i, s) in out.iter().enumerate() {
        assert_eq!(s.frags().len(), 1);
        assert_eq!(
            s.frags()[0].as_ptr(),
            page.wrapping_add(i * 1000),
            "no copy"
        );
    }
}

#[test]
fn socket_charge_moves_to_the_last_segment() {
    use std::sync::atomic::{AtomicU32, Ordering};
    struct Owner(AtomicU32);
    impl crate::skb::SkbOwner for Owner {
        fn skb_released(&self, _t: u32) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let o = std::sync::Arc::new(Owner(AtomicU32::new(0)));
    let mut skb = tcp_gso_skb(&payload(3000), 1000, 3000, 0x10);
    skb.set_owner(o.clone());
    let mut out = Vec::new();
    segment(skb, true, &mut out).unwrap();
    assert!(out[2].has_owner());
    out.truncate(2);
    assert_eq!(
        o.0.load(Ordering::SeqCst),
        1,
        "released with the last segment"
    );
}

#[test]
fn udp_segmentation_fixes_lengths() {
    let data = payload(2500);
    let mut skb = Skb::alloc(42, 128);
    {
        let h = skb.put(42);
        h[12..14].copy_from_slice(&[0x08, 0x00]);
        h[14] = 0x45;
        h[16..18].copy_from_slice(&((28 + 2500) as u16).to_be_bytes());
        h[22] = 64;
        h[23] = 17;
        h[26..30].copy_from_slice(&[10, 0, 0, 1]);
        h[30..34].copy_from_slice(&[10, 0, 0, 2]);
        h[34..36].copy_from_slice(&5000u16.to_be_bytes());
        h[36..38].copy_from_slice(&53u16.to_be_bytes());
    }
    skb.set_network_header(14);
    skb.set_transport_header(34);
    skb.push_frag(Bytes::from(data.clone())).unwrap();
    skb.gso_size = 1000;
    skb.gso_segs = 3;
    skb.gso_type = GsoType::UdpL4;
    let mut out = Vec::new();
    segment(skb, false, &mut out).unwrap();
    assert_eq!(out.len(), 3);
    for seg in &out {
        let bytes = seg.to_vec();
        let h = PacketHeaders::from_ethernet_slice(&bytes).unwrap();
        let (Some(etherparse::NetHeaders::Ipv4(ip, _)), Some(TransportHeader::Udp(udp))) =
            (h.net, h.transport)
        else {
            panic!("not UDP/IPv4");
        };
        assert_eq!(usize::from(udp.length), 8 + h.payload.slice().len());
        assert_eq!(
            udp.checksum,
            udp.calc_checksum_ipv4(&ip, h.payload.slice()).unwrap()
        );
    }
}

#[test]
fn malformed_headers_are_refused_not_panicked() {
    let mut skb = Skb::alloc(10, 16);
    skb.put(10);
    skb.gso_size = 100;
    skb.gso_type = GsoType::TcpV4;
    let mut out = Vec::new();
    assert!(segment(skb, true, &mut out).is_err());
    let mut skb = tcp_gso_skb(&payload(100), 50, 100, 0x10);
    skb.gso_type = GsoType::UdpL4;
    assert!(segment(skb, true, &mut out).is_err());
    assert!(out.is_empty());
}
