//! Reading a segment's header (`tcp_v4_rcv`'s parse): the header with no options or
//! with only the aligned timestamp, read in place (`tcp_fast_parse_options`), else every
//! option (`tcp_parse_options`).

use std::net::{Ipv4Addr, SocketAddrV4};

use usnet_wire::{ChecksumCheck, TcpPacket, TcpRepr};

use super::super::output::tcphdr;
use super::Seg;
use crate::skb::Skb;

pub(super) fn parse(skb: &Skb, saddr: Ipv4Addr, daddr: Ipv4Addr) -> Option<(Seg, usize)> {
    let d = skb.data();
    if let Some(fast) = parse_fast(d, skb.len(), saddr, daddr) {
        return Some(fast);
    }
    parse_general(d, skb.len(), saddr, daddr)
}

/// `tcp_parse_options` over whatever options the header carries.
/// `d` is the linear part of a segment `total` bytes long.
fn parse_general(d: &[u8], total: usize, saddr: Ipv4Addr, daddr: Ipv4Addr) -> Option<(Seg, usize)> {
    let pkt = TcpPacket::new_checked(d).ok()?;
    let hlen = usize::from(pkt.header_len());
    let repr = TcpRepr::parse(&pkt, &saddr, &daddr, ChecksumCheck::Ignore).ok()?;
    let len = total.saturating_sub(hlen) as u32;
    let mut flags = (repr.flags.bits() & 0xff) as u8;
    if repr.ack_number.is_some() {
        flags |= tcphdr::ACK;
    }
    let seq = repr.seq_number.0;
    Some((
        Seg {
            seq,
            end_seq: end_seq(seq, len, flags),
            ack_seq: repr.ack_number.map(|a| a.0).unwrap_or(0),
            flags,
            window: repr.window_len,
            len,
            mss: repr.max_seg_size,
            wscale: repr.window_scale,
            sack_perm: repr.sack_permitted,
            ts: repr.timestamp,
            sacks: repr.sack_ranges,
            src: SocketAddrV4::new(saddr, repr.src_port),
            dst: SocketAddrV4::new(daddr, repr.dst_port),
        },
        hlen,
    ))
}

/// `TCP_SKB_CB(skb)->end_seq`: past the payload, SYN and FIN each taking one.
fn end_seq(seq: u32, len: u32, flags: u8) -> u32 {
    seq.wrapping_add(len)
        .wrapping_add(u32::from(flags & tcphdr::SYN != 0))
        .wrapping_add(u32::from(flags & tcphdr::FIN != 0))
}

/// `tcp_fast_parse_options`: a header with no options, or with only the aligned
/// timestamp option (`NOP, NOP, TS, 10`) every established Linux segment carries, is
/// read in place (`tcp_parse_aligned_timestamp`); anything else goes through the
/// general option parser.
fn parse_fast(d: &[u8], total: usize, saddr: Ipv4Addr, daddr: Ipv4Addr) -> Option<(Seg, usize)> {
    let be16 = |i: usize| u16::from_be_bytes([d[i], d[i + 1]]);
    let be32 = |i: usize| u32::from_be_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]]);
    if d.len() < 20 {
        return None;
    }
    let hlen = usize::from(d[12] >> 4) * 4;
    let ts = match hlen {
        20 => None,
        32 if d.len() >= 32 && d[20..24] == [1, 1, 8, 10] => Some((be32(24), be32(28))),
        _ => return None,
    };
    let flags = d[13];
    let seq = be32(4);
    let len = total.saturating_sub(hlen) as u32;
    Some((
        Seg {
            seq,
            end_seq: end_seq(seq, len, flags),
            ack_seq: if flags & tcphdr::ACK != 0 { be32(8) } else { 0 },
            flags,
            window: be16(14),
            len,
            mss: None,
            wscale: None,
            sack_perm: false,
            ts,
            sacks: [None; 4],
            src: SocketAddrV4::new(saddr, be16(0)),
            dst: SocketAddrV4::new(daddr, be16(2)),
        },
        hlen,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The in-place parse of option-less and timestamp-only headers reads exactly
        /// what the general parser reads, and leaves every other header to it.
        #[test]
        fn fast_parse_agrees_with_the_general_parser(
            mut hdr in proptest::collection::vec(any::<u8>(), 20..80),
            doff in prop_oneof![Just(5u8), Just(8u8), 0u8..16],
            aligned_ts in any::<bool>(),
            extra in prop_oneof![Just(0usize), 0usize..70_000],
        ) {
            hdr[12] = (doff << 4) | (hdr[12] & 0x0f);
            if aligned_ts && hdr.len() >= 24 {
                hdr[20..24].copy_from_slice(&[1, 1, 8, 10]);
            }
            let (s, d) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
            // The segment may continue past its linear part (paged data).
            let total = hdr.len() + extra;
            let general = parse_general(&hdr, total, s, d);
            if let Some(fast) = parse_fast(&hdr, total, s, d) {
                prop_assert_eq!(Some(fast), general);
            } else {
                prop_assert!(!(doff == 5 || (doff == 8 && aligned_ts && hdr.len() >= 32)));
            }
        }
    }
}
