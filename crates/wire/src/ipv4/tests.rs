use super::*;

/// The IPv4 header of a Linux `ping 10.0.0.2` echo request (84 bytes in all).
const PING_HEADER: [u8; 20] = [
    0x45, 0x00, 0x00, 0x54, 0xb7, 0xd5, 0x40, 0x00, 0x40, 0x01, 0x6e, 0xd1, 0x0a, 0x00, 0x00, 0x01,
    0x0a, 0x00, 0x00, 0x02,
];

/// An IGMPv2 membership report: IHL 6 with a Router Alert option, TTL 1.
const IGMP: [u8; 32] = [
    0x46, 0xc0, 0x00, 0x20, 0x00, 0x00, 0x40, 0x00, 0x01, 0x02, 0x41, 0x6a, 0xc0, 0xa8, 0x01, 0x0a,
    0xe0, 0x00, 0x00, 0xfb, 0x94, 0x04, 0x00, 0x00, //
    0x16, 0x00, 0x09, 0x04, 0xe0, 0x00, 0x00, 0xfb,
];

fn ping_packet() -> Vec<u8> {
    let mut buf = PING_HEADER.to_vec();
    buf.extend((0..64).map(|i| i as u8));
    buf
}

fn ping_repr() -> Ipv4Repr {
    Ipv4Repr {
        src_addr: Ipv4Addr::new(10, 0, 0, 1),
        dst_addr: Ipv4Addr::new(10, 0, 0, 2),
        next_header: IpProtocol::Icmp,
        payload_len: 64,
        hop_limit: 64,
        dscp_ecn: 0,
        ident: 0xb7d5,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        options: Ipv4Options::new(),
    }
}

#[test]
fn parse_ping() {
    let buf = ping_packet();
    let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(p.version(), 4);
    assert_eq!(p.header_len(), 20);
    assert_eq!(p.dscp(), 0);
    assert_eq!(p.ecn(), 0);
    assert_eq!(p.total_len(), 84);
    assert_eq!(p.ident(), 0xb7d5);
    assert!(p.dont_frag() && !p.more_frags() && !p.reserved_flag() && !p.is_fragment());
    assert_eq!(p.frag_offset(), 0);
    assert_eq!(p.ttl(), 64);
    assert_eq!(p.protocol(), IpProtocol::Icmp);
    assert_eq!(p.checksum(), 0x6ed1);
    assert!(p.verify_checksum());
    assert_eq!(p.options(), &[] as &[u8]);
    assert_eq!(p.payload().len(), 64);
    assert_eq!(
        Ipv4Repr::parse(&p, ChecksumCheck::Verify).unwrap(),
        ping_repr()
    );
}

#[test]
fn emit_ping_byte_exact() {
    let repr = ping_repr();
    let mut buf = vec![0xffu8; repr.buffer_len()];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), true);
    assert_eq!(&buf[..20], &PING_HEADER);
    // Without the checksum the field is zero.
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), false);
    assert_eq!(&buf[10..12], &[0, 0]);
}

#[test]
fn router_alert_option() {
    let p = Ipv4Packet::new_checked(&IGMP[..]).unwrap();
    assert_eq!(p.header_len(), 24);
    assert_eq!(p.dscp(), 0x30);
    assert!(p.verify_checksum());
    let opts: Vec<_> = p.options_iter().collect();
    assert_eq!(opts, vec![Ok(Ipv4Option::RouterAlert(0))]);
    let repr = Ipv4Repr::parse(&p, ChecksumCheck::Verify).unwrap();
    assert_eq!(repr.options.as_bytes(), &[0x94, 0x04, 0x00, 0x00]);
    assert_eq!(repr.payload_len, 8);
    assert_eq!(repr.header_len(), 24);
    assert_eq!(repr.hop_limit, 1);
    assert_eq!(repr.next_header, IpProtocol::Unknown(2));
    let mut out = [0u8; 32];
    out[24..].copy_from_slice(&IGMP[24..]);
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]), true);
    assert_eq!(out, IGMP);
    assert_eq!(
        repr.to_string(),
        "IP (tos 0xc0, ttl 1, id 0, offset 0, flags [DF], proto unknown (2), length 32, \
         options (4 bytes)) 192.168.1.10 > 224.0.0.251"
    );
}

#[test]
fn ethernet_padding_is_trimmed() {
    // A 40-byte datagram in a 46-byte Ethernet payload.
    let repr = Ipv4Repr {
        payload_len: 20,
        next_header: IpProtocol::Tcp,
        ..ping_repr()
    };
    let mut buf = [0u8; 46];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), true);
    let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(p.payload().len(), 20);
    assert_eq!(Ipv4Repr::parse(&p, ChecksumCheck::Verify).unwrap(), repr);
}

#[test]
fn length_errors() {
    let buf = ping_packet();
    for n in 0..20 {
        assert_eq!(Ipv4Packet::new_checked(&buf[..n]), Err(Error::Truncated));
    }
    // Total length 84 with 83 bytes.
    assert_eq!(Ipv4Packet::new_checked(&buf[..83]), Err(Error::Truncated));
    // IHL 4.
    let mut bad = buf.clone();
    bad[0] = 0x44;
    assert_eq!(Ipv4Packet::new_checked(&bad[..]), Err(Error::Malformed));
    // IHL 15 but only 20 bytes.
    let mut bad = PING_HEADER;
    bad[0] = 0x4f;
    bad[3] = 20;
    assert_eq!(Ipv4Packet::new_checked(&bad[..]), Err(Error::Truncated));
    // Total length below the header length.
    let mut bad = buf.clone();
    bad[2] = 0;
    bad[3] = 19;
    assert_eq!(Ipv4Packet::new_checked(&bad[..]), Err(Error::Malformed));
    // A view built unchecked is checked again by parse.
    let p = Ipv4Packet::new_unchecked(&buf[..30]);
    assert_eq!(
        Ipv4Repr::parse(&p, ChecksumCheck::Ignore),
        Err(Error::Truncated)
    );
}

#[test]
fn version_and_checksum_errors() {
    let mut buf = ping_packet();
    buf[0] = 0x65;
    let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(
        Ipv4Repr::parse(&p, ChecksumCheck::Ignore),
        Err(Error::Malformed)
    );

    let mut buf = ping_packet();
    buf[8] = 63; // TTL changed, checksum not
    let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
    assert!(!p.verify_checksum());
    assert_eq!(
        Ipv4Repr::parse(&p, ChecksumCheck::Verify),
        Err(Error::Checksum)
    );
    let repr = Ipv4Repr::parse(&p, ChecksumCheck::Ignore).unwrap();
    assert_eq!(repr.hop_limit, 63);
}

#[test]
fn fragments() {
    let repr = Ipv4Repr {
        dont_frag: false,
        more_frags: true,
        frag_offset: 1480,
        ..ping_repr()
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), true);
    assert_eq!(&buf[6..8], &[0x20, 185]);
    let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
    assert!(p.is_fragment());
    assert_eq!(p.frag_offset(), 1480);
    assert_eq!(Ipv4Repr::parse(&p, ChecksumCheck::Verify).unwrap(), repr);
    // The largest offset.
    let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
    p.set_frag_offset(0x1fff * 8);
    assert_eq!(p.frag_offset(), 65528);
    assert!(p.more_frags());
    p.clear_flags();
    assert!(!p.more_frags());
    assert_eq!(p.frag_offset(), 65528);
}

#[test]
fn setters() {
    let mut buf = ping_packet();
    let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
    p.set_dscp(46);
    p.set_ecn(2);
    assert_eq!(p.dscp_ecn(), 46 << 2 | 2);
    p.set_ecn(3);
    assert_eq!(p.dscp(), 46);
    p.set_src_addr(Ipv4Addr::new(1, 2, 3, 4));
    p.set_dst_addr(Ipv4Addr::new(5, 6, 7, 8));
    p.set_protocol(IpProtocol::Udp);
    p.set_ident(7);
    p.fill_checksum();
    assert!(p.verify_checksum());
    assert_eq!(p.src_addr(), Ipv4Addr::new(1, 2, 3, 4));
    assert_eq!(p.dst_addr(), Ipv4Addr::new(5, 6, 7, 8));
    assert_eq!(p.next_header(), IpProtocol::Udp);
    p.payload_mut()[0] = 0xaa;
    assert_eq!(buf[20], 0xaa);
}

#[test]
fn decrement_ttl_patches_checksum() {
    let mut buf = ping_packet();
    let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
    for ttl in (1..64).rev() {
        p.decrement_ttl();
        assert_eq!(p.ttl(), ttl);
        assert!(p.verify_checksum());
    }
}

#[test]
fn options_parse_each_kind() {
    let bytes = [
        0x01, // NOP
        0x07, 0x07, 0x04, 0, 0, 0, 0, // RR with one empty slot
        0x83, 0x0b, 0x08, 10, 0, 0, 1, 10, 0, 0, 2, // LSRR, pointer past the first hop
        0x89, 0x03, 0x04, // SSRR with no slots
        0x44, 0x0c, 0x05, 0x11, 0, 0, 0, 0, 0, 0, 0, 0,    // TS, overflow 1, flag 1
        0x00, // EOL
        0xde, 0xad, // padding after EOL is ignored
    ];
    let options = Ipv4Options::from_bytes(&bytes).unwrap();
    assert_eq!(options.len(), 40);
    let parsed: Vec<_> = options.iter().map(|o| o.unwrap()).collect();
    assert_eq!(
        parsed,
        vec![
            Ipv4Option::NoOperation,
            Ipv4Option::RecordRoute {
                pointer: 4,
                route_data: &[0, 0, 0, 0]
            },
            Ipv4Option::LooseSourceRoute {
                pointer: 8,
                route_data: &[10, 0, 0, 1, 10, 0, 0, 2]
            },
            Ipv4Option::StrictSourceRoute {
                pointer: 4,
                route_data: &[]
            },
            Ipv4Option::Timestamp {
                pointer: 5,
                overflow: 1,
                flags: 1,
                data: &[0; 8]
            },
            Ipv4Option::EndOfList,
        ]
    );
    // Rebuilding from the parsed list gives the same bytes up to the EOL.
    let rebuilt = Ipv4Options::from_options(&parsed).unwrap();
    assert_eq!(rebuilt.len(), 36);
    assert_eq!(&rebuilt.as_bytes()[..35], &bytes[..35]);
    assert_eq!(rebuilt.as_bytes()[35], 0);
    assert_eq!(parsed[1].to_string(), "RR (4 bytes)");
}

#[test]
fn options_unknown_is_skipped_by_length() {
    // Security (130) with 9 bytes, then a NOP and a Router Alert.
    let bytes = [130, 11, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 148, 4, 0, 1];
    let opts: Vec<_> = Ipv4OptionsIter::new(&bytes).collect();
    assert_eq!(
        opts,
        vec![
            Ok(Ipv4Option::Unknown {
                kind: 130,
                data: &[1, 2, 3, 4, 5, 6, 7, 8, 9]
            }),
            Ok(Ipv4Option::NoOperation),
            Ok(Ipv4Option::RouterAlert(1)),
        ]
    );
}

#[test]
fn options_malformed() {
    let cases: &[&[u8]] = &[
        &[0x07],                   // no length octet
        &[0x07, 0x00, 0, 0],       // length 0
        &[0x07, 0x01, 0, 0],       // length 1
        &[0x07, 0x08, 4, 0],       // past the end
        &[0x07, 0x02, 0, 0],       // RR without a pointer
        &[0x07, 0x03, 0x03, 0],    // RR pointer below 4
        &[0x83, 0x03, 0x00, 0],    // LSRR pointer 0
        &[0x44, 0x03, 0x05, 0],    // TS too short
        &[0x44, 0x04, 0x04, 0],    // TS pointer below 5
        &[0x94, 0x03, 0x00, 0],    // RA length 3
        &[0x94, 0x06, 0, 0, 0, 0], // RA length 6
        &[1, 1, 1, 0x82],          // unknown without a length octet
    ];
    for &case in cases {
        assert_eq!(
            Ipv4Options::from_bytes(case),
            Err(Error::Malformed),
            "{case:?}"
        );
        let last = Ipv4OptionsIter::new(case).last().unwrap();
        assert_eq!(last, Err(Error::Malformed), "{case:?}");
    }
    assert_eq!(Ipv4Option::parse(&[]), Err(Error::Truncated));
    assert_eq!(Ipv4Options::from_bytes(&[1; 41]), Err(Error::Malformed));
    assert!(Ipv4Options::from_bytes(&[1; 40]).is_ok());
    // The iterator stops after an error.
    let mut it = Ipv4OptionsIter::new(&[0x07, 0x00, 1, 1]);
    assert!(it.next().unwrap().is_err());
    assert!(it.next().is_none());
}

#[test]
fn malformed_options_fail_the_header() {
    let mut buf = IGMP;
    buf[21] = 0x05; // RA length 5 runs past the option area
    let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(
        Ipv4Repr::parse(&p, ChecksumCheck::Ignore),
        Err(Error::Malformed)
    );
}

#[test]
fn options_padding_and_limits() {
    let options = Ipv4Options::from_options(&[Ipv4Option::NoOperation]).unwrap();
    assert_eq!(options.as_bytes(), &[1, 0, 0, 0]);
    assert_eq!(options.len(), 4);
    let data = [0u8; 39];
    let too_long = Ipv4Option::Unknown {
        kind: 200,
        data: &data[..],
    };
    assert_eq!(
        Ipv4Options::from_options(&[too_long]),
        Err(Error::Malformed)
    );
    let fits = Ipv4Option::Unknown {
        kind: 200,
        data: &data[..37],
    };
    assert_eq!(Ipv4Options::from_options(&[fits]).unwrap().len(), 40);
    // A rebuilt option that cannot parse is refused too.
    let bad = Ipv4Option::RecordRoute {
        pointer: 1,
        route_data: &[],
    };
    assert_eq!(Ipv4Options::from_options(&[bad]), Err(Error::Malformed));
    assert!(Ipv4Options::default().is_empty());
}

#[test]
fn quoted_header() {
    // The header alone, with total length 84 but no payload.
    let p = Ipv4Packet::new_unchecked(&PING_HEADER[..]);
    assert_eq!(
        Ipv4Packet::new_checked(&PING_HEADER[..]),
        Err(Error::Truncated)
    );
    let repr = Ipv4Repr::parse_quoted(&p).unwrap();
    assert_eq!(repr, ping_repr());
    assert_eq!(
        Ipv4Repr::parse_quoted(&Ipv4Packet::new_unchecked(&PING_HEADER[..19])),
        Err(Error::Truncated)
    );
}

#[test]
fn protocol_conversions() {
    for v in 0..=255u8 {
        assert_eq!(u8::from(IpProtocol::from(v)), v);
    }
    assert_eq!(IpProtocol::from(6), IpProtocol::Tcp);
    assert_eq!(IpProtocol::Tcp.to_string(), "TCP (6)");
}
