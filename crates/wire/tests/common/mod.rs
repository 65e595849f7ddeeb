//! Proptest strategies for every repr, shared by the integration tests.
#![allow(dead_code)]

use std::net::Ipv4Addr;

use proptest::collection::vec;
use proptest::prelude::*;
use usnet_wire::*;

pub fn ipv4_addr() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}

pub fn ethernet_addr() -> impl Strategy<Value = EthernetAddress> {
    any::<[u8; 6]>().prop_map(EthernetAddress)
}

pub fn ethernet_repr() -> impl Strategy<Value = EthernetRepr> {
    (ethernet_addr(), ethernet_addr(), any::<u16>()).prop_map(|(src_addr, dst_addr, t)| {
        EthernetRepr {
            src_addr,
            dst_addr,
            ethertype: EtherType::from(t),
        }
    })
}

pub fn arp_repr() -> impl Strategy<Value = ArpRepr> {
    (
        any::<u16>(),
        ethernet_addr(),
        ipv4_addr(),
        ethernet_addr(),
        ipv4_addr(),
    )
        .prop_map(|(op, sha, spa, tha, tpa)| ArpRepr::EthernetIpv4 {
            operation: ArpOperation::from(op),
            source_hardware_addr: sha,
            source_protocol_addr: spa,
            target_hardware_addr: tha,
            target_protocol_addr: tpa,
        })
}

/// An owned description of one IPv4 option.
#[derive(Debug, Clone)]
pub enum Ipv4OptSpec {
    Eol,
    Nop,
    RecordRoute(u8, Vec<u8>),
    Lsrr(u8, Vec<u8>),
    Ssrr(u8, Vec<u8>),
    Timestamp(u8, u8, u8, Vec<u8>),
    RouterAlert(u16),
    Unknown(u8, Vec<u8>),
}

impl Ipv4OptSpec {
    pub fn as_option(&self) -> Ipv4Option<'_> {
        match self {
            Ipv4OptSpec::Eol => Ipv4Option::EndOfList,
            Ipv4OptSpec::Nop => Ipv4Option::NoOperation,
            Ipv4OptSpec::RecordRoute(pointer, d) => Ipv4Option::RecordRoute {
                pointer: *pointer,
                route_data: d,
            },
            Ipv4OptSpec::Lsrr(pointer, d) => Ipv4Option::LooseSourceRoute {
                pointer: *pointer,
                route_data: d,
            },
            Ipv4OptSpec::Ssrr(pointer, d) => Ipv4Option::StrictSourceRoute {
                pointer: *pointer,
                route_data: d,
            },
            Ipv4OptSpec::Timestamp(pointer, overflow, flags, d) => Ipv4Option::Timestamp {
                pointer: *pointer,
                overflow: *overflow,
                flags: *flags,
                data: d,
            },
            Ipv4OptSpec::RouterAlert(v) => Ipv4Option::RouterAlert(*v),
            Ipv4OptSpec::Unknown(kind, d) => Ipv4Option::Unknown {
                kind: *kind,
                data: d,
            },
        }
    }
}

pub fn ipv4_opt_spec() -> impl Strategy<Value = Ipv4OptSpec> {
    let data = || vec(any::<u8>(), 0..12);
    prop_oneof![
        Just(Ipv4OptSpec::Eol),
        Just(Ipv4OptSpec::Nop),
        (4u8..=255, data()).prop_map(|(p, d)| Ipv4OptSpec::RecordRoute(p, d)),
        (4u8..=255, data()).prop_map(|(p, d)| Ipv4OptSpec::Lsrr(p, d)),
        (4u8..=255, data()).prop_map(|(p, d)| Ipv4OptSpec::Ssrr(p, d)),
        (5u8..=255, 0u8..16, 0u8..16, data())
            .prop_map(|(p, o, f, d)| Ipv4OptSpec::Timestamp(p, o, f, d)),
        any::<u16>().prop_map(Ipv4OptSpec::RouterAlert),
        (any::<u8>(), data())
            .prop_filter("not a known kind", |(k, _)| {
                ![0u8, 1, 7, 68, 131, 137, 148].contains(k)
            })
            .prop_map(|(k, d)| Ipv4OptSpec::Unknown(k, d)),
    ]
}

/// Random well-formed options (at most 40 bytes), with the specs they came
/// from.
pub fn ipv4_options() -> impl Strategy<Value = Ipv4Options> {
    prop_oneof![
        2 => Just(Ipv4Options::new()),
        3 => vec(ipv4_opt_spec(), 1..6).prop_filter_map("fits in 40 bytes", |specs| {
            let opts: Vec<_> = specs.iter().map(Ipv4OptSpec::as_option).collect();
            Ipv4Options::from_options(&opts).ok()
        }),
    ]
}

pub fn ipv4_repr_with(payload: impl Strategy<Value = usize>) -> impl Strategy<Value = Ipv4Repr> {
    (
        (ipv4_addr(), ipv4_addr(), any::<u8>(), payload, any::<u8>()),
        (
            any::<u8>(),
            any::<u16>(),
            any::<bool>(),
            any::<bool>(),
            0u16..8192,
        ),
        ipv4_options(),
    )
        .prop_map(
            |(
                (src_addr, dst_addr, proto, payload_len, hop_limit),
                (dscp_ecn, ident, dont_frag, more_frags, frag_units),
                options,
            )| Ipv4Repr {
                src_addr,
                dst_addr,
                next_header: IpProtocol::from(proto),
                payload_len,
                hop_limit,
                dscp_ecn,
                ident,
                dont_frag,
                more_frags,
                frag_offset: frag_units * 8,
                options,
            },
        )
}

pub fn ipv4_repr() -> impl Strategy<Value = Ipv4Repr> {
    ipv4_repr_with(prop_oneof![8 => 0usize..600, 1 => 0usize..=65475])
}

pub fn icmp_repr() -> impl Strategy<Value = Icmpv4Repr> {
    let echo = (any::<u16>(), any::<u16>(), 0usize..300);
    prop_oneof![
        echo.clone()
            .prop_map(|(ident, seq_no, data_len)| Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data_len
            }),
        echo.prop_map(|(ident, seq_no, data_len)| Icmpv4Repr::EchoReply {
            ident,
            seq_no,
            data_len
        }),
        (any::<u8>(), any::<u16>(), ipv4_repr(), 8usize..100).prop_map(
            |(code, next_hop_mtu, header, data_len)| Icmpv4Repr::DstUnreachable {
                reason: icmp::DstUnreachable::from(code),
                next_hop_mtu,
                header,
                data_len,
            }
        ),
        (any::<bool>(), ipv4_repr(), 8usize..100).prop_map(|(frag, header, data_len)| {
            Icmpv4Repr::TimeExceeded {
                reason: if frag {
                    icmp::TimeExceeded::FragReassembly
                } else {
                    icmp::TimeExceeded::TtlExpired
                },
                header,
                data_len,
            }
        }),
        (any::<u8>(), any::<u8>())
            .prop_filter("not a parsed kind", |(t, c)| match t {
                0 | 3 | 8 => false,
                11 => *c > 1,
                _ => true,
            })
            .prop_map(|(msg_type, code)| Icmpv4Repr::Other { msg_type, code }),
    ]
}

pub fn udp_repr() -> impl Strategy<Value = UdpRepr> {
    (any::<u16>(), any::<u16>()).prop_map(|(src_port, dst_port)| UdpRepr { src_port, dst_port })
}

/// The option length of `repr` before any SACK block is dropped.
pub fn unclamped_option_len(repr: &TcpRepr) -> usize {
    let mut len = 0;
    if repr.max_seg_size.is_some() {
        len += 4;
    }
    if repr.timestamp.is_some() {
        len += 12;
    } else if repr.sack_permitted {
        len += 4;
    }
    if repr.window_scale.is_some() {
        len += 4;
    }
    let n = repr.sack_ranges.iter().flatten().count();
    if n > 0 {
        len += 4 + 8 * n;
    }
    len
}

/// A TCP repr whose options all fit (SACK blocks beyond the space are
/// dropped here, so that a round trip is exact).
pub fn tcp_repr(payload: impl Strategy<Value = usize>) -> impl Strategy<Value = TcpRepr> {
    (
        (
            any::<u16>(),
            any::<u16>(),
            any::<u32>(),
            any::<Option<u32>>(),
        ),
        (any::<u16>(), any::<u16>(), any::<u16>(), payload),
        (
            any::<Option<u16>>(),
            any::<Option<u8>>(),
            any::<bool>(),
            vec(any::<(u32, u32)>(), 0..=4),
            any::<Option<(u32, u32)>>(),
        ),
    )
        .prop_map(
            |(
                (src_port, dst_port, seq, ack),
                (flags, window_len, urgent_ptr, payload_len),
                (max_seg_size, window_scale, sack_permitted, mut sacks, timestamp),
            )| {
                let mut repr = TcpRepr {
                    src_port,
                    dst_port,
                    seq_number: TcpSeqNumber(seq),
                    ack_number: ack.map(TcpSeqNumber),
                    flags: TcpFlags::from_bits_truncate(flags) - TcpFlags::ACK,
                    window_len,
                    urgent_ptr,
                    max_seg_size,
                    window_scale,
                    sack_permitted,
                    sack_ranges: [None; 4],
                    timestamp,
                    payload_len,
                };
                loop {
                    repr.sack_ranges = [None; 4];
                    for (slot, s) in repr.sack_ranges.iter_mut().zip(&sacks) {
                        *slot = Some(*s);
                    }
                    if unclamped_option_len(&repr) <= 40 {
                        break repr;
                    }
                    sacks.pop();
                }
            },
        )
}

/// Bytes that are a valid packet of some kind, for mutation tests.
pub fn payload_bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}
