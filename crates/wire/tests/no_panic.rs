//! No-panic properties: every parser, fed arbitrary bytes or truncated and
//! mutated valid packets, only ever returns `Ok` or `Err`.
//!
//! The work is done by `usnet_wire::fuzz`, which also checks that whatever
//! parses re-emits to the same repr; the cargo-fuzz targets in `fuzz/` call
//! the same functions.

mod common;

use common::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use usnet_wire::*;

type Parser = fn(&[u8]);

const PARSERS: [(&str, Parser); 6] = [
    ("ethernet", fuzz::ethernet),
    ("arp", fuzz::arp),
    ("ipv4", fuzz::ipv4),
    ("icmp", fuzz::icmp),
    ("udp", fuzz::udp),
    ("tcp", fuzz::tcp),
];

fn emit_ipv4(ip: &Ipv4Repr, body: &[u8]) -> Vec<u8> {
    let ip = Ipv4Repr {
        payload_len: body.len(),
        ..*ip
    };
    let mut buf = vec![0u8; ip.buffer_len()];
    let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
    ip.emit(&mut p, true);
    p.payload_mut().copy_from_slice(body);
    buf
}

fn emit_ethernet(eth: &EthernetRepr, ethertype: EtherType, body: &[u8]) -> Vec<u8> {
    let eth = EthernetRepr { ethertype, ..*eth };
    let mut buf = vec![0u8; eth.buffer_len() + body.len()];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    buf[eth.header_len()..].copy_from_slice(body);
    buf
}

fn emit_tcp(repr: &TcpRepr, ip: &Ipv4Repr) -> Vec<u8> {
    let mut buf = payload_bytes(repr.buffer_len(), 7);
    repr.emit(
        &mut TcpPacket::new_unchecked(&mut buf[..]),
        &ip.src_addr,
        &ip.dst_addr,
        true,
    );
    buf
}

fn emit_udp(repr: &UdpRepr, ip: &Ipv4Repr, len: usize) -> Vec<u8> {
    let mut buf = payload_bytes(repr.buffer_len(len), 3);
    repr.emit(
        &mut UdpPacket::new_unchecked(&mut buf[..]),
        &ip.src_addr,
        &ip.dst_addr,
        len,
        true,
    );
    buf
}

fn emit_icmp(repr: &Icmpv4Repr) -> Vec<u8> {
    let mut buf = payload_bytes(repr.buffer_len(), 5);
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), true);
    buf
}

fn emit_arp(repr: &ArpRepr) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
    buf
}

/// A valid packet of some layer: (parser index, bytes).
fn valid_packet() -> impl Strategy<Value = (usize, Vec<u8>)> {
    let ip = || ipv4_repr_with(Just(0usize));
    prop_oneof![
        (ethernet_repr(), arp_repr())
            .prop_map(|(e, a)| (0, emit_ethernet(&e, EtherType::Arp, &emit_arp(&a)))),
        (ethernet_repr(), ip(), tcp_repr(0usize..64)).prop_map(|(e, i, t)| {
            let i = Ipv4Repr {
                next_header: IpProtocol::Tcp,
                more_frags: false,
                frag_offset: 0,
                ..i
            };
            (
                0,
                emit_ethernet(&e, EtherType::Ipv4, &emit_ipv4(&i, &emit_tcp(&t, &i))),
            )
        }),
        (ip(), udp_repr(), 0usize..64).prop_map(|(i, u, n)| {
            let i = Ipv4Repr {
                next_header: IpProtocol::Udp,
                more_frags: false,
                frag_offset: 0,
                ..i
            };
            (2, emit_ipv4(&i, &emit_udp(&u, &i, n)))
        }),
        (ip(), icmp_repr()).prop_map(|(i, c)| {
            let i = Ipv4Repr {
                next_header: IpProtocol::Icmp,
                more_frags: false,
                frag_offset: 0,
                ..i
            };
            (2, emit_ipv4(&i, &emit_icmp(&c)))
        }),
        arp_repr().prop_map(|a| (1, emit_arp(&a))),
        icmp_repr().prop_map(|c| (3, emit_icmp(&c))),
        (ip(), udp_repr(), 0usize..64).prop_map(|(i, u, n)| (4, emit_udp(&u, &i, n))),
        (ip(), tcp_repr(0usize..64)).prop_map(|(i, t)| (5, emit_tcp(&t, &i))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_bytes(data in vec(any::<u8>(), 0..128)) {
        for (_, parse) in PARSERS {
            parse(&data);
        }
    }

    /// Bytes that start like a real header, so that parsers get past their
    /// first length check more often than with uniform noise.
    #[test]
    fn header_like_bytes(
        first in prop_oneof![Just(0x45u8), 0x40u8..0x50, any::<u8>()],
        rest in vec(any::<u8>(), 0..100),
    ) {
        let mut data = vec![first];
        data.extend_from_slice(&rest);
        for (_, parse) in PARSERS {
            parse(&data);
        }
        // The same bytes behind an IPv4 Ethernet header.
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&data);
        fuzz::ethernet(&frame);
    }

    #[test]
    fn truncated_valid_packets((which, packet) in valid_packet(), cut in any::<Index>()) {
        // Every parser on the whole packet, and its own parser on every prefix
        // length picked.
        for (_, parse) in PARSERS {
            parse(&packet);
        }
        let parse = PARSERS[which].1;
        let cut = cut.index(packet.len() + 1);
        parse(&packet[..cut]);
    }

    #[test]
    fn mutated_valid_packets(
        (which, mut packet) in valid_packet(),
        flips in vec((any::<Index>(), 1u8..=255), 1..8),
        cut in any::<Index>(),
    ) {
        for (at, xor) in flips {
            let i = at.index(packet.len());
            packet[i] ^= xor;
        }
        let parse = PARSERS[which].1;
        parse(&packet);
        let cut = cut.index(packet.len() + 1);
        parse(&packet[..cut]);
        // Mutated bytes inside a neighbouring layer's parser too.
        for (_, parse) in PARSERS {
            parse(&packet);
        }
    }
}

/// Every prefix of a few real packets, and every single-byte value at every
/// position of a small one.
#[test]
fn exhaustive_small_mutations() {
    let syn_options = [
        2u8, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
    ];
    let mut tcp = vec![0u8; 40];
    tcp[12] = 0xa0;
    tcp[13] = 0x02;
    tcp[20..].copy_from_slice(&syn_options);
    for len in 0..=tcp.len() {
        fuzz::tcp(&tcp[..len]);
    }
    for i in 0..tcp.len() {
        for v in 0..=255u8 {
            let mut m = tcp.clone();
            m[i] = v;
            fuzz::tcp(&m);
        }
    }
    let mut ip = vec![0u8; 24];
    ip[0] = 0x46;
    ip[3] = 24;
    ip[20..].copy_from_slice(&[0x94, 4, 0, 0]);
    for i in 0..ip.len() {
        for v in 0..=255u8 {
            let mut m = ip.clone();
            m[i] = v;
            fuzz::ipv4(&m);
        }
    }
}
