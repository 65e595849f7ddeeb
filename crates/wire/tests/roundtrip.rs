//! Property tests: for every repr `x`, `parse(emit(x)) == x`.

mod common;

use common::*;
use proptest::collection::vec;
use proptest::prelude::*;
use usnet_wire::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ethernet(repr in ethernet_repr(), payload in vec(any::<u8>(), 0..64)) {
        let mut buf = vec![0xa5u8; repr.buffer_len() + payload.len()];
        buf[repr.header_len()..].copy_from_slice(&payload);
        repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        let frame = EthernetFrame::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(EthernetRepr::parse(&frame).unwrap(), repr);
        prop_assert_eq!(frame.payload(), &payload[..]);
        prop_assert_eq!(EtherType::from(u16::from(repr.ethertype)), repr.ethertype);
        let text = repr.src_addr.to_string();
        prop_assert_eq!(text.parse::<EthernetAddress>().unwrap(), repr.src_addr);
    }

    #[test]
    fn arp(repr in arp_repr()) {
        let mut buf = vec![0xa5u8; repr.buffer_len()];
        repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        let packet = ArpPacket::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(ArpRepr::parse(&packet).unwrap(), repr);
        let _ = repr.to_string();
    }

    #[test]
    fn ipv4(repr in ipv4_repr(), seed in any::<u8>()) {
        let mut buf = vec![0xa5u8; repr.buffer_len()];
        let payload = payload_bytes(repr.payload_len, seed);
        let mut packet = Ipv4Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut packet, true);
        packet.payload_mut().copy_from_slice(&payload);
        let packet = Ipv4Packet::new_checked(&buf[..]).unwrap();
        prop_assert!(packet.verify_checksum());
        prop_assert_eq!(Ipv4Repr::parse(&packet, ChecksumCheck::Verify).unwrap(), repr);
        prop_assert_eq!(packet.payload(), &payload[..]);
        prop_assert_eq!(usize::from(packet.header_len()), repr.header_len());
        // Every option reads back.
        for option in packet.options_iter() {
            prop_assert!(option.is_ok());
        }
        let _ = repr.to_string();

        // Without the checksum, the header still parses when not verifying.
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), false);
        let packet = Ipv4Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(Ipv4Repr::parse(&packet, ChecksumCheck::Ignore).unwrap(), repr);
    }

    #[test]
    fn ipv4_options_bytes(options in ipv4_options()) {
        prop_assert_eq!(options.len() % 4, 0);
        prop_assert!(options.len() <= 40);
        prop_assert_eq!(Ipv4Options::from_bytes(options.as_bytes()).unwrap(), options);
        // Re-laying the parsed options gives the same bytes up to the first
        // End-of-List (after which everything is padding).
        let parsed: Vec<_> = options.iter().map(|o| o.unwrap()).collect();
        let used: usize = parsed.iter().map(Ipv4Option::buffer_len).sum();
        let again = Ipv4Options::from_options(&parsed).unwrap();
        prop_assert_eq!(&again.as_bytes()[..used], &options.as_bytes()[..used]);
        prop_assert!(again.as_bytes()[used..].iter().all(|&b| b == 0));
    }

    #[test]
    fn icmp(repr in icmp_repr(), seed in any::<u8>()) {
        let mut buf = payload_bytes(repr.buffer_len(), seed);
        let data = buf[repr.header_len()..].to_vec();
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), true);
        let packet = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        prop_assert!(packet.verify_checksum());
        prop_assert_eq!(Icmpv4Repr::parse(&packet, ChecksumCheck::Verify).unwrap(), repr);
        prop_assert_eq!(&buf[repr.header_len()..], &data[..]);
        let _ = repr.to_string();
    }

    #[test]
    fn udp(
        repr in udp_repr(),
        src in ipv4_addr(),
        dst in ipv4_addr(),
        payload in vec(any::<u8>(), 0..300),
    ) {
        let mut buf = vec![0xa5u8; repr.buffer_len(payload.len())];
        let mut packet = UdpPacket::new_unchecked(&mut buf[..]);
        packet.payload_mut_unchecked().copy_from_slice(&payload);
        repr.emit(&mut packet, &src, &dst, payload.len(), true);
        let packet = UdpPacket::new_checked(&buf[..]).unwrap();
        prop_assert!(packet.checksum() != 0);
        prop_assert!(packet.verify_checksum(&src, &dst));
        prop_assert_eq!(
            UdpRepr::parse(&packet, &src, &dst, ChecksumCheck::Verify).unwrap(),
            repr
        );
        prop_assert_eq!(packet.payload(), &payload[..]);
    }

    #[test]
    fn tcp(
        repr in tcp_repr(0usize..200),
        src in ipv4_addr(),
        dst in ipv4_addr(),
        seed in any::<u8>(),
    ) {
        let payload = payload_bytes(repr.payload_len, seed);
        let mut buf = vec![0xa5u8; repr.buffer_len()];
        buf[repr.header_len()..].copy_from_slice(&payload);
        repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), &src, &dst, true);
        let packet = TcpPacket::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(usize::from(packet.header_len()), repr.header_len());
        prop_assert_eq!(repr.header_len() % 4, 0);
        prop_assert!(repr.header_len() <= 60);
        prop_assert_eq!(tcp_option_len(&repr), unclamped_option_len(&repr));
        prop_assert!(packet.verify_checksum(&src, &dst));
        prop_assert_eq!(
            TcpRepr::parse(&packet, &src, &dst, ChecksumCheck::Verify).unwrap(),
            repr
        );
        prop_assert_eq!(packet.payload(), &payload[..]);
        prop_assert_eq!(packet.segment_len(), repr.segment_len());
        let _ = repr.pretty(&src, &dst).to_string();
    }

    /// A whole frame built inside out (TCP, then IPv4, then Ethernet) and
    /// parsed layer by layer.
    #[test]
    fn ethernet_ipv4_tcp(
        eth in ethernet_repr(),
        ip in ipv4_repr_with(Just(0usize)),
        tcp in tcp_repr(0usize..100),
    ) {
        let eth = EthernetRepr { ethertype: EtherType::Ipv4, ..eth };
        let ip = Ipv4Repr {
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            ..ip
        };
        let mut frame = vec![0u8; eth.buffer_len() + ip.buffer_len()];
        {
            let (_, rest) = frame.split_at_mut(eth.header_len() + ip.header_len());
            tcp.emit(&mut TcpPacket::new_unchecked(rest), &ip.src_addr, &ip.dst_addr, true);
        }
        {
            let (_, rest) = frame.split_at_mut(eth.header_len());
            ip.emit(&mut Ipv4Packet::new_unchecked(rest), true);
        }
        eth.emit(&mut EthernetFrame::new_unchecked(&mut frame[..]));

        let f = EthernetFrame::new_checked(&frame[..]).unwrap();
        prop_assert_eq!(EthernetRepr::parse(&f).unwrap(), eth);
        let p = Ipv4Packet::new_checked(f.payload()).unwrap();
        let ip2 = Ipv4Repr::parse(&p, ChecksumCheck::Verify).unwrap();
        prop_assert_eq!(ip2, ip);
        let t = TcpPacket::new_checked(p.payload()).unwrap();
        prop_assert_eq!(
            TcpRepr::parse(&t, &ip2.src_addr, &ip2.dst_addr, ChecksumCheck::Verify).unwrap(),
            tcp
        );
    }
}
