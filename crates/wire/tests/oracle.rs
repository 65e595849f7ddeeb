//! etherparse 0.21 as an independent oracle.
//!
//! Each format is checked both ways: packets built and serialised by
//! etherparse are parsed by usnet-wire, field by field and with checksums
//! verified; and packets emitted by usnet-wire are parsed by etherparse,
//! whose view of every field must match and whose checksum computation must
//! agree with ours.

mod common;

use std::net::Ipv4Addr;

use common::*;
use etherparse as ep;
use proptest::collection::vec;
use proptest::prelude::*;
use usnet_wire as w;
use usnet_wire::ChecksumCheck::Verify;

fn ep_ipv4(
    (dscp, ecn, ident, df, mf, frag_units, ttl, proto): (u8, u8, u16, bool, bool, u16, u8, u8),
    src: Ipv4Addr,
    dst: Ipv4Addr,
    options: &[u8],
    payload_len: usize,
) -> ep::Ipv4Header {
    let mut h = ep::Ipv4Header {
        dscp: ep::IpDscp::try_new(dscp).unwrap(),
        ecn: ep::IpEcn::try_new(ecn).unwrap(),
        total_len: (20 + options.len() + payload_len) as u16,
        identification: ident,
        dont_fragment: df,
        more_fragments: mf,
        fragment_offset: ep::IpFragOffset::try_new(frag_units).unwrap(),
        time_to_live: ttl,
        protocol: ep::IpNumber(proto),
        header_checksum: 0,
        source: src.octets(),
        destination: dst.octets(),
        options: ep::Ipv4Options::try_from(options).unwrap(),
    };
    h.header_checksum = h.calc_header_checksum();
    h
}

fn ipv4_fields() -> impl Strategy<Value = (u8, u8, u16, bool, bool, u16, u8, u8)> {
    (
        0u8..64,
        0u8..4,
        any::<u16>(),
        any::<bool>(),
        any::<bool>(),
        0u16..8192,
        any::<u8>(),
        any::<u8>(),
    )
}

/// Compares our parse of an IPv4 header with etherparse's struct.
fn same_ipv4(ours: &w::Ipv4Repr, theirs: &ep::Ipv4Header) -> Result<(), TestCaseError> {
    prop_assert_eq!(ours.src_addr.octets(), theirs.source);
    prop_assert_eq!(ours.dst_addr.octets(), theirs.destination);
    prop_assert_eq!(u8::from(ours.next_header), theirs.protocol.0);
    prop_assert_eq!(ours.hop_limit, theirs.time_to_live);
    prop_assert_eq!(ours.dscp_ecn >> 2, theirs.dscp.value());
    prop_assert_eq!(ours.dscp_ecn & 3, theirs.ecn.value());
    prop_assert_eq!(ours.ident, theirs.identification);
    prop_assert_eq!(ours.dont_frag, theirs.dont_fragment);
    prop_assert_eq!(ours.more_frags, theirs.more_fragments);
    prop_assert_eq!(ours.frag_offset, theirs.fragment_offset.byte_offset());
    prop_assert_eq!(ours.options.as_bytes(), theirs.options.as_slice());
    prop_assert_eq!(ours.header_len(), theirs.header_len());
    prop_assert_eq!(
        ours.payload_len,
        usize::from(theirs.total_len) - theirs.header_len()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ethernet_from_etherparse(
        src in any::<[u8; 6]>(),
        dst in any::<[u8; 6]>(),
        ethertype in any::<u16>(),
        payload in vec(any::<u8>(), 0..50),
    ) {
        let header = ep::Ethernet2Header {
            source: src,
            destination: dst,
            ether_type: ep::EtherType(ethertype),
        };
        let mut bytes = header.to_bytes().to_vec();
        bytes.extend_from_slice(&payload);
        let frame = w::EthernetFrame::new_checked(&bytes[..]).unwrap();
        let repr = w::EthernetRepr::parse(&frame).unwrap();
        prop_assert_eq!(repr.src_addr.0, src);
        prop_assert_eq!(repr.dst_addr.0, dst);
        prop_assert_eq!(u16::from(repr.ethertype), ethertype);
        prop_assert_eq!(frame.payload(), &payload[..]);
    }

    #[test]
    fn ethernet_to_etherparse(repr in ethernet_repr()) {
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut w::EthernetFrame::new_unchecked(&mut buf[..]));
        let (header, rest) = ep::Ethernet2Header::from_slice(&buf).unwrap();
        prop_assert!(rest.is_empty());
        prop_assert_eq!(header.source, repr.src_addr.0);
        prop_assert_eq!(header.destination, repr.dst_addr.0);
        prop_assert_eq!(header.ether_type.0, u16::from(repr.ethertype));
    }

    #[test]
    fn arp_from_etherparse(
        op in any::<u16>(),
        sha in any::<[u8; 6]>(),
        spa in any::<[u8; 4]>(),
        tha in any::<[u8; 6]>(),
        tpa in any::<[u8; 4]>(),
    ) {
        let packet = ep::ArpPacket::new(
            ep::ArpHardwareId::ETHERNET,
            ep::EtherType::IPV4,
            ep::ArpOperation(op),
            &sha,
            &spa,
            &tha,
            &tpa,
        )
        .unwrap();
        let bytes = packet.to_bytes();
        let ours = w::ArpPacket::new_checked(&bytes[..]).unwrap();
        let w::ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr,
            target_hardware_addr,
            target_protocol_addr,
        } = w::ArpRepr::parse(&ours).unwrap();
        prop_assert_eq!(u16::from(operation), op);
        prop_assert_eq!(source_hardware_addr.0, sha);
        prop_assert_eq!(source_protocol_addr.octets(), spa);
        prop_assert_eq!(target_hardware_addr.0, tha);
        prop_assert_eq!(target_protocol_addr.octets(), tpa);
    }

    /// Other hardware and protocol types: our view agrees with etherparse's,
    /// and the repr says Unsupported.
    #[test]
    fn arp_other_types_from_etherparse(
        hw in 2u16..1000,
        proto in any::<u16>(),
        hw_addr in vec(any::<u8>(), 0..20),
        proto_addr in vec(any::<u8>(), 0..20),
        op in any::<u16>(),
    ) {
        let packet = ep::ArpPacket::new(
            ep::ArpHardwareId(hw),
            ep::EtherType(proto),
            ep::ArpOperation(op),
            &hw_addr,
            &proto_addr,
            &hw_addr,
            &proto_addr,
        )
        .unwrap();
        let bytes = packet.to_bytes();
        let ours = w::ArpPacket::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(u16::from(ours.hardware_type()), hw);
        prop_assert_eq!(u16::from(ours.protocol_type()), proto);
        prop_assert_eq!(usize::from(ours.hardware_len()), hw_addr.len());
        prop_assert_eq!(usize::from(ours.protocol_len()), proto_addr.len());
        prop_assert_eq!(ours.source_hardware_addr(), &hw_addr[..]);
        prop_assert_eq!(ours.target_protocol_addr(), &proto_addr[..]);
        prop_assert_eq!(w::ArpRepr::parse(&ours), Err(w::Error::Unsupported));
    }

    #[test]
    fn arp_to_etherparse(repr in arp_repr()) {
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut w::ArpPacket::new_unchecked(&mut buf[..]));
        let theirs = ep::ArpPacket::from_slice(&buf).unwrap().try_eth_ipv4().unwrap();
        let w::ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr,
            target_hardware_addr,
            target_protocol_addr,
        } = repr;
        prop_assert_eq!(theirs.operation.0, u16::from(operation));
        prop_assert_eq!(theirs.sender_mac, source_hardware_addr.0);
        prop_assert_eq!(theirs.sender_ipv4_addr(), source_protocol_addr);
        prop_assert_eq!(theirs.target_mac, target_hardware_addr.0);
        prop_assert_eq!(theirs.target_ipv4_addr(), target_protocol_addr);
    }

    #[test]
    fn ipv4_from_etherparse(
        fields in ipv4_fields(),
        src in ipv4_addr(),
        dst in ipv4_addr(),
        options in ipv4_options(),
        payload in vec(any::<u8>(), 0..100),
        padding in 0usize..20,
    ) {
        let header = ep_ipv4(fields, src, dst, options.as_bytes(), payload.len());
        let mut bytes = header.to_bytes().to_vec();
        bytes.extend_from_slice(&payload);
        // Trailing Ethernet padding is ignored.
        bytes.extend(std::iter::repeat_n(0u8, padding));
        let packet = w::Ipv4Packet::new_checked(&bytes[..]).unwrap();
        prop_assert!(packet.verify_checksum());
        prop_assert_eq!(packet.checksum(), header.header_checksum);
        prop_assert_eq!(packet.payload(), &payload[..]);
        let repr = w::Ipv4Repr::parse(&packet, Verify).unwrap();
        same_ipv4(&repr, &header)?;
    }

    #[test]
    fn ipv4_to_etherparse(repr in ipv4_repr_with(0usize..200), seed in any::<u8>()) {
        let mut buf = payload_bytes(repr.buffer_len(), seed);
        repr.emit(&mut w::Ipv4Packet::new_unchecked(&mut buf[..]), true);
        let (theirs, rest) = ep::Ipv4Header::from_slice(&buf).unwrap();
        prop_assert_eq!(rest.len(), repr.payload_len);
        same_ipv4(&repr, &theirs)?;
        prop_assert_eq!(theirs.header_checksum, theirs.calc_header_checksum());
    }

    #[test]
    fn udp_from_etherparse(
        src in ipv4_addr(),
        dst in ipv4_addr(),
        ports in any::<(u16, u16)>(),
        payload in vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = Vec::new();
        ep::PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
            .udp(ports.0, ports.1)
            .write(&mut bytes, &payload)
            .unwrap();
        let ip = w::Ipv4Packet::new_checked(&bytes[..]).unwrap();
        let ip_repr = w::Ipv4Repr::parse(&ip, Verify).unwrap();
        prop_assert_eq!(ip_repr.next_header, w::IpProtocol::Udp);
        let udp = w::UdpPacket::new_checked(ip.payload()).unwrap();
        let repr = w::UdpRepr::parse(&udp, &src, &dst, Verify).unwrap();
        prop_assert_eq!((repr.src_port, repr.dst_port), ports);
        prop_assert_eq!(usize::from(udp.len()), 8 + payload.len());
        prop_assert_eq!(udp.payload(), &payload[..]);
        let (theirs, _) = ep::UdpHeader::from_slice(ip.payload()).unwrap();
        prop_assert_eq!(udp.checksum(), theirs.checksum);
    }

    #[test]
    fn udp_to_etherparse(
        repr in udp_repr(),
        src in ipv4_addr(),
        dst in ipv4_addr(),
        payload in vec(any::<u8>(), 0..300),
    ) {
        let mut buf = vec![0u8; repr.buffer_len(payload.len())];
        let mut packet = w::UdpPacket::new_unchecked(&mut buf[..]);
        packet.payload_mut_unchecked().copy_from_slice(&payload);
        repr.emit(&mut packet, &src, &dst, payload.len(), true);
        let (theirs, rest) = ep::UdpHeader::from_slice(&buf).unwrap();
        prop_assert_eq!(rest, &payload[..]);
        prop_assert_eq!(theirs.source_port, repr.src_port);
        prop_assert_eq!(theirs.destination_port, repr.dst_port);
        prop_assert_eq!(usize::from(theirs.length), buf.len());
        prop_assert_eq!(
            theirs.checksum,
            theirs.calc_checksum_ipv4_raw(src.octets(), dst.octets(), &payload).unwrap()
        );
    }

    #[test]
    fn tcp_from_etherparse(
        src in ipv4_addr(),
        dst in ipv4_addr(),
        header in tcp_header(),
        elements in tcp_elements(),
        payload in vec(any::<u8>(), 0..100),
    ) {
        let mut header = header;
        prop_assume!(header.set_options(&elements).is_ok());
        let mut bytes = Vec::new();
        ep::PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
            .tcp_header(header.clone())
            .write(&mut bytes, &payload)
            .unwrap();
        let ip = w::Ipv4Packet::new_checked(&bytes[..]).unwrap();
        let tcp = w::TcpPacket::new_checked(ip.payload()).unwrap();
        let (theirs, _) = ep::TcpHeader::from_slice(ip.payload()).unwrap();
        prop_assert_eq!(tcp.checksum(), theirs.checksum);
        let repr = w::TcpRepr::parse(&tcp, &src, &dst, Verify).unwrap();
        same_tcp(&repr, &theirs, payload.len())?;
        prop_assert_eq!(usize::from(tcp.header_len()), theirs.header_len());
        prop_assert_eq!(tcp.payload(), &payload[..]);
        // Our options, folded the way TcpRepr::parse does it (last one wins).
        let mut expect = Folded::default();
        for e in &elements {
            expect.add(e);
        }
        prop_assert_eq!(repr.max_seg_size, expect.mss);
        prop_assert_eq!(repr.window_scale, expect.ws);
        prop_assert_eq!(repr.sack_permitted, expect.sack_perm);
        prop_assert_eq!(repr.timestamp, expect.ts);
        prop_assert_eq!(repr.sack_ranges, expect.sack);
    }

    #[test]
    fn tcp_to_etherparse(
        repr in tcp_repr(0usize..100),
        src in ipv4_addr(),
        dst in ipv4_addr(),
        seed in any::<u8>(),
    ) {
        let mut buf = payload_bytes(repr.buffer_len(), seed);
        let payload = buf[repr.header_len()..].to_vec();
        repr.emit(&mut w::TcpPacket::new_unchecked(&mut buf[..]), &src, &dst, true);
        let (theirs, rest) = ep::TcpHeader::from_slice(&buf).unwrap();
        prop_assert_eq!(rest, &payload[..]);
        same_tcp(&repr, &theirs, payload.len())?;
        prop_assert_eq!(repr.header_len(), theirs.header_len());
        prop_assert_eq!(
            theirs.checksum,
            theirs.calc_checksum_ipv4_raw(src.octets(), dst.octets(), &payload).unwrap()
        );
        let mut seen = Folded::default();
        for e in theirs.options_iterator() {
            seen.add(&e.unwrap());
        }
        prop_assert_eq!(repr.max_seg_size, seen.mss);
        prop_assert_eq!(repr.window_scale, seen.ws);
        prop_assert_eq!(repr.sack_permitted, seen.sack_perm);
        prop_assert_eq!(repr.timestamp, seen.ts);
        prop_assert_eq!(repr.sack_ranges, seen.sack);
    }

    #[test]
    fn icmp_echo_from_etherparse(
        src in ipv4_addr(),
        dst in ipv4_addr(),
        ident in any::<u16>(),
        seq in any::<u16>(),
        reply in any::<bool>(),
        payload in vec(any::<u8>(), 0..200),
    ) {
        let builder = ep::PacketBuilder::ipv4(src.octets(), dst.octets(), 64);
        let builder = if reply {
            builder.icmpv4_echo_reply(ident, seq)
        } else {
            builder.icmpv4_echo_request(ident, seq)
        };
        let mut bytes = Vec::new();
        builder.write(&mut bytes, &payload).unwrap();
        let ip = w::Ipv4Packet::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(w::Ipv4Repr::parse(&ip, Verify).unwrap().next_header, w::IpProtocol::Icmp);
        let icmp = w::Icmpv4Packet::new_checked(ip.payload()).unwrap();
        let repr = w::Icmpv4Repr::parse(&icmp, Verify).unwrap();
        let expect = if reply {
            w::Icmpv4Repr::EchoReply { ident, seq_no: seq, data_len: payload.len() }
        } else {
            w::Icmpv4Repr::EchoRequest { ident, seq_no: seq, data_len: payload.len() }
        };
        prop_assert_eq!(repr, expect);
        prop_assert_eq!(icmp.data(), &payload[..]);
    }

    #[test]
    fn icmp_error_from_etherparse(
        fields in ipv4_fields(),
        src in ipv4_addr(),
        dst in ipv4_addr(),
        options in ipv4_options(),
        quoted in vec(any::<u8>(), 8..64),
        extra in 0usize..1000,
        code in 0u8..18,
        mtu in any::<u16>(),
    ) {
        let inner = ep_ipv4(fields, src, dst, options.as_bytes(), quoted.len() + extra);
        let mut body = inner.to_bytes().to_vec();
        body.extend_from_slice(&quoted);
        let icmp_type = if code < 16 {
            ep::Icmpv4Type::DestinationUnreachable(
                ep::icmpv4::DestUnreachableHeader::from_values(code, mtu).unwrap(),
            )
        } else {
            ep::Icmpv4Type::TimeExceeded(ep::icmpv4::TimeExceededCode::from_u8(code - 16).unwrap())
        };
        let mut bytes = Vec::new();
        ep::PacketBuilder::ipv4(dst.octets(), src.octets(), 64)
            .icmpv4(icmp_type)
            .write(&mut bytes, &body)
            .unwrap();
        let ip = w::Ipv4Packet::new_checked(&bytes[..]).unwrap();
        let icmp = w::Icmpv4Packet::new_checked(ip.payload()).unwrap();
        let repr = w::Icmpv4Repr::parse(&icmp, Verify).unwrap();
        match repr {
            w::Icmpv4Repr::DstUnreachable { reason, next_hop_mtu, header, data_len } => {
                prop_assert!(code < 16);
                prop_assert_eq!(u8::from(reason), code);
                prop_assert_eq!(next_hop_mtu, if code == 4 { mtu } else { 0 });
                same_ipv4(&header, &inner)?;
                prop_assert_eq!(data_len, quoted.len());
            }
            w::Icmpv4Repr::TimeExceeded { reason, header, data_len } => {
                prop_assert_eq!(u8::from(reason), code - 16);
                same_ipv4(&header, &inner)?;
                prop_assert_eq!(data_len, quoted.len());
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn icmp_to_etherparse(repr in icmp_repr(), seed in any::<u8>()) {
        let mut buf = payload_bytes(repr.buffer_len(), seed);
        repr.emit(&mut w::Icmpv4Packet::new_unchecked(&mut buf[..]), true);
        let slice = ep::Icmpv4Slice::from_slice(&buf).unwrap();
        // etherparse's checksum over the header as it reads it, and over the
        // raw type, code and four bytes (its parsed view of a Destination
        // Unreachable other than "fragmentation needed" assumes zeros there).
        let raw = ep::Icmpv4Type::Unknown {
            type_u8: slice.type_u8(),
            code_u8: slice.code_u8(),
            bytes5to8: slice.bytes5to8(),
        };
        prop_assert_eq!(slice.checksum(), raw.calc_checksum(slice.payload()));
        if slice.bytes5to8() == [0; 4] || slice.code_u8() == 4 {
            prop_assert_eq!(
                slice.checksum(),
                slice.icmp_type().calc_checksum(slice.payload())
            );
        }
        match repr {
            w::Icmpv4Repr::EchoRequest { ident, seq_no, data_len } => {
                prop_assert_eq!(
                    slice.icmp_type(),
                    ep::Icmpv4Type::EchoRequest(ep::IcmpEchoHeader { id: ident, seq: seq_no })
                );
                prop_assert_eq!(slice.payload().len(), data_len);
            }
            w::Icmpv4Repr::EchoReply { ident, seq_no, data_len } => {
                prop_assert_eq!(
                    slice.icmp_type(),
                    ep::Icmpv4Type::EchoReply(ep::IcmpEchoHeader { id: ident, seq: seq_no })
                );
                prop_assert_eq!(slice.payload().len(), data_len);
            }
            w::Icmpv4Repr::DstUnreachable { reason, next_hop_mtu, header, data_len } => {
                let code = u8::from(reason);
                prop_assert_eq!(slice.type_u8(), 3);
                prop_assert_eq!(slice.code_u8(), code);
                if let Some(expect) = ep::icmpv4::DestUnreachableHeader::from_values(code, next_hop_mtu) {
                    prop_assert_eq!(slice.icmp_type(), ep::Icmpv4Type::DestinationUnreachable(expect));
                }
                let (inner, rest) = ep::Ipv4Header::from_slice(slice.payload()).unwrap();
                same_ipv4(&header, &inner)?;
                prop_assert_eq!(inner.header_checksum, inner.calc_header_checksum());
                prop_assert_eq!(rest.len(), data_len);
            }
            w::Icmpv4Repr::TimeExceeded { reason, header, data_len } => {
                let code = ep::icmpv4::TimeExceededCode::from_u8(u8::from(reason)).unwrap();
                prop_assert_eq!(slice.icmp_type(), ep::Icmpv4Type::TimeExceeded(code));
                let (inner, rest) = ep::Ipv4Header::from_slice(slice.payload()).unwrap();
                same_ipv4(&header, &inner)?;
                prop_assert_eq!(rest.len(), data_len);
            }
            w::Icmpv4Repr::Other { msg_type, code } => {
                prop_assert_eq!(slice.type_u8(), msg_type);
                prop_assert_eq!(slice.code_u8(), code);
                prop_assert_eq!(slice.bytes5to8(), [0; 4]);
            }
        }
    }
}

fn tcp_header() -> impl Strategy<Value = ep::TcpHeader> {
    (
        any::<(u16, u16, u32, u32)>(),
        any::<u16>(),
        any::<(u16, u16)>(),
    )
        .prop_map(|((sp, dp, seq, ack), flags, (win, urg))| {
            let mut h = ep::TcpHeader::new(sp, dp, seq, win);
            h.acknowledgment_number = ack;
            h.urgent_pointer = urg;
            let bit = |n: u16| flags & (1 << n) != 0;
            h.fin = bit(0);
            h.syn = bit(1);
            h.rst = bit(2);
            h.psh = bit(3);
            h.ack = bit(4);
            h.urg = bit(5);
            h.ece = bit(6);
            h.cwr = bit(7);
            h.ns = bit(8);
            h
        })
}

/// Options in any order, with any padding, as other stacks may send them.
fn tcp_elements() -> impl Strategy<Value = Vec<ep::TcpOptionElement>> {
    use ep::TcpOptionElement as E;
    let sack = (any::<(u32, u32)>(), vec(any::<(u32, u32)>(), 0..3)).prop_map(|(first, rest)| {
        let mut more = [None; 3];
        for (slot, r) in more.iter_mut().zip(rest) {
            *slot = Some(r);
        }
        E::SelectiveAcknowledgement(first, more)
    });
    let element = prop_oneof![
        Just(E::Noop),
        any::<u16>().prop_map(E::MaximumSegmentSize),
        any::<u8>().prop_map(E::WindowScale),
        Just(E::SelectiveAcknowledgementPermitted),
        sack,
        any::<(u32, u32)>().prop_map(|(a, b)| E::Timestamp(a, b)),
    ];
    vec(element, 0..6)
}

/// TCP options folded into TcpRepr's fields, later ones winning.
#[derive(Default)]
struct Folded {
    mss: Option<u16>,
    ws: Option<u8>,
    sack_perm: bool,
    ts: Option<(u32, u32)>,
    sack: [Option<(u32, u32)>; 4],
}

impl Folded {
    fn add(&mut self, e: &ep::TcpOptionElement) {
        use ep::TcpOptionElement as E;
        match e {
            E::Noop => {}
            E::MaximumSegmentSize(m) => self.mss = Some(*m),
            E::WindowScale(s) => self.ws = Some(*s),
            E::SelectiveAcknowledgementPermitted => self.sack_perm = true,
            E::Timestamp(a, b) => self.ts = Some((*a, *b)),
            E::SelectiveAcknowledgement(first, rest) => {
                self.sack = [Some(*first), rest[0], rest[1], rest[2]];
            }
        }
    }
}

fn same_tcp(
    ours: &w::TcpRepr,
    theirs: &ep::TcpHeader,
    payload_len: usize,
) -> Result<(), TestCaseError> {
    use w::TcpFlags as F;
    prop_assert_eq!(ours.src_port, theirs.source_port);
    prop_assert_eq!(ours.dst_port, theirs.destination_port);
    prop_assert_eq!(ours.seq_number.0, theirs.sequence_number);
    prop_assert_eq!(ours.ack_number.is_some(), theirs.ack);
    if let Some(ack) = ours.ack_number {
        prop_assert_eq!(ack.0, theirs.acknowledgment_number);
    }
    let f = ours.flags;
    prop_assert_eq!(f.contains(F::FIN), theirs.fin);
    prop_assert_eq!(f.contains(F::SYN), theirs.syn);
    prop_assert_eq!(f.contains(F::RST), theirs.rst);
    prop_assert_eq!(f.contains(F::PSH), theirs.psh);
    prop_assert_eq!(f.contains(F::URG), theirs.urg);
    prop_assert_eq!(f.contains(F::ECE), theirs.ece);
    prop_assert_eq!(f.contains(F::CWR), theirs.cwr);
    prop_assert_eq!(f.contains(F::AE), theirs.ns);
    prop_assert_eq!(ours.window_len, theirs.window_size);
    prop_assert_eq!(ours.urgent_ptr, theirs.urgent_pointer);
    prop_assert_eq!(ours.payload_len, payload_len);
    Ok(())
}
