//! Generic receive offload (Linux's `net/core/gro.c` with `tcp_gro_receive`): NAPI
//! merges in-order TCP segments of one flow into a single skb before the stack sees
//! them, and flushes at the end of each poll (`napi_complete_done`, or when a poll used
//! its whole weight).
//!
//! A segment joins the held skb of its flow when it continues it exactly: next
//! sequence number, same ACK number, identical TCP options (timestamps included), only
//! ACK (and PSH or FIN on the last) set, the same IP TOS, TTL and DF bit (an IP ID counting up
//! when DF is clear), no IP options or fragments, a verified checksum, and
//! a payload no longer than the first segment's (the `gso_size`). Its payload is
//! attached without copying (frag stealing). A shorter segment, PSH or FIN ends the
//! merge (and joins it, as in Linux, so a FIN arrives with the data before it); anything
//! else — a packet the NIC coalesced itself (`rx-gro-hw`) included — first flushes the
//! flow, so order is kept. At most
//! [`MAX_GRO_SKBS`] flows are held per NAPI.

use std::sync::Arc;

use super::NetDevice;
use crate::skb::Skb;
use crate::trace::Stage;
use crate::Stack;

/// Most flows held per NAPI (Linux's `MAX_GRO_SKBS`).
pub const MAX_GRO_SKBS: usize = 8;

const FIN: u8 = 0x01;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// A flow's held skb.
struct Held {
    dev: Arc<NetDevice>,
    skb: Skb,
    /// (saddr, daddr, sport, dport).
    key: (u32, u32, u16, u16),
    next_seq: u32,
    ack: u32,
    /// TCP header length and its options, which every merged segment must repeat.
    thlen: usize,
    opts: [u8; 40],
    /// Payload of the first segment (`gso_size`).
    mss: usize,
    /// IP TOS, TTL, DF bit and ID of the first segment (`inet_gro_receive`: the first
    /// three must repeat; without DF the ID must count up by one per segment).
    tos: u8,
    ttl: u8,
    df: bool,
    id: u16,
    segs: u16,
}

/// Packets held for merging (Linux's `napi->gro_hash`).
#[derive(Default)]
pub struct GroList {
    held: Vec<Held>,
    /// A spare list swapped in at flush, so flushing allocates nothing.
    spare: Vec<Held>,
    frags: Vec<crate::skb::Frag>,
}

impl std::fmt::Debug for GroList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GroList({} held)", self.held.len())
    }
}

impl GroList {
    /// Number of held flows.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

/// What a TCP/IPv4 packet looks like to GRO.
struct Parsed {
    key: (u32, u32, u16, u16),
    seq: u32,
    ack: u32,
    flags: u8,
    ihl: usize,
    thlen: usize,
    payload: usize,
    tos: u8,
    ttl: u8,
    df: bool,
    id: u16,
}

/// The fields GRO needs, if `skb` (at its IP header) is a plain TCP/IPv4 segment.
fn parse(skb: &Skb) -> Option<Parsed> {
    let d = skb.data();
    if d.len() < 40 || d[0] != 0x45 || d[9] != 6 {
        return None;
    }
    // No fragments (MF or offset); DF may be set.
    if u16::from_be_bytes([d[6], d[7]]) & 0x3fff != 0 {
        return None;
    }
    let tot = crate::ipv4::iph_totlen(skb);
    let t = &d[20..];
    let thlen = usize::from(t[12] >> 4) * 4;
    if tot != skb.len() || thlen < 20 || tot < 20 + thlen || d.len() < 20 + thlen {
        return None;
    }
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some(Parsed {
        key: (
            be32(&d[12..16]),
            be32(&d[16..20]),
            u16::from_be_bytes([t[0], t[1]]),
            u16::from_be_bytes([t[2], t[3]]),
        ),
        seq: be32(&t[4..8]),
        ack: be32(&t[8..12]),
        flags: t[13],
        ihl: 20,
        thlen,
        payload: tot - 20 - thlen,
        tos: d[1],
        ttl: d[8],
        df: d[6] & 0x40 != 0,
        id: u16::from_be_bytes([d[4], d[5]]),
    })
}

/// Fragments `Skb::steal_payload(off, ..)` will produce: the linear part's payload as
/// one (if any), then every page fragment.
fn frags_needed(skb: &Skb, off: usize) -> usize {
    usize::from(off < skb.headlen()) + skb.frags().len()
}

/// `napi_gro_receive`: merge `skb` into a held packet of the same flow, hold it, or
/// deliver it.
pub fn napi_gro_receive(
    stack: &Stack,
    napi: &super::napi::Napi,
    dev: &Arc<NetDevice>,
    mut skb: Skb,
) {
    stack
        .trace
        .hit(Stage::GroReceive, skb.trace_id, skb.len(), stack.now());
    // netif_elide_gro: `ethtool -K gro off` passes everything straight up.
    let on = dev.features().contains(super::Features::GRO);
    let p = match parse(&skb) {
        Some(p) if on && skb.ip_summed.is_verified() => p,
        _ => {
            super::rx::netif_receive_skb(stack, dev, skb);
            return;
        }
    };
    // Only ACK set, with PSH or FIN allowed on the segment that ends a merge (they are
    // carried to the merged header, as tcp_gro_receive does).
    let plain = p.flags & ACK != 0 && p.flags & !(ACK | PSH | FIN) == 0;
    let ends = p.flags & (PSH | FIN) != 0;
    let mut opts = [0u8; 40];
    opts[..p.thlen - 20].copy_from_slice(&skb.data()[p.ihl + 20..p.ihl + p.thlen]);
    let mut g = napi.gro.lock();
    let pos = g.held.iter().position(|h| h.key == p.key);
    let mut flush_now: Option<Held> = None;
    if let Some(i) = pos {
        let h = &g.held[i];
        let fits = plain
            && !skb.is_gso()
            && p.payload > 0
            && p.seq == h.next_seq
            && p.ack == h.ack
            && p.tos == h.tos
            && p.ttl == h.ttl
            && p.df == h.df
            && (h.df || p.id == h.id.wrapping_add(h.segs))
            && p.thlen == h.thlen
            && opts[..p.thlen - 20] == h.opts[..h.thlen - 20]
            && p.payload <= h.mss
            && h.skb.len() + p.payload < h.dev.gro_ipv4_max_size() as usize
            && h.skb.frags().len() + frags_needed(&skb, p.ihl + p.thlen)
                <= crate::skb::MAX_SKB_FRAGS;
        if fits {
            let mut frags = std::mem::take(&mut g.frags);
            skb.steal_payload(p.ihl + p.thlen, &mut frags);
            let h = &mut g.held[i];
            for f in frags.drain(..) {
                // Room was checked above (frags_needed), so this cannot fail.
                let pushed = h.skb.push_frag(f);
                debug_assert!(pushed.is_ok(), "GRO fragment room checked");
            }
            h.next_seq = h.next_seq.wrapping_add(p.payload as u32);
            h.segs += 1;
            if p.payload < h.mss || ends {
                // Carry PSH and FIN to the merged header, then deliver.
                h.skb.data_mut()[p.ihl + 13] |= p.flags & (PSH | FIN);
                flush_now = Some(g.held.swap_remove(i));
            }
            g.frags = frags;
            drop(g);
            if let Some(h) = flush_now {
                deliver(stack, h);
            }
            return;
        }
        // Not a continuation: the held skb goes first, in order.
        flush_now = Some(g.held.swap_remove(i));
    }
    // A packet the NIC already coalesced (GRO_HW) goes up as it is, after its flow.
    let holdable = plain && p.payload > 0 && !ends && !skb.is_gso();
    if holdable {
        let evict = (g.held.len() >= MAX_GRO_SKBS).then(|| g.held.remove(0));
        g.held.push(Held {
            dev: dev.clone(),
            next_seq: p.seq.wrapping_add(p.payload as u32),
            ack: p.ack,
            thlen: p.thlen,
            opts,
            mss: p.payload,
            tos: p.tos,
            ttl: p.ttl,
            df: p.df,
            id: p.id,
            segs: 1,
            key: p.key,
            skb,
        });
        drop(g);
        if let Some(h) = flush_now {
            deliver(stack, h);
        }
        if let Some(h) = evict {
            deliver(stack, h);
        }
        return;
    }
    drop(g);
    if let Some(h) = flush_now {
        deliver(stack, h);
    }
    super::rx::netif_receive_skb(stack, dev, skb);
}

/// Fix up a merged skb's headers (`inet_gro_complete` / `tcp4_gro_complete`: IP
/// length and checksum; the TCP checksum left to finish over the whole merged payload,
/// `CHECKSUM_PARTIAL`, so a forwarded packet's segments get theirs; GSO fields) and
/// hand it to the stack.
fn deliver(stack: &Stack, mut h: Held) {
    if h.segs > 1 {
        let len = h.skb.len();
        let (src, dst) = {
            let d = h.skb.data_mut();
            crate::ipv4::iph_set_totlen(d, len);
            crate::ipv4::ip_send_check(&mut d[..20]);
            (
                std::net::Ipv4Addr::new(d[12], d[13], d[14], d[15]),
                std::net::Ipv4Addr::new(d[16], d[17], d[18], d[19]),
            )
        };
        super::gso::set_partial_csum(&mut h.skb, 20, 6, src, dst, len - 20);
        h.skb.gso_size = h.mss as u16;
        h.skb.gso_type = crate::skb::GsoType::TcpV4;
        h.skb.gso_segs = h.segs;
        let st = &h.dev.stats;
        st.rx_gro_packets
            .fetch_add(u64::from(h.segs), std::sync::atomic::Ordering::Relaxed);
        st.rx_gro_skbs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    super::rx::netif_receive_skb(stack, &h.dev, h.skb);
}

/// `napi_gro_flush`: deliver every held packet.
pub fn napi_gro_flush(stack: &Stack, napi: &super::napi::Napi) {
    let mut held = {
        let mut g = napi.gro.lock();
        if g.held.is_empty() {
            return;
        }
        let mut out = std::mem::take(&mut g.spare);
        std::mem::swap(&mut out, &mut g.held);
        out
    };
    for h in held.drain(..) {
        deliver(stack, h);
    }
    napi.gro.lock().spare = held;
}
