//! Software segmentation and checksumming for the transmit path (Linux's
//! `skb_gso_segment` → `inet_gso_segment` → `tcp4_gso_segment` / `udp4_ufo_fragment`,
//! and `skb_checksum_help`).
//!
//! `validate_xmit_skb` calls these when the device lacks a feature the skb asks for
//! (TSO, checksum offload); the emulated NIC calls [`segment`] too, as its TSO engine.
//! Segments share the original's payload pages: each gets its own copy of the headers
//! (Ethernet, IP, TCP/UDP) with lengths, IP ID, sequence number, flags and checksums
//! fixed up, and slices of the original's fragments as payload.
//!
//! Checksum convention (as Linux): a `CHECKSUM_PARTIAL` skb holds, in its TCP/UDP
//! checksum field, the folded (not complemented) pseudo-header sum; finishing the
//! checksum is summing from `csum_start` to the end and storing the complement.

use std::net::Ipv4Addr;

use usnet_wire::checksum::{self, Accumulator};

use crate::skb::{GsoType, IpSummed, Skb};

/// Why an skb could not be segmented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GsoError {
    /// Header offsets missing or inconsistent.
    BadHeaders,
    /// Not a protocol we segment.
    Unsupported,
}

/// Sum `len` bytes of the packet data starting at `offset` (from `data`), continuing
/// `acc` (Linux's `skb_checksum`). Bytes past the end are ignored.
pub fn skb_checksum(skb: &Skb, offset: usize, len: usize, acc: &mut Accumulator) {
    let end = offset.saturating_add(len).min(skb.len());
    let mut pos = 0;
    for chunk in skb.chunks() {
        let cend = pos + chunk.len();
        if cend > offset && pos < end {
            let s = offset.max(pos) - pos;
            let e = end.min(cend) - pos;
            acc.add(&chunk[s..e]);
        }
        pos = cend;
        if pos >= end {
            break;
        }
    }
}

/// `skb_checksum_help`: finish a `CHECKSUM_PARTIAL` checksum in software. Returns false
/// (and leaves the skb alone) if `csum_start` / `csum_offset` point outside the packet.
pub fn skb_checksum_help(skb: &mut Skb) -> bool {
    if skb.ip_summed != IpSummed::Partial {
        return true;
    }
    let start = skb.csum_start as usize;
    if start < skb.data_offset() {
        return false;
    }
    let off = start - skb.data_offset();
    let field = off + skb.csum_offset as usize;
    if field + 2 > skb.headlen() {
        return false;
    }
    let mut acc = Accumulator::new();
    skb_checksum(skb, off, skb.len() - off, &mut acc);
    let mut c = acc.finish();
    if c == 0 {
        c = 0xffff; // CSUM_MANGLED_0
    }
    skb.data_mut()[field..field + 2].copy_from_slice(&c.to_be_bytes());
    skb.ip_summed = IpSummed::None;
    true
}

/// Set up `CHECKSUM_PARTIAL` for a TCP or UDP header at `transport_off` (from `data`)
/// of an IPv4 packet from `src` to `dst`, with `l4_len` bytes of header and payload:
/// store the folded pseudo-header sum in the checksum field (Linux's
/// `__tcp_v4_send_check` / `udp4_hwcsum`).
pub fn set_partial_csum(
    skb: &mut Skb,
    transport_off: usize,
    protocol: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    l4_len: usize,
) {
    let csum_offset = if protocol == 6 { 16 } else { 6 };
    let pseudo = checksum::fold(checksum::pseudo_header_v4(
        &src,
        &dst,
        protocol,
        l4_len as u32,
    ));
    let field = transport_off + csum_offset;
    if field + 2 <= skb.headlen() {
        skb.data_mut()[field..field + 2].copy_from_slice(&pseudo.to_be_bytes());
    }
    skb.ip_summed = IpSummed::Partial;
    skb.csum_start = (skb.data_offset() + transport_off) as u16;
    skb.csum_offset = csum_offset as u16;
}

/// Offsets (from `data`) of the network and transport headers and the header length.
struct Layout {
    nh: usize,
    th: usize,
    hdr_len: usize,
    protocol: u8,
}

fn layout(skb: &Skb) -> Result<Layout, GsoError> {
    let d = skb.data_offset();
    let nh = skb
        .network_header_offset()
        .filter(|&o| o >= d)
        .ok_or(GsoError::BadHeaders)?
        - d;
    let th = skb
        .transport_header_offset()
        .filter(|&o| o >= d)
        .ok_or(GsoError::BadHeaders)?
        - d;
    let data = skb.data();
    if data.len() < nh + 20 || data[nh] >> 4 != 4 {
        return Err(GsoError::BadHeaders);
    }
    let ihl = usize::from(data[nh] & 0x0f) * 4;
    if th != nh + ihl {
        return Err(GsoError::BadHeaders);
    }
    let protocol = data[nh + 9];
    let l4 = match protocol {
        6 => {
            if data.len() < th + 20 {
                return Err(GsoError::BadHeaders);
            }
            usize::from(data[th + 12] >> 4) * 4
        }
        17 => 8,
        _ => return Err(GsoError::Unsupported),
    };
    if l4 < 8 || data.len() < th + l4 {
        return Err(GsoError::BadHeaders);
    }
    Ok(Layout {
        nh,
        th,
        hdr_len: th + l4,
        protocol,
    })
}

/// The frames a GSO skb becomes on the wire and their bytes together (every frame
/// repeats the headers up to the end of the TCP/UDP header); `(1, len)` for any other
/// skb or one whose headers cannot be read.
pub fn wire_frames(skb: &Skb) -> (u64, u64) {
    let len = skb.len() as u64;
    if !skb.is_gso() {
        return (1, len);
    }
    let Ok(lay) = layout(skb) else {
        return (1, len);
    };
    let payload = skb.len().saturating_sub(lay.hdr_len);
    let segs = payload.div_ceil(usize::from(skb.gso_size)).max(1) as u64;
    (segs, len + (segs - 1) * lay.hdr_len as u64)
}

/// Split a GSO skb into wire-sized segments, appending them to `out` (Linux's
/// `skb_gso_segment`). `hw_csum`: leave each segment `CHECKSUM_PARTIAL` for the device
/// to finish; otherwise compute every checksum now. The original's socket charge moves
/// to the last segment. On error the skb is returned untouched.
pub fn segment(mut skb: Skb, hw_csum: bool, out: &mut Vec<Skb>) -> Result<(), (Skb, GsoError)> {
    let lay = match layout(&skb) {
        Ok(l) => l,
        Err(e) => return Err((skb, e)),
    };
    let mss = usize::from(skb.gso_size);
    let total = skb.len();
    if mss == 0 || total <= lay.hdr_len {
        return Err((skb, GsoError::BadHeaders));
    }
    let is_tcp = lay.protocol == 6;
    match (skb.gso_type, is_tcp) {
        (GsoType::TcpV4, true) | (GsoType::UdpL4, false) => {}
        _ => return Err((skb, GsoError::Unsupported)),
    }
    let (src, dst, ip_id, seq0, tcp_flags) = {
        let h = skb.data();
        let ip = &h[lay.nh..];
        let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
        let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        let id = u16::from_be_bytes([ip[4], ip[5]]);
        let (seq, flags) = if is_tcp {
            let t = &h[lay.th..];
            (u32::from_be_bytes([t[4], t[5], t[6], t[7]]), t[13])
        } else {
            (0, 0)
        };
        (src, dst, id, seq, flags)
    };
    let owner = skb.take_owner();
    let payload = total - lay.hdr_len;
    let nsegs = payload.div_ceil(mss);
    // Payload source: bytes of the linear area after the headers, then the fragments.
    let lin_payload = skb.headlen().saturating_sub(lay.hdr_len);
    let mut frag_rest = crate::skb::take_frag_scratch();
    frag_rest.extend(skb.take_frags());
    let mut frag_idx = 0usize;
    let mut lin_pos = lay.hdr_len;
    let headroom = skb.headroom();
    let start = out.len();
    for i in 0..nsegs {
        let seg_len = mss.min(payload - i * mss);
        let mut seg = Skb::alloc(lay.hdr_len + 64, headroom);
        seg.put_slice(&skb.data()[..lay.hdr_len]);
        // Payload: first from the linear remainder (copied), then shared fragments.
        let mut need = seg_len;
        let from_lin = need.min(lay.hdr_len + lin_payload - lin_pos);
        if from_lin > 0 {
            seg.put_slice(&skb.data()[lin_pos..lin_pos + from_lin]);
            lin_pos += from_lin;
            need -= from_lin;
        }
        while need > 0 && frag_idx < frag_rest.len() {
            let f = &mut frag_rest[frag_idx];
            let take = need.min(f.len());
            let piece = f.split_to(take);
            if f.is_empty() {
                frag_idx += 1;
            }
            if let Err(piece) = seg.push_frag(piece) {
                // Out of fragment slots: linearize the rest of this segment.
                seg.linearize();
                seg.put_slice(&piece);
            }
            need -= take;
        }
        seg.copy_meta_for_segment(&skb);
        seg.set_network_header(lay.nh);
        seg.set_transport_header(lay.th);
        if lay.nh >= 14 {
            let d = seg.data_offset();
            seg.set_mac_header_at(d);
        }
        let l4_len = lay.hdr_len - lay.th + seg_len;
        {
            let h = seg.data_mut();
            let ip = &mut h[lay.nh..lay.th];
            let tot = (lay.th - lay.nh + l4_len) as u16;
            ip[2..4].copy_from_slice(&tot.to_be_bytes());
            ip[4..6].copy_from_slice(&ip_id.wrapping_add(i as u16).to_be_bytes());
            ip[10..12].copy_from_slice(&[0, 0]);
            let c = checksum::checksum(ip);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            if is_tcp {
                let t = &mut h[lay.th..];
                let seq = seq0.wrapping_add((i * mss) as u32);
                t[4..8].copy_from_slice(&seq.to_be_bytes());
                let mut fl = tcp_flags;
                if i + 1 < nsegs {
                    fl &= !(0x01 | 0x08); // FIN, PSH only on the last segment
                }
                if i > 0 {
                    fl &= !0x80; // CWR only on the first
                }
                t[13] = fl;
            } else {
                let u = &mut h[lay.th..];
                u[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
            }
        }
        set_partial_csum(&mut seg, lay.th, lay.protocol, src, dst, l4_len);
        if !hw_csum {
            skb_checksum_help(&mut seg);
        }
        out.push(seg);
    }
    crate::skb::put_frag_scratch(frag_rest);
    if out.len() > start {
        if let (Some(o), Some(last)) = (owner, out.last_mut()) {
            last.put_owner(o);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
