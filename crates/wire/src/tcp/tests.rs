use super::*;
use proptest::prelude::*;

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// A Linux SYN, 10.0.0.1.54321 > 10.0.0.2.80:
/// `Flags [S], seq 2587569181, win 64240, options [mss 1460,sackOK,TS val
/// 2863311530 ecr 0,nop,wscale 7], length 0`.
const SYN: [u8; 40] = [
    0xd4, 0x31, 0x00, 0x50, 0x9a, 0x3b, 0x2c, 0x1d, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa, 0xf0,
    0x48, 0xdd, 0x00, 0x00, //
    0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0xaa, 0xaa, 0xaa, 0xaa, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x03, 0x03, 0x07,
];

/// The SYN-ACK Linux answers with.
const SYN_ACK: [u8; 40] = [
    0x00, 0x50, 0xd4, 0x31, 0x11, 0x22, 0x33, 0x44, 0x9a, 0x3b, 0x2c, 0x1e, 0xa0, 0x12, 0xfe, 0x88,
    0x05, 0x13, 0x00, 0x00, //
    0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x0b, 0xad, 0xf0, 0x0d, 0xaa, 0xaa, 0xaa, 0xaa,
    0x01, 0x03, 0x03, 0x07,
];

/// A data segment: `Flags [P.], seq ..:..+18, ack .., win 502, options
/// [nop,nop,TS val .. ecr ..], length 18` carrying an HTTP request.
const DATA: [u8; 50] = [
    0xd4, 0x31, 0x00, 0x50, 0x9a, 0x3b, 0x2c, 0x1e, 0x11, 0x22, 0x33, 0x45, 0x80, 0x18, 0x01, 0xf6,
    0x51, 0xb6, 0x00, 0x00, //
    0x01, 0x01, 0x08, 0x0a, 0xaa, 0xaa, 0xaa, 0xab, 0x0b, 0xad, 0xf0, 0x0d, //
    0x47, 0x45, 0x54, 0x20, 0x2f, 0x20, 0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e, 0x31, 0x0d, 0x0a,
    0x0d, 0x0a,
];

/// A duplicate ACK with one SACK block: `options [nop,nop,TS val .. ecr
/// ..,nop,nop,sack 1 {2587570176:2587571200}]`.
const SACK: [u8; 44] = [
    0x00, 0x50, 0xd4, 0x31, 0x11, 0x22, 0x33, 0x45, 0x9a, 0x3b, 0x2c, 0x1e, 0xb0, 0x10, 0x01, 0xfd,
    0x61, 0xda, 0x00, 0x00, //
    0x01, 0x01, 0x08, 0x0a, 0x0b, 0xad, 0xf0, 0x0e, 0xaa, 0xaa, 0xaa, 0xab, 0x01, 0x01, 0x05, 0x0a,
    0x9a, 0x3b, 0x30, 0x00, 0x9a, 0x3b, 0x34, 0x00,
];

fn syn_repr() -> TcpRepr {
    TcpRepr {
        src_port: 54321,
        dst_port: 80,
        seq_number: TcpSeqNumber(0x9a3b_2c1d),
        ack_number: None,
        flags: TcpFlags::SYN,
        window_len: 64240,
        urgent_ptr: 0,
        max_seg_size: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        sack_ranges: [None; 4],
        timestamp: Some((0xaaaa_aaaa, 0)),
        payload_len: 0,
    }
}

fn emit(repr: &TcpRepr, src: &Ipv4Addr, dst: &Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len()];
    let header_len = repr.header_len();
    buf[header_len..].copy_from_slice(payload);
    repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), src, dst, true);
    buf
}

#[test]
fn parse_linux_syn() {
    let p = TcpPacket::new_checked(&SYN[..]).unwrap();
    assert_eq!(p.src_port(), 54321);
    assert_eq!(p.dst_port(), 80);
    assert_eq!(p.seq_number(), TcpSeqNumber(0x9a3b_2c1d));
    assert_eq!(p.header_len(), 40);
    assert_eq!(p.flags(), TcpFlags::SYN);
    assert!(p.syn() && !p.ack() && !p.fin() && !p.rst() && !p.psh() && !p.urg());
    assert!(!p.ece() && !p.cwr());
    assert_eq!(p.window_len(), 64240);
    assert_eq!(p.checksum(), 0x48dd);
    assert_eq!(p.urgent_ptr(), 0);
    assert!(p.verify_checksum(&A, &B));
    assert!(!p.verify_checksum(&B, &A.to_bits().wrapping_add(1).into()));
    assert_eq!(p.payload_len(), 0);
    assert_eq!(p.segment_len(), 1);
    let options: Vec<_> = p.options_iter().map(|o| o.unwrap()).collect();
    assert_eq!(
        options,
        vec![
            TcpOption::MaxSegmentSize(1460),
            TcpOption::SackPermitted,
            TcpOption::Timestamp {
                tsval: 0xaaaa_aaaa,
                tsecr: 0
            },
            TcpOption::NoOperation,
            TcpOption::WindowScale(7),
        ]
    );
    let repr = TcpRepr::parse(&p, &A, &B, ChecksumCheck::Verify).unwrap();
    assert_eq!(repr, syn_repr());
    assert_eq!(
        repr.to_string(),
        "Flags [S], seq 2587569181, win 64240, options [mss 1460,sackOK,TS val 2863311530 \
         ecr 0,nop,wscale 7], length 0"
    );
    assert_eq!(
        repr.pretty(&A, &B).to_string(),
        "IP 10.0.0.1.54321 > 10.0.0.2.80: Flags [S], seq 2587569181, win 64240, options \
         [mss 1460,sackOK,TS val 2863311530 ecr 0,nop,wscale 7], length 0"
    );
}

#[test]
fn emit_linux_syn_byte_exact() {
    let repr = syn_repr();
    assert_eq!(tcp_option_len(&repr), 20);
    assert_eq!(repr.header_len(), 40);
    assert_eq!(emit(&repr, &A, &B, &[]), SYN);
}

#[test]
fn syn_ack_round_trip() {
    let p = TcpPacket::new_checked(&SYN_ACK[..]).unwrap();
    let repr = TcpRepr::parse(&p, &B, &A, ChecksumCheck::Verify).unwrap();
    assert_eq!(repr.ack_number, Some(TcpSeqNumber(0x9a3b_2c1e)));
    assert_eq!(repr.flags, TcpFlags::SYN);
    assert_eq!(repr.wire_flags(), TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(repr.timestamp, Some((0x0bad_f00d, 0xaaaa_aaaa)));
    assert_eq!(emit(&repr, &B, &A, &[]), SYN_ACK);
    assert!(repr
        .to_string()
        .starts_with("Flags [S.], seq 287454020, ack 2587569182, win 65160"));
}

#[test]
fn data_segment_round_trip() {
    let p = TcpPacket::new_checked(&DATA[..]).unwrap();
    assert_eq!(p.payload(), b"GET / HTTP/1.1\r\n\r\n");
    let repr = TcpRepr::parse(&p, &A, &B, ChecksumCheck::Verify).unwrap();
    assert_eq!(repr.flags, TcpFlags::PSH);
    assert_eq!(repr.payload_len, 18);
    assert_eq!(repr.max_seg_size, None);
    assert!(!repr.sack_permitted);
    assert_eq!(emit(&repr, &A, &B, p.payload()), DATA);
    assert_eq!(
        repr.to_string(),
        "Flags [P.], seq 2587569182:2587569200, ack 287454021, win 502, options \
         [nop,nop,TS val 2863311531 ecr 195948557], length 18"
    );
}

#[test]
fn sack_segment_round_trip() {
    let p = TcpPacket::new_checked(&SACK[..]).unwrap();
    let repr = TcpRepr::parse(&p, &B, &A, ChecksumCheck::Verify).unwrap();
    assert_eq!(
        repr.sack_ranges,
        [Some((0x9a3b_3000, 0x9a3b_3400)), None, None, None]
    );
    assert_eq!(emit(&repr, &B, &A, &[]), SACK);
    assert!(repr.to_string().ends_with(
        "options [nop,nop,TS val 195948558 ecr 2863311531,nop,nop,sack 1 \
         {2587570176:2587571200}], length 0"
    ));
}

#[test]
fn linux_layouts_without_timestamps() {
    // net.ipv4.tcp_timestamps=0: mss 1460,nop,nop,sackOK,nop,wscale 7.
    let repr = TcpRepr {
        timestamp: None,
        ..syn_repr()
    };
    let buf = emit(&repr, &A, &B, &[]);
    assert_eq!(&buf[20..], &[2, 4, 5, 180, 1, 1, 4, 2, 1, 3, 3, 7]);
    assert!(repr
        .to_string()
        .contains("options [mss 1460,nop,nop,sackOK,nop,wscale 7]"));
    // Timestamps without SACK: mss, nop, nop, TS, nop, wscale.
    let repr = TcpRepr {
        sack_permitted: false,
        ..syn_repr()
    };
    let buf = emit(&repr, &A, &B, &[]);
    assert_eq!(
        &buf[20..],
        &[2, 4, 5, 180, 1, 1, 8, 10, 0xaa, 0xaa, 0xaa, 0xaa, 0, 0, 0, 0, 1, 3, 3, 7]
    );
    // No options at all.
    let repr = TcpRepr {
        max_seg_size: None,
        window_scale: None,
        sack_permitted: false,
        timestamp: None,
        ..syn_repr()
    };
    assert_eq!(repr.header_len(), 20);
    assert!(!repr.to_string().contains("options"));
}

#[test]
fn sack_blocks_clamped_like_linux() {
    let ranges = [Some((1, 2)), Some((3, 4)), Some((5, 6)), Some((7, 8))];
    // With timestamps 3 blocks fit (12 + 4 + 24 = 40).
    let repr = TcpRepr {
        max_seg_size: None,
        window_scale: None,
        sack_permitted: false,
        sack_ranges: ranges,
        ..syn_repr()
    };
    assert_eq!(tcp_option_len(&repr), 40);
    let buf = emit(&repr, &A, &B, &[]);
    let p = TcpPacket::new_checked(&buf[..]).unwrap();
    let back = TcpRepr::parse(&p, &A, &B, ChecksumCheck::Verify).unwrap();
    assert_eq!(
        back.sack_ranges,
        [Some((1, 2)), Some((3, 4)), Some((5, 6)), None]
    );
    // Without timestamps all 4 fit (4 + 32 = 36).
    let repr = TcpRepr {
        timestamp: None,
        ..repr
    };
    assert_eq!(tcp_option_len(&repr), 36);
    // Everything at once leaves room for 2 (4 + 12 + 4 + 4 + 16 = 40).
    let repr = TcpRepr {
        sack_ranges: ranges,
        ..syn_repr()
    };
    assert_eq!(tcp_option_len(&repr), 40);
    assert!(repr.header_len() <= MAX_HEADER_LEN);
}

#[test]
fn parse_other_stacks_orders() {
    // Windows: mss 1460,nop,wscale 8,nop,nop,sackOK.
    let windows = [2, 4, 5, 180, 1, 3, 3, 8, 1, 1, 4, 2];
    // macOS: mss 1460,nop,wscale 6,nop,nop,TS val 1 ecr 0,sackOK,eol.
    let macos = [
        2, 4, 5, 180, 1, 3, 3, 6, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 4, 2, 0, 0,
    ];
    for (opts, ws, ts) in [(&windows[..], 8, None), (&macos[..], 6, Some((1, 0)))] {
        let mut buf = vec![0u8; 20 + opts.len()];
        buf[20..].copy_from_slice(opts);
        let mut p = TcpPacket::new_unchecked(&mut buf[..]);
        p.set_header_len((20 + opts.len()) as u8);
        p.set_flags(TcpFlags::SYN);
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        let repr = TcpRepr::parse(&p, &A, &B, ChecksumCheck::Ignore).unwrap();
        assert_eq!(repr.max_seg_size, Some(1460));
        assert_eq!(repr.window_scale, Some(ws));
        assert!(repr.sack_permitted);
        assert_eq!(repr.timestamp, ts);
    }
}

#[test]
fn option_parse_errors_and_unknowns() {
    assert_eq!(TcpOption::parse(&[]), Err(Error::Truncated));
    for bad in [
        &[2u8][..],
        &[2, 0],
        &[2, 1, 0, 0],
        &[2, 5, 0, 0],
        &[99, 4, 0],
    ] {
        assert_eq!(TcpOption::parse(bad), Err(Error::Malformed), "{bad:?}");
    }
    // Unknown kinds are skipped by their length.
    let (rest, opt) = TcpOption::parse(&[30, 4, 0xab, 0xcd, 1]).unwrap();
    assert_eq!(
        opt,
        TcpOption::Unknown {
            kind: 30,
            data: &[0xab, 0xcd]
        }
    );
    assert_eq!(rest, &[1]);
    // Known kinds with a wrong length are skipped too, as Linux does.
    for wrong in [
        &[2u8, 3, 5][..],
        &[3, 4, 7, 0],
        &[4, 3, 0],
        &[8, 6, 0, 0, 0, 0],
        &[5, 2],
        &[5, 6, 0, 0, 0, 0],
    ] {
        let (_, opt) = TcpOption::parse(wrong).unwrap();
        assert!(matches!(opt, TcpOption::Unknown { .. }), "{wrong:?}");
    }
    // EOL ends the iteration; what follows is padding.
    let opts: Vec<_> = TcpOptionsIter::new(&[1, 0, 2, 0]).collect();
    assert_eq!(
        opts,
        vec![Ok(TcpOption::NoOperation), Ok(TcpOption::EndOfList)]
    );
    // An error ends it too.
    let opts: Vec<_> = TcpOptionsIter::new(&[1, 8, 10, 0, 0]).collect();
    assert_eq!(
        opts,
        vec![Ok(TcpOption::NoOperation), Err(Error::Malformed)]
    );
}

#[test]
fn malformed_options_fail_the_header() {
    let mut buf = SYN;
    buf[21] = 40; // the MSS option claims 40 bytes
    let p = TcpPacket::new_checked(&buf[..]).unwrap();
    assert_eq!(
        TcpRepr::parse(&p, &A, &B, ChecksumCheck::Ignore),
        Err(Error::Malformed)
    );
}

#[test]
fn option_emit_round_trip() {
    let options = [
        TcpOption::EndOfList,
        TcpOption::NoOperation,
        TcpOption::MaxSegmentSize(536),
        TcpOption::WindowScale(14),
        TcpOption::SackPermitted,
        TcpOption::SackRange([Some((1, 2)), Some((3, 4)), None, None]),
        TcpOption::Timestamp { tsval: 5, tsecr: 6 },
        TcpOption::Unknown {
            kind: 34,
            data: &[1, 2, 3],
        },
    ];
    for option in options {
        let mut buf = vec![0u8; option.buffer_len() + 1];
        let rest = option.emit(&mut buf);
        assert_eq!(rest.len(), 1);
        let (rest, back) = TcpOption::parse(&buf).unwrap();
        assert_eq!(back, option);
        assert_eq!(rest.len(), 1);
    }
    assert_eq!(
        TcpOption::SackRange([Some((1, 2)), Some((3, 4)), None, None]).to_string(),
        "sack 2 {1:2}{3:4}"
    );
}

#[test]
fn length_and_checksum_errors() {
    for n in 0..20 {
        assert_eq!(TcpPacket::new_checked(&SYN[..n]), Err(Error::Truncated));
    }
    assert_eq!(TcpPacket::new_checked(&SYN[..39]), Err(Error::Truncated));
    let mut bad = SYN;
    bad[12] = 0x40;
    assert_eq!(TcpPacket::new_checked(&bad[..]), Err(Error::Malformed));
    let mut bad = SYN;
    bad[30] ^= 1;
    let p = TcpPacket::new_checked(&bad[..]).unwrap();
    assert_eq!(
        TcpRepr::parse(&p, &A, &B, ChecksumCheck::Verify),
        Err(Error::Checksum)
    );
    assert!(TcpRepr::parse(&p, &A, &B, ChecksumCheck::Ignore).is_ok());
    let p = TcpPacket::new_unchecked(&SYN[..10]);
    assert_eq!(
        TcpRepr::parse(&p, &A, &B, ChecksumCheck::Ignore),
        Err(Error::Truncated)
    );
}

#[test]
fn partial_checksum_completes_to_full() {
    // A NIC completing CHECKSUM_PARTIAL sums the segment from the header on,
    // with the pseudo-header sum already in the checksum field.
    let mut buf = DATA;
    let mut p = TcpPacket::new_unchecked(&mut buf[..]);
    p.fill_partial_checksum(&A, &B);
    let c = crate::checksum::checksum(&buf);
    buf[16..18].copy_from_slice(&c.to_be_bytes());
    assert_eq!(buf, DATA);
}

#[test]
fn setters_keep_neighbouring_bits() {
    let mut buf = SYN;
    let mut p = TcpPacket::new_unchecked(&mut buf[..]);
    p.set_flags(TcpFlags::SYN | TcpFlags::ACK | TcpFlags::ECE | TcpFlags::CWR | TcpFlags::AE);
    assert_eq!(p.header_len(), 40);
    p.set_header_len(24);
    assert_eq!(
        p.flags(),
        TcpFlags::SYN | TcpFlags::ACK | TcpFlags::ECE | TcpFlags::CWR | TcpFlags::AE
    );
    assert_eq!(p.options().len(), 4);
    p.set_ack_number(TcpSeqNumber(7));
    p.set_window_len(9);
    p.set_urgent_ptr(3);
    assert_eq!(p.ack_number(), TcpSeqNumber(7));
    assert_eq!(p.window_len(), 9);
    assert_eq!(p.urgent_ptr(), 3);
    assert_eq!(p.payload_mut().len(), 16);
}

#[test]
fn flags_display_like_tcpdump() {
    let f = TcpFlags::SYN | TcpFlags::ACK;
    assert_eq!(f.to_string(), "[S.]");
    assert_eq!(TcpFlags::SYN.to_string(), "[S]");
    assert_eq!((TcpFlags::PSH | TcpFlags::ACK).to_string(), "[P.]");
    assert_eq!(
        (TcpFlags::FIN | TcpFlags::PSH | TcpFlags::ACK).to_string(),
        "[FP.]"
    );
    assert_eq!(TcpFlags::RST.to_string(), "[R]");
    assert_eq!(
        (TcpFlags::SYN | TcpFlags::ECE | TcpFlags::CWR).to_string(),
        "[SEW]"
    );
    assert_eq!(TcpFlags::empty().to_string(), "[none]");
    assert_eq!(format!("{f:?}"), "TcpFlags(SYN | ACK)");
}

#[test]
fn flags_bit_ops() {
    let mut f = TcpFlags::SYN | TcpFlags::ACK;
    assert!(f.contains(TcpFlags::SYN));
    assert!(!f.contains(TcpFlags::SYN | TcpFlags::FIN));
    assert!(f.intersects(TcpFlags::SYN | TcpFlags::FIN));
    assert_eq!(f - TcpFlags::ACK, TcpFlags::SYN);
    assert_eq!(f & TcpFlags::ACK, TcpFlags::ACK);
    assert_eq!(f ^ TcpFlags::ACK, TcpFlags::SYN);
    assert_eq!((!f).bits(), 0x1ff & !0x12);
    f.remove(TcpFlags::SYN);
    f |= TcpFlags::FIN;
    assert_eq!(f, TcpFlags::FIN | TcpFlags::ACK);
    f &= TcpFlags::FIN;
    assert_eq!(f, TcpFlags::FIN);
    f -= TcpFlags::FIN;
    assert!(f.is_empty());
    f.set(TcpFlags::RST, true);
    assert_eq!(f.bits(), 0x04);
    assert_eq!(TcpFlags::from_bits_truncate(0xffff).bits(), 0x1ff);
}

#[test]
fn urgent_in_display() {
    let repr = TcpRepr {
        flags: TcpFlags::URG | TcpFlags::PSH,
        ack_number: Some(TcpSeqNumber(1)),
        urgent_ptr: 5,
        max_seg_size: None,
        window_scale: None,
        sack_permitted: false,
        timestamp: None,
        payload_len: 10,
        ..syn_repr()
    };
    assert_eq!(
        repr.to_string(),
        "Flags [P.U], seq 2587569181:2587569191, ack 1, win 64240, urg 5, length 10"
    );
}

#[test]
fn seq_number_arithmetic() {
    let a = TcpSeqNumber(u32::MAX - 1);
    let b = a + 4;
    assert_eq!(b, TcpSeqNumber(2));
    assert_eq!(b - a, 4);
    assert_eq!(a - b, -4);
    assert!(a < b);
    assert_eq!(b.partial_cmp(&a), Some(cmp::Ordering::Greater));
    assert_eq!(a.partial_cmp(&a), Some(cmp::Ordering::Equal));
    assert_eq!(b - 4usize, a);
    assert_eq!(a.max(b), b);
    assert_eq!(b.max(a), b);
    assert_eq!(a.min(b), a);
    let mut c = a;
    c += 2;
    assert_eq!(c, TcpSeqNumber(0));
    c -= 1;
    assert_eq!(c, TcpSeqNumber(u32::MAX));
    assert_eq!(c.to_string(), "4294967295");
    assert_eq!(u32::from(TcpSeqNumber::from(5)), 5);
}

proptest! {
    #[test]
    fn seq_order_is_modular(x in any::<u32>(), d in 1u32..0x8000_0000) {
        let a = TcpSeqNumber(x);
        let b = TcpSeqNumber(x.wrapping_add(d));
        prop_assert!(a < b);
        prop_assert!(b > a);
        prop_assert_eq!(b - a, d as i32);
        prop_assert_eq!(a + d as usize, b);
        prop_assert_eq!(a.max(b), b);
        prop_assert_eq!(a.min(b), a);
        prop_assert_eq!(a.partial_cmp(&a), Some(cmp::Ordering::Equal));
    }
}
