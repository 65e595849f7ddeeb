use super::*;
use crate::ipv4::{IpProtocol, Ipv4Options};
use std::net::Ipv4Addr;

/// A Linux `ping` echo request: id 0x0b3e, seq 1, 56 bytes of data (a
/// 16-byte timeval, then bytes 0x10 to 0x37).
const ECHO: [u8; 64] = [
    0x08, 0x00, 0x97, 0x13, 0x0b, 0x3e, 0x00, 0x01, //
    0xd1, 0xc1, 0x20, 0x66, 0x00, 0x00, 0x00, 0x00, 0xa1, 0xb2, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
    0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
];

/// Port unreachable for a 40-byte UDP datagram 10.0.0.1:54321 -> 10.0.0.2:33434,
/// quoted whole (Linux's `icmp_send` quotes up to 576 bytes).
const PORT_UNREACH: [u8; 48] = [
    0x03, 0x03, 0x81, 0xf2, 0x00, 0x00, 0x00, 0x00, //
    0x45, 0x00, 0x00, 0x28, 0xab, 0xcd, 0x00, 0x00, 0x01, 0x11, 0xf9, 0xf5, 0x0a, 0x00, 0x00, 0x01,
    0x0a, 0x00, 0x00, 0x02, //
    0xd4, 0x31, 0x82, 0x9a, 0x00, 0x14, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
    0x09, 0x0a, 0x0b, 0x0c,
];

/// "Fragmentation needed", next-hop MTU 1400, for a 1500-byte DF TCP
/// segment, quoting the header and 8 bytes (a router's minimum).
const FRAG_NEEDED: [u8; 36] = [
    0x03, 0x04, 0x89, 0x38, 0x00, 0x00, 0x05, 0x78, //
    0x45, 0x00, 0x05, 0xdc, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x58, 0x3e, 0x0a, 0x00, 0x00, 0x01,
    0xc0, 0xa8, 0x00, 0x01, //
    0xc3, 0x50, 0x00, 0x50, 0x00, 0x00, 0xaa, 0xaa,
];

fn udp_header() -> Ipv4Repr {
    Ipv4Repr {
        src_addr: Ipv4Addr::new(10, 0, 0, 1),
        dst_addr: Ipv4Addr::new(10, 0, 0, 2),
        next_header: IpProtocol::Udp,
        payload_len: 20,
        hop_limit: 1,
        dscp_ecn: 0,
        ident: 0xabcd,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
        options: Ipv4Options::new(),
    }
}

#[test]
fn parse_echo_request() {
    let p = Icmpv4Packet::new_checked(&ECHO[..]).unwrap();
    assert_eq!(p.msg_type(), msg_type::ECHO_REQUEST);
    assert_eq!(p.msg_code(), 0);
    assert_eq!(p.checksum(), 0x9713);
    assert_eq!(p.echo_ident(), 0x0b3e);
    assert_eq!(p.echo_seq_no(), 1);
    assert!(p.verify_checksum());
    assert_eq!(p.data().len(), 56);
    let repr = Icmpv4Repr::parse(&p, ChecksumCheck::Verify).unwrap();
    assert_eq!(
        repr,
        Icmpv4Repr::EchoRequest {
            ident: 0x0b3e,
            seq_no: 1,
            data_len: 56
        }
    );
    assert_eq!(
        repr.to_string(),
        "ICMP echo request, id 2878, seq 1, length 64"
    );
}

#[test]
fn emit_echo_byte_exact_and_reply() {
    let repr = Icmpv4Repr::EchoRequest {
        ident: 0x0b3e,
        seq_no: 1,
        data_len: 56,
    };
    let mut buf = [0u8; 64];
    buf[8..].copy_from_slice(&ECHO[8..]);
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), true);
    assert_eq!(buf, ECHO);

    // The reply Linux sends back: type 0, same id, seq and data.
    let reply = Icmpv4Repr::EchoReply {
        ident: 0x0b3e,
        seq_no: 1,
        data_len: 56,
    };
    reply.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), true);
    assert_eq!(buf[0], 0);
    // Type 8 -> 0 changes the checksum by 0x0800 (RFC 1624).
    assert_eq!(u16::from_be_bytes([buf[2], buf[3]]), 0x9f13);
    let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(Icmpv4Repr::parse(&p, ChecksumCheck::Verify).unwrap(), reply);
}

#[test]
fn parse_port_unreachable() {
    let p = Icmpv4Packet::new_checked(&PORT_UNREACH[..]).unwrap();
    assert!(p.verify_checksum());
    let repr = Icmpv4Repr::parse(&p, ChecksumCheck::Verify).unwrap();
    assert_eq!(
        repr,
        Icmpv4Repr::DstUnreachable {
            reason: DstUnreachable::PortUnreachable,
            next_hop_mtu: 0,
            header: udp_header(),
            data_len: 20,
        }
    );
    assert_eq!(repr.buffer_len(), 48);
    assert_eq!(repr.header_len(), 28);
    let mut buf = [0u8; 48];
    buf[28..].copy_from_slice(&PORT_UNREACH[28..]);
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), true);
    assert_eq!(buf, PORT_UNREACH);
    assert_eq!(
        repr.to_string(),
        "ICMP 10.0.0.2 unreachable - port unreachable, length 48"
    );
}

#[test]
fn parse_frag_needed() {
    let p = Icmpv4Packet::new_checked(&FRAG_NEEDED[..]).unwrap();
    assert_eq!(p.next_hop_mtu(), 1400);
    let repr = Icmpv4Repr::parse(&p, ChecksumCheck::Verify).unwrap();
    match repr {
        Icmpv4Repr::DstUnreachable {
            reason: DstUnreachable::FragRequired,
            next_hop_mtu: 1400,
            header,
            data_len: 8,
        } => {
            assert_eq!(header.payload_len, 1480);
            assert!(header.dont_frag);
            assert_eq!(header.next_header, IpProtocol::Tcp);
        }
        other => panic!("{other:?}"),
    }
    let mut buf = [0u8; 36];
    buf[28..].copy_from_slice(&FRAG_NEEDED[28..]);
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), true);
    assert_eq!(buf, FRAG_NEEDED);
}

#[test]
fn time_exceeded() {
    let repr = Icmpv4Repr::TimeExceeded {
        reason: TimeExceeded::TtlExpired,
        header: udp_header(),
        data_len: 20,
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    buf[28..].copy_from_slice(&PORT_UNREACH[28..]);
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), true);
    assert_eq!(&buf[..2], &[11, 0]);
    assert_eq!(&buf[4..], &PORT_UNREACH[4..]);
    let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(Icmpv4Repr::parse(&p, ChecksumCheck::Verify).unwrap(), repr);
    assert_eq!(repr.to_string(), "ICMP time exceeded in-transit, length 48");
    // An unknown Time Exceeded code is Other.
    buf[1] = 7;
    let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(
        Icmpv4Repr::parse(&p, ChecksumCheck::Ignore).unwrap(),
        Icmpv4Repr::Other {
            msg_type: 11,
            code: 7
        }
    );
}

#[test]
fn other_messages() {
    // A timestamp request (type 13) is kept as Other.
    let mut buf = [
        13u8, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    Icmpv4Packet::new_unchecked(&mut buf[..]).fill_checksum();
    let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
    let repr = Icmpv4Repr::parse(&p, ChecksumCheck::Verify).unwrap();
    assert_eq!(
        repr,
        Icmpv4Repr::Other {
            msg_type: 13,
            code: 0
        }
    );
    assert_eq!(repr.buffer_len(), 8);
    let mut out = [0xffu8; 8];
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..]), true);
    assert_eq!(&out[..2], &[13, 0]);
    assert_eq!(&out[4..], &[0, 0, 0, 0]);
    assert!(Icmpv4Packet::new_unchecked(&out[..]).verify_checksum());
}

#[test]
fn errors() {
    for n in 0..8 {
        assert_eq!(Icmpv4Packet::new_checked(&ECHO[..n]), Err(Error::Truncated));
    }
    let mut bad = ECHO;
    bad[20] ^= 1;
    let p = Icmpv4Packet::new_checked(&bad[..]).unwrap();
    assert!(!p.verify_checksum());
    assert_eq!(
        Icmpv4Repr::parse(&p, ChecksumCheck::Verify),
        Err(Error::Checksum)
    );
    assert!(Icmpv4Repr::parse(&p, ChecksumCheck::Ignore).is_ok());

    // Fewer than 8 quoted payload bytes.
    let p = Icmpv4Packet::new_checked(&FRAG_NEEDED[..35]).unwrap();
    assert_eq!(
        Icmpv4Repr::parse(&p, ChecksumCheck::Ignore),
        Err(Error::Truncated)
    );
    // Quoted header cut short.
    let p = Icmpv4Packet::new_checked(&FRAG_NEEDED[..20]).unwrap();
    assert_eq!(
        Icmpv4Repr::parse(&p, ChecksumCheck::Ignore),
        Err(Error::Truncated)
    );
    // Quoted header with IHL 4, or version 6.
    let mut bad = FRAG_NEEDED;
    bad[8] = 0x44;
    let p = Icmpv4Packet::new_checked(&bad[..]).unwrap();
    assert_eq!(
        Icmpv4Repr::parse(&p, ChecksumCheck::Ignore),
        Err(Error::Malformed)
    );
    bad[8] = 0x65;
    let p = Icmpv4Packet::new_checked(&bad[..]).unwrap();
    assert_eq!(
        Icmpv4Repr::parse(&p, ChecksumCheck::Ignore),
        Err(Error::Malformed)
    );
    // An unchecked view over a short buffer.
    let p = Icmpv4Packet::new_unchecked(&ECHO[..3]);
    assert_eq!(
        Icmpv4Repr::parse(&p, ChecksumCheck::Ignore),
        Err(Error::Truncated)
    );
}

#[test]
fn code_conversions() {
    for v in 0..=255u8 {
        assert_eq!(u8::from(DstUnreachable::from(v)), v);
    }
    assert_eq!(DstUnreachable::from(13), DstUnreachable::AdminProhibited);
    assert_eq!(DstUnreachable::from(16), DstUnreachable::Unknown(16));
    assert_eq!(
        TimeExceeded::from_code(1),
        Some(TimeExceeded::FragReassembly)
    );
    assert_eq!(TimeExceeded::from_code(2), None);
    assert_eq!(u8::from(TimeExceeded::FragReassembly), 1);
}
