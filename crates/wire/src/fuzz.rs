//! Entry points that run a parser's whole path over arbitrary bytes.
//!
//! Each function wraps `data` with `new_unchecked` and with `new_checked`,
//! reads every accessor, parses the repr, and when that succeeds emits it
//! again and checks that the result parses back to the same repr. Parsers
//! of a lower layer go on into the payload (Ethernet into ARP and IPv4,
//! IPv4 into ICMP, UDP and TCP).
//!
//! They return nothing: a malformed input must only make a parser return
//! `Err`. A panic is a bug, which is what the cargo-fuzz targets in
//! `fuzz/` and the crate's no-panic property tests look for.
//!
//! ```
//! usnet_wire::fuzz::tcp(&[0xff; 7]);
//! usnet_wire::fuzz::ethernet(b"not an ethernet frame at all");
//! ```

use std::hint::black_box;
use std::net::Ipv4Addr;

use crate::checksum::ChecksumCheck;
use crate::ethernet::{EtherType, EthernetFrame, EthernetRepr};
use crate::icmp::{Icmpv4Packet, Icmpv4Repr};
use crate::ipv4::{IpProtocol, Ipv4Options, Ipv4Packet, Ipv4Repr};
use crate::tcp::{sack_blocks_emitted, TcpPacket, TcpRepr};
use crate::udp::{UdpPacket, UdpRepr};
use crate::{ArpPacket, ArpRepr};

/// The addresses used for the pseudo header when a transport parser is
/// fuzzed on its own.
const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

/// Runs an Ethernet frame through the parsers, and its payload through ARP
/// or IPv4.
pub fn ethernet(data: &[u8]) {
    let _ = black_box(EthernetRepr::parse(&EthernetFrame::new_unchecked(data)));
    let Ok(frame) = EthernetFrame::new_checked(data) else {
        return;
    };
    black_box((frame.src_addr(), frame.dst_addr(), frame.ethertype()));
    black_box(frame.payload());
    let Ok(repr) = EthernetRepr::parse(&frame) else {
        return;
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    let again = EthernetRepr::parse(&EthernetFrame::new_checked(&buf[..]).expect("emitted frame"));
    assert_eq!(again, Ok(repr));
    match repr.ethertype {
        EtherType::Arp => arp(frame.payload()),
        EtherType::Ipv4 => ipv4(frame.payload()),
        _ => {}
    }
}

/// Runs an ARP packet through the parsers.
pub fn arp(data: &[u8]) {
    let _ = black_box(ArpRepr::parse(&ArpPacket::new_unchecked(data)));
    let Ok(packet) = ArpPacket::new_checked(data) else {
        return;
    };
    black_box((packet.hardware_type(), packet.protocol_type()));
    black_box((
        packet.hardware_len(),
        packet.protocol_len(),
        packet.operation(),
    ));
    black_box((packet.source_hardware_addr(), packet.source_protocol_addr()));
    black_box((packet.target_hardware_addr(), packet.target_protocol_addr()));
    let Ok(repr) = ArpRepr::parse(&packet) else {
        return;
    };
    black_box(repr.to_string());
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
    let again = ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).expect("emitted ARP"));
    assert_eq!(again, Ok(repr));
}

/// Runs an IPv4 datagram through the parsers, and its payload through ICMP,
/// UDP or TCP.
pub fn ipv4(data: &[u8]) {
    let unchecked = Ipv4Packet::new_unchecked(data);
    let _ = black_box(Ipv4Repr::parse(&unchecked, ChecksumCheck::Verify));
    let _ = black_box(Ipv4Repr::parse_quoted(&unchecked));
    let Ok(packet) = Ipv4Packet::new_checked(data) else {
        return;
    };
    black_box((
        packet.version(),
        packet.header_len(),
        packet.dscp(),
        packet.ecn(),
    ));
    black_box((packet.dscp_ecn(), packet.total_len(), packet.ident()));
    black_box((
        packet.reserved_flag(),
        packet.dont_frag(),
        packet.more_frags(),
    ));
    black_box((
        packet.frag_offset(),
        packet.is_fragment(),
        packet.hop_limit(),
    ));
    black_box((
        packet.next_header(),
        packet.checksum(),
        packet.verify_checksum(),
    ));
    black_box((packet.src_addr(), packet.dst_addr(), packet.payload()));
    for option in packet.options_iter() {
        let _ = black_box(option);
    }
    let _ = black_box(Ipv4Options::from_bytes(packet.options()));
    let _ = black_box(Ipv4Repr::parse(&packet, ChecksumCheck::Verify));
    let Ok(repr) = Ipv4Repr::parse(&packet, ChecksumCheck::Ignore) else {
        return;
    };
    black_box(repr.to_string());
    for option in repr.options.iter() {
        let _ = black_box(option);
    }
    let mut buf = vec![0u8; repr.buffer_len()];
    let mut out = Ipv4Packet::new_unchecked(&mut buf[..]);
    repr.emit(&mut out, true);
    out.payload_mut().copy_from_slice(packet.payload());
    let emitted = Ipv4Packet::new_checked(&buf[..]).expect("emitted IPv4");
    assert_eq!(Ipv4Repr::parse(&emitted, ChecksumCheck::Verify), Ok(repr));

    if repr.more_frags || repr.frag_offset != 0 {
        return;
    }
    let payload = packet.payload();
    match repr.next_header {
        IpProtocol::Icmp => icmp(payload),
        IpProtocol::Udp => udp_with(payload, &repr.src_addr, &repr.dst_addr),
        IpProtocol::Tcp => tcp_with(payload, &repr.src_addr, &repr.dst_addr),
        IpProtocol::Unknown(_) => {}
    }
}

/// Runs an ICMP message through the parsers.
pub fn icmp(data: &[u8]) {
    let _ = black_box(Icmpv4Repr::parse(
        &Icmpv4Packet::new_unchecked(data),
        ChecksumCheck::Verify,
    ));
    let Ok(packet) = Icmpv4Packet::new_checked(data) else {
        return;
    };
    black_box((packet.msg_type(), packet.msg_code(), packet.checksum()));
    black_box((
        packet.echo_ident(),
        packet.echo_seq_no(),
        packet.next_hop_mtu(),
    ));
    black_box((
        packet.rest_of_header(),
        packet.data(),
        packet.verify_checksum(),
    ));
    let _ = black_box(Icmpv4Repr::parse(&packet, ChecksumCheck::Verify));
    let Ok(repr) = Icmpv4Repr::parse(&packet, ChecksumCheck::Ignore) else {
        return;
    };
    black_box(repr.to_string());
    let mut buf = vec![0u8; repr.buffer_len()];
    // The caller's part of the message: everything after what emit writes.
    let header_len = repr.header_len();
    let tail = &data[header_len.min(data.len())..];
    let n = tail.len().min(buf.len() - header_len);
    buf[header_len..header_len + n].copy_from_slice(&tail[..n]);
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), true);
    let emitted = Icmpv4Packet::new_checked(&buf[..]).expect("emitted ICMP");
    assert_eq!(Icmpv4Repr::parse(&emitted, ChecksumCheck::Verify), Ok(repr));
}

/// Runs a UDP datagram through the parsers.
pub fn udp(data: &[u8]) {
    udp_with(data, &SRC, &DST);
}

fn udp_with(data: &[u8], src: &Ipv4Addr, dst: &Ipv4Addr) {
    let _ = black_box(UdpRepr::parse(
        &UdpPacket::new_unchecked(data),
        src,
        dst,
        ChecksumCheck::Verify,
    ));
    let Ok(packet) = UdpPacket::new_checked(data) else {
        return;
    };
    black_box((
        packet.src_port(),
        packet.dst_port(),
        packet.len(),
        packet.is_empty(),
    ));
    black_box((
        packet.checksum(),
        packet.verify_checksum(src, dst),
        packet.payload(),
    ));
    let _ = black_box(UdpRepr::parse(&packet, src, dst, ChecksumCheck::Verify));
    let Ok(repr) = UdpRepr::parse(&packet, src, dst, ChecksumCheck::Ignore) else {
        return;
    };
    let payload = packet.payload();
    let mut buf = vec![0u8; repr.buffer_len(payload.len())];
    let mut out = UdpPacket::new_unchecked(&mut buf[..]);
    out.payload_mut_unchecked().copy_from_slice(payload);
    repr.emit(&mut out, src, dst, payload.len(), true);
    let emitted = UdpPacket::new_checked(&buf[..]).expect("emitted UDP");
    assert!(emitted.checksum() != 0);
    assert_eq!(emitted.payload(), payload);
    assert_eq!(
        UdpRepr::parse(&emitted, src, dst, ChecksumCheck::Verify),
        Ok(repr)
    );
}

/// Runs a TCP segment through the parsers.
pub fn tcp(data: &[u8]) {
    tcp_with(data, &SRC, &DST);
}

fn tcp_with(data: &[u8], src: &Ipv4Addr, dst: &Ipv4Addr) {
    let _ = black_box(TcpRepr::parse(
        &TcpPacket::new_unchecked(data),
        src,
        dst,
        ChecksumCheck::Verify,
    ));
    let Ok(packet) = TcpPacket::new_checked(data) else {
        return;
    };
    black_box((packet.src_port(), packet.dst_port(), packet.seq_number()));
    black_box((packet.ack_number(), packet.header_len(), packet.flags()));
    black_box((packet.fin(), packet.syn(), packet.rst(), packet.psh()));
    black_box((packet.ack(), packet.urg(), packet.ece(), packet.cwr()));
    black_box((packet.window_len(), packet.checksum(), packet.urgent_ptr()));
    black_box((packet.payload_len(), packet.segment_len(), packet.payload()));
    black_box(packet.verify_checksum(src, dst));
    for option in packet.options_iter().flatten() {
        black_box(option.to_string());
    }
    let _ = black_box(TcpRepr::parse(&packet, src, dst, ChecksumCheck::Verify));
    let Ok(repr) = TcpRepr::parse(&packet, src, dst, ChecksumCheck::Ignore) else {
        return;
    };
    black_box(repr.to_string());
    black_box(repr.pretty(src, dst).to_string());
    let mut buf = vec![0u8; repr.buffer_len()];
    let header_len = repr.header_len();
    buf[header_len..].copy_from_slice(packet.payload());
    repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), src, dst, true);
    let emitted = TcpPacket::new_checked(&buf[..]).expect("emitted TCP");
    // Linux's layout may have less room for SACK blocks than the sender's.
    let mut expected = repr;
    let kept = sack_blocks_emitted(&repr);
    for slot in expected.sack_ranges.iter_mut().skip(kept) {
        *slot = None;
    }
    assert_eq!(
        TcpRepr::parse(&emitted, src, dst, ChecksumCheck::Verify),
        Ok(expected)
    );
    assert_eq!(emitted.payload(), packet.payload());
}
