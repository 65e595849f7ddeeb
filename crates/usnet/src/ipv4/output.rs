//! The IPv4 output path (Linux's `net/ipv4/ip_output.c`), in the seeds' order and with
//! their names (seed 000 §四, seed 002 §2):
//!
//! `ip_queue_xmit` (cached route or lookup; no route → `EHOSTUNREACH`, OutNoRoutes) →
//! header (version/IHL, TOS, DF from the socket's PMTU-discovery mode, TTL, protocol,
//! addresses, options, IP ID as `ip_select_ident`; priority and mark on the skb) →
//! `ip_local_out` (`__ip_local_out`: tot_len, checksum, NF LOCAL_OUT) → `dst_output` →
//! `ip_output` (counters, NF POST_ROUTING) → `ip_finish_output` (GSO skbs pass whole;
//! longer than the MTU → `ip_fragment`, or ICMP fragmentation-needed when DF is set) →
//! `ip_finish_output2` (broadcast counters, headroom, neighbour lookup or create,
//! `neigh_output`).

use std::io;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::route::{Dst, Flowi4, RtnType};
use crate::mib::{Ip, IpExt};
use crate::netfilter::{NfHook, NfPacket, Verdict};
use crate::skb::Skb;
use crate::time::Instant;
use crate::trace::Stage;
use crate::Stack;

/// Headroom every locally generated skb reserves for IP + Ethernet headers (Linux's
/// `MAX_HEADER` plus slack).
pub const MAX_HEADER: usize = 128;

/// `IP_DF`.
pub const IP_DF: u16 = 0x4000;
/// `IP_MF`.
pub const IP_MF: u16 = 0x2000;

/// Path MTU discovery mode of a socket (`IP_MTU_DISCOVER`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PmtuDisc {
    /// Never set DF (`IP_PMTUDISC_DONT`).
    Dont,
    /// Set DF unless the route's MTU is locked; fragment locally what does not fit
    /// (`IP_PMTUDISC_WANT`, the default while `ip_no_pmtu_disc` is 0).
    #[default]
    Want,
    /// Always set DF; refuse what does not fit (`IP_PMTUDISC_DO`).
    Do,
    /// Set DF, ignore the learned path MTU (`IP_PMTUDISC_PROBE`).
    Probe,
}

/// What a socket contributes to its packets' IP headers (Linux's `inet_sock` fields).
#[derive(Clone, Debug, Default)]
pub struct IpSockOpts {
    /// `IP_TTL` (None: `ip_default_ttl`).
    pub ttl: Option<u8>,
    /// `IP_TOS`.
    pub tos: u8,
    /// `IP_MTU_DISCOVER`.
    pub pmtudisc: PmtuDisc,
    /// `SO_PRIORITY`.
    pub priority: u32,
    /// `SO_MARK`.
    pub mark: u32,
    /// IP options (already padded to 4 bytes), at most 40 bytes.
    pub options: Vec<u8>,
    /// Per-socket IP ID counter for DF packets of connected sockets (`inet_id`).
    pub inet_id: Option<Arc<AtomicU32>>,
}

impl IpSockOpts {
    /// `ip_dont_fragment`.
    pub fn dont_fragment(&self, dst: &Dst) -> bool {
        match self.pmtudisc {
            PmtuDisc::Dont => false,
            PmtuDisc::Want => !dst.mtu_locked(),
            PmtuDisc::Do | PmtuDisc::Probe => true,
        }
    }
}

/// `ip_idents`: the hashed IP ID generator (Linux's `ip_idents_reserve`): 2048 buckets,
/// each advanced by a random amount proportional to the time since its last use, so
/// IDs are hard to predict across flows.
pub struct Idents {
    ids: Box<[AtomicU32]>,
    stamps: Box<[AtomicU32]>,
    key: u64,
}

impl Idents {
    /// A generator keyed by `key` (random per stack).
    pub fn new(key: u64) -> Idents {
        Idents {
            ids: (0..2048).map(|_| AtomicU32::new(0)).collect(),
            stamps: (0..2048).map(|_| AtomicU32::new(0)).collect(),
            key,
        }
    }

    /// Reserve `segs` consecutive IDs for a packet from `saddr` to `daddr`.
    pub fn reserve(
        &self,
        stack: &Stack,
        daddr: Ipv4Addr,
        saddr: Ipv4Addr,
        proto: u8,
        segs: u32,
    ) -> u16 {
        let h = crate::dev::flow::mix(
            u32::from(daddr) ^ self.key as u32,
            u32::from(saddr) ^ (self.key >> 32) as u32,
            u32::from(proto),
        );
        let b = (h as usize) % self.ids.len();
        let now = stack.now().as_millis() as u32;
        let old = self.stamps[b].load(Ordering::Relaxed);
        let mut delta = 0;
        if old != now
            && self.stamps[b]
                .compare_exchange(old, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            let span = now.wrapping_sub(old);
            delta = stack.rng.lock().below(span);
        }
        let v = self.ids[b].fetch_add(segs + delta, Ordering::Relaxed);
        v.wrapping_add(delta) as u16
    }
}

/// Build the IPv4 header in front of `skb` (whose data is the transport header and
/// payload) and send it along `dst` (`ip_build_and_send_pkt` / the header part of
/// `ip_queue_xmit`).
pub fn ip_push_header(
    stack: &Stack,
    dst: &Dst,
    skb: &mut Skb,
    saddr: Ipv4Addr,
    daddr: Ipv4Addr,
    proto: u8,
    opts: &IpSockOpts,
) {
    let olen = opts.options.len().min(40) & !3;
    let hlen = 20 + olen;
    let df = opts.dont_fragment(dst) && !matches!(dst.kind, RtnType::Local);
    let ttl = opts
        .ttl
        .unwrap_or_else(|| stack.sysctl.ip_default_ttl().clamp(1, 255) as u8);
    let segs = skb.pcount();
    let id = if df {
        match &opts.inet_id {
            Some(c) => c.fetch_add(segs, Ordering::Relaxed) as u16,
            None => 0,
        }
    } else {
        stack.ipv4.idents.reserve(stack, daddr, saddr, proto, segs)
    };
    skb.reset_transport_header();
    let h = skb.push(hlen);
    h[0] = 0x40 | (hlen / 4) as u8;
    h[1] = opts.tos;
    h[2..4].copy_from_slice(&[0, 0]); // tot_len: __ip_local_out
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h[6..8].copy_from_slice(&(if df { IP_DF } else { 0 }).to_be_bytes());
    h[8] = ttl;
    h[9] = proto;
    h[10..12].copy_from_slice(&[0, 0]);
    h[12..16].copy_from_slice(&saddr.octets());
    h[16..20].copy_from_slice(&daddr.octets());
    if olen > 0 {
        h[20..20 + olen].copy_from_slice(&opts.options[..olen]);
    }
    skb.reset_network_header();
    skb.protocol = crate::dev::rx::ETH_P_IP;
    skb.priority = opts.priority;
    skb.mark = opts.mark;
}

/// `ip_queue_xmit`: route (using and refreshing the socket's cached dst), push the IP
/// header and send. `skb.data()` is the transport header.
#[allow(clippy::too_many_arguments)]
pub fn ip_queue_xmit(
    stack: &Stack,
    sk_dst: &mut Option<Arc<Dst>>,
    fl: &Flowi4,
    mut skb: Skb,
    proto: u8,
    opts: &IpSockOpts,
) -> io::Result<()> {
    stack
        .trace
        .hit(Stage::IpQueueXmit, skb.trace_id, skb.len(), stack.now());
    let fib = &stack.ipv4.fib;
    let dst = match sk_dst.as_ref().filter(|d| fib.check(d)) {
        Some(d) => d.clone(),
        None => match fib.route_output(stack, fl) {
            Ok(d) => {
                *sk_dst = Some(d.clone());
                d
            }
            Err(_) => {
                stack.ipv4.mib.inc(Ip::OutNoRoutes);
                return Err(super::route::ehostunreach());
            }
        },
    };
    let saddr = fl
        .saddr
        .filter(|s| !s.is_unspecified())
        .unwrap_or(dst.saddr);
    let daddr = fl.daddr.unwrap_or(dst.daddr);
    ip_push_header(stack, &dst, &mut skb, saddr, daddr, proto, opts);
    ip_local_out(stack, &dst, skb)
}

/// `ip_local_out` → `__ip_local_out`: set the total length and header checksum, pass
/// NF_INET_LOCAL_OUT, then `dst_output`.
pub fn ip_local_out(stack: &Stack, dst: &Arc<Dst>, mut skb: Skb) -> io::Result<()> {
    stack
        .trace
        .hit(Stage::IpLocalOut, skb.trace_id, skb.len(), stack.now());
    let tot = skb.len();
    {
        let h = skb.data_mut();
        super::iph_set_totlen(h, tot);
        super::ip_send_check(h);
    }
    if nf(stack, NfHook::LocalOut, &skb, None, Some(dst.dev.name())) != Verdict::Accept {
        stack.ipv4.mib.inc(Ip::OutDiscards);
        return Err(io::Error::from_raw_os_error(1)); // EPERM, as Linux for NF_DROP
    }
    dst_output(stack, dst, skb)
}

/// Run a netfilter hook over an skb whose data starts at the IPv4 header.
pub(crate) fn nf(
    stack: &Stack,
    hook: NfHook,
    skb: &Skb,
    in_dev: Option<&str>,
    out_dev: Option<&str>,
) -> Verdict {
    stack.ipv4.nf.nf_hook(&NfPacket {
        hook,
        data: skb.data(),
        len: skb.len(),
        in_dev,
        out_dev,
    })
}

/// `dst_output`: the route's output function (`ip_output` for every IPv4 route here).
pub fn dst_output(stack: &Stack, dst: &Arc<Dst>, skb: Skb) -> io::Result<()> {
    ip_output(stack, dst, skb)
}

/// `ip_output`: count, pass NF_INET_POST_ROUTING, then `ip_finish_output`.
pub fn ip_output(stack: &Stack, dst: &Arc<Dst>, skb: Skb) -> io::Result<()> {
    stack
        .trace
        .hit(Stage::IpOutput, skb.trace_id, skb.len(), stack.now());
    let mib = &stack.ipv4.mib;
    if skb.cb.ip.flags & IPSKB_FORWARDED == 0 {
        mib.inc(Ip::OutRequests);
    }
    stack.ipv4.mib_ext.add(IpExt::OutOctets, skb.len() as u64);
    if nf(stack, NfHook::PostRouting, &skb, None, Some(dst.dev.name())) != Verdict::Accept {
        mib.inc(Ip::OutDiscards);
        return Err(io::Error::from_raw_os_error(1));
    }
    ip_finish_output(stack, dst, skb)
}

/// The skb was forwarded (Linux's `IPSKB_FORWARDED`).
pub const IPSKB_FORWARDED: u16 = 1;

fn ip_skb_dst_mtu(stack: &Stack, dst: &Dst, now: Instant) -> u32 {
    let _ = stack;
    dst.mtu(now)
}

/// `ip_finish_output`: GSO skbs whose segments fit go whole; anything longer than the MTU
/// is fragmented (or refused when DF is set).
pub fn ip_finish_output(stack: &Stack, dst: &Arc<Dst>, skb: Skb) -> io::Result<()> {
    stack
        .trace
        .hit(Stage::IpFinishOutput, skb.trace_id, skb.len(), stack.now());
    let mtu = ip_skb_dst_mtu(stack, dst, stack.now()) as usize;
    if skb.is_gso() {
        if super::gso_network_seglen(&skb) <= mtu {
            return ip_finish_output2(stack, dst, skb);
        }
        // Segments would not fit: segment in software, then fragment each
        // (ip_finish_output_gso). A packet that cannot be segmented is dropped, as
        // Linux does (it may be longer than any one datagram: BIG TCP).
        let mut segs = Vec::new();
        if crate::dev::gso::segment(skb, true, &mut segs).is_err() {
            return Err(io::Error::from_raw_os_error(12)); // ENOMEM, as Linux
        }
        for s in segs {
            ip_fragment(stack, dst, s, mtu)?;
        }
        return Ok(());
    }
    if skb.len() > mtu {
        return ip_fragment(stack, dst, skb, mtu);
    }
    ip_finish_output2(stack, dst, skb)
}

/// `ip_fragment` → `ip_do_fragment`: cut a datagram longer than `mtu` into fragments
/// (payload in multiples of 8, options copied as their copy flag says), or, with DF
/// set, refuse it: FragFails and an ICMP fragmentation-needed with the MTU to the
/// sender (which, for a local sender, lowers its path MTU).
pub fn ip_fragment(stack: &Stack, dst: &Arc<Dst>, mut skb: Skb, mtu: usize) -> io::Result<()> {
    stack
        .trace
        .hit(Stage::IpFragment, skb.trace_id, skb.len(), stack.now());
    let mib = &stack.ipv4.mib;
    if skb.len() <= mtu {
        return ip_finish_output2(stack, dst, skb);
    }
    let (hlen, frag_off) = {
        let h = skb.data();
        (
            usize::from(h[0] & 0x0f) * 4,
            u16::from_be_bytes([h[6], h[7]]),
        )
    };
    let local = skb.cb.ip.flags & IPSKB_FORWARDED == 0;
    if frag_off & IP_DF != 0 {
        mib.inc(Ip::FragFails);
        super::icmp::icmp_send(stack, &skb, 3, 4, mtu as u32);
        return Err(io::Error::from_raw_os_error(90)); // EMSGSIZE
    }
    let _ = local;
    if skb.ip_summed == crate::skb::IpSummed::Partial
        && !crate::dev::gso::skb_checksum_help(&mut skb)
    {
        mib.inc(Ip::FragFails);
        return Err(io::Error::from_raw_os_error(22));
    }
    if mtu < hlen + 8 {
        mib.inc(Ip::FragFails);
        return Err(io::Error::from_raw_os_error(90));
    }
    let header: Vec<u8> = skb.data()[..hlen].to_vec();
    let opts_after_first = copied_options(&header[20..hlen]);
    let total = skb.len() - hlen;
    let base_off = usize::from(frag_off & 0x1fff) * 8;
    let more_after = frag_off & IP_MF != 0;
    let mut off = 0;
    let mut first = true;
    while off < total {
        let h = if first {
            hlen
        } else {
            20 + opts_after_first.len()
        };
        let mut len = (mtu - h).min(total - off);
        if off + len < total {
            len &= !7;
        }
        let mut f = Skb::alloc(h + len, MAX_HEADER);
        f.put_slice(&header[..20]);
        if first {
            f.put_slice(&header[20..hlen]);
        } else {
            f.put_slice(&opts_after_first);
        }
        {
            let d = f.put(len);
            skb.copy_bits(hlen + off, d);
        }
        let last = off + len >= total;
        {
            let d = f.data_mut();
            d[0] = 0x40 | (h / 4) as u8;
            let tot = (h + len) as u16;
            d[2..4].copy_from_slice(&tot.to_be_bytes());
            let mut fo = ((base_off + off) / 8) as u16;
            if !last || more_after {
                fo |= IP_MF;
            }
            d[6..8].copy_from_slice(&fo.to_be_bytes());
            super::ip_send_check(&mut d[..h]);
        }
        f.copy_meta_for_segment(&skb);
        f.reset_network_header();
        f.set_transport_header(h);
        mib.inc(Ip::FragCreates);
        ip_finish_output2(stack, dst, f)?;
        off += len;
        first = false;
    }
    mib.inc(Ip::FragOKs);
    Ok(())
}

/// The options of `opts` whose copy flag is set (they go into every fragment), padded
/// (Linux's `ip_options_fragment`).
fn copied_options(opts: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < opts.len() {
        let t = opts[i];
        match t {
            0 => break,
            1 => i += 1,
            _ => {
                let Some(&l) = opts.get(i + 1) else { break };
                let l = usize::from(l);
                if l < 2 || i + l > opts.len() {
                    break;
                }
                if t & 0x80 != 0 {
                    out.extend_from_slice(&opts[i..i + l]);
                }
                i += l;
            }
        }
    }
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out
}

/// `ip_finish_output2`: count broadcasts, make room for the link header, find or create
/// the next hop's neighbour and hand the packet to `neigh_output`.
pub fn ip_finish_output2(stack: &Stack, dst: &Arc<Dst>, mut skb: Skb) -> io::Result<()> {
    stack
        .trace
        .hit(Stage::IpFinishOutput2, skb.trace_id, skb.len(), stack.now());
    let mib = &stack.ipv4.mib;
    match dst.kind {
        RtnType::Broadcast => stack.ipv4.mib_ext.inc(IpExt::OutBcastPkts),
        RtnType::Multicast => stack.ipv4.mib_ext.inc(IpExt::OutMcastPkts),
        _ => {}
    }
    if skb.headroom() < 16 && skb.ensure_headroom(16) {
        // skb_realloc_headroom happened (counted nowhere in Linux either)
    }
    mib.inc(Ip::OutTransmits);
    let nh = dst.nexthop();
    let arp = &stack.ipv4.arp;
    let n = match arp.lookup(&dst.dev, nh) {
        Some(n) => n,
        None => match arp.create(stack, &dst.dev, nh) {
            Some(n) => {
                super::arp::arp_constructor(stack, &n, dst.kind);
                n
            }
            None => {
                mib.inc(Ip::OutDiscards);
                return Err(io::Error::from_raw_os_error(105)); // ENOBUFS
            }
        },
    };
    match crate::neigh::neigh_output(stack, &n, skb) {
        crate::dev::NetXmit::Drop => Err(io::Error::from_raw_os_error(105)),
        _ => Ok(()),
    }
}
