//! IPv4 reassembly (Linux's `net/ipv4/ip_fragment.c` with `inet_fragment.c`).
//!
//! Fragments of one datagram — keyed by source, destination, IP ID and protocol — wait
//! in a queue until every byte from 0 to the end given by the last fragment has arrived;
//! then one datagram is built from the first fragment's header and the payloads in
//! order. As Linux:
//!
//! * memory is bounded: above `ipfrag_high_thresh` (4 MiB) the oldest queues are evicted
//!   until below `ipfrag_low_thresh` (3 MiB), and new fragments are refused while over;
//! * a queue lives `ipfrag_time` (30 s); on expiry, if its first fragment arrived, the
//!   sender gets ICMP time exceeded (fragment reassembly time exceeded);
//! * overlapping fragments kill the whole queue (`ReasmOverlaps`, as Linux since the
//!   "FragmentSmack" fixes, RFC 5722's rule for IPv6); an exact duplicate is only dropped;
//! * a fragment past 65535 bytes, a second last fragment with another end, or data
//!   beyond a known end is malformed: the queue is killed;
//! * `ipfrag_max_dist` (64): a queue that saw this many other fragments from the same
//!   source since it started is presumed stale and restarted (`ip_frag_too_far`).

use std::collections::VecDeque;

use crate::hash::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use parking_lot::Mutex;

use crate::skb::{IpSummed, Skb};
use crate::time::Instant;

/// Reassembly limits (Linux's `ipfrag_*` sysctls).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragConfig {
    /// Memory above which queues are evicted and new fragments refused (4 MiB).
    pub high_thresh: usize,
    /// Memory eviction brings usage down to (3 MiB).
    pub low_thresh: usize,
    /// How long a queue may wait (30 s).
    pub timeout: Duration,
    /// Fragments from the same source after which a queue is stale (64; 0: off).
    pub max_dist: u32,
}

impl Default for FragConfig {
    fn default() -> Self {
        FragConfig {
            high_thresh: 4 * 1024 * 1024,
            low_thresh: 3 * 1024 * 1024,
            timeout: Duration::from_secs(30),
            max_dist: 64,
        }
    }
}

/// Why a fragment was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// It overlapped another fragment: the queue was killed.
    Overlap,
    /// An exact duplicate of a fragment already held.
    Duplicate,
    /// Its end lies past 65535 bytes.
    TooBig,
    /// Inconsistent with the queue (two different ends, data past the end, bad header).
    Malformed,
    /// Reassembly memory is over its limit.
    MemoryLimit,
}

/// What `ip_defrag` did with a fragment.
#[derive(Debug)]
pub enum DefragResult {
    /// The datagram is complete.
    Complete(Skb),
    /// Held, waiting for the rest.
    Queued,
    /// Dropped.
    Dropped(DropReason),
}

/// A queue that timed out.
#[derive(Debug)]
pub struct ExpiredQueue {
    /// The first fragment (offset 0), if it arrived: the caller quotes it in ICMP time
    /// exceeded.
    pub first_fragment: Option<Skb>,
}

/// Reassembly counters (`/proc/net/snmp` names: ReasmReqds, ReasmOKs, ReasmFails,
/// ReasmTimeout; ReasmOverlaps in `/proc/net/netstat`).
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefragStats {
    /// Fragments received.
    pub reasm_reqds: u64,
    /// Datagrams reassembled.
    pub reasm_oks: u64,
    /// Reassembly failures (timeouts, evictions, bad fragments).
    pub reasm_fails: u64,
    /// Queues that timed out.
    pub reasm_timeout: u64,
    /// Queues killed for overlapping fragments.
    pub reasm_overlaps: u64,
}

type Key = (Ipv4Addr, Ipv4Addr, u16, u8);

/// Per-queue bookkeeping charged on top of the fragments' truesize.
const QUEUE_OVERHEAD: usize = 256;

struct Frag {
    off: u32,
    end: u32,
    /// Payload only (the IP header pulled), except for the first fragment.
    skb: Skb,
    hlen: u32,
}

struct Queue {
    frags: Vec<Frag>,
    /// End of the datagram, once the last fragment is seen (else the largest end).
    len: u32,
    last_seen: bool,
    meat: u32,
    mem: usize,
    created: Instant,
    /// Largest fragment (total IP length) seen (`frag_max_size`).
    max_size: u16,
    /// The source's fragment counter when this queue started (`max_dist`).
    rid: u32,
}

struct Inner {
    queues: HashMap<Key, Queue>,
    /// Queues in creation order (for eviction and expiry); stale keys are skipped.
    lru: VecDeque<(Instant, Key)>,
    mem: usize,
    stats: DefragStats,
    /// Per-source fragment counters (Linux's `inet_peer.rid`).
    peers: HashMap<Ipv4Addr, u32>,
}

/// The reassembly queues of one stack.
pub struct IpFrags {
    cfg: Mutex<FragConfig>,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for IpFrags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = self.inner.lock();
        write!(f, "IpFrags({} queues, {} bytes)", i.queues.len(), i.mem)
    }
}

impl IpFrags {
    /// Empty queues with `cfg`.
    pub fn new(cfg: FragConfig) -> IpFrags {
        IpFrags {
            cfg: Mutex::new(cfg),
            inner: Mutex::new(Inner {
                queues: HashMap::default(),
                lru: VecDeque::new(),
                mem: 0,
                stats: DefragStats::default(),
                peers: HashMap::default(),
            }),
        }
    }

    /// Change the limits.
    pub fn set_config(&self, cfg: FragConfig) {
        *self.cfg.lock() = cfg;
    }

    /// The limits.
    pub fn config(&self) -> FragConfig {
        *self.cfg.lock()
    }

    /// Bytes held.
    pub fn mem(&self) -> usize {
        self.inner.lock().mem
    }

    /// Queues held.
    pub fn queues(&self) -> usize {
        self.inner.lock().queues.len()
    }

    /// Counters.
    pub fn stats(&self) -> DefragStats {
        self.inner.lock().stats
    }

    /// When the oldest queue expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        let timeout = self.cfg.lock().timeout;
        let i = self.inner.lock();
        i.lru
            .iter()
            .find(|(c, k)| i.queues.get(k).is_some_and(|q| q.created == *c))
            .map(|(c, _)| *c + timeout)
    }

    /// `ip_defrag`: `skb.data()` starts at a validated IPv4 header (`ip_rcv` checked
    /// version, IHL, checksum and trimmed the skb to the total length).
    pub fn ip_defrag(&self, mut skb: Skb, now: Instant) -> DefragResult {
        let cfg = *self.cfg.lock();
        let mut i = self.inner.lock();
        i.stats.reasm_reqds += 1;
        if !skb.may_pull(20) {
            i.stats.reasm_fails += 1;
            return DefragResult::Dropped(DropReason::Malformed);
        }
        let (hlen, tot, frag_off, key) = {
            let h = skb.data();
            let hlen = u32::from(h[0] & 0x0f) * 4;
            let tot = u32::from(u16::from_be_bytes([h[2], h[3]]));
            let fo = u16::from_be_bytes([h[6], h[7]]);
            let key = (
                Ipv4Addr::new(h[12], h[13], h[14], h[15]),
                Ipv4Addr::new(h[16], h[17], h[18], h[19]),
                u16::from_be_bytes([h[4], h[5]]),
                h[9],
            );
            (hlen, tot, fo, key)
        };
        if hlen < 20 || tot < hlen || (skb.len() as u32) < tot || !skb.may_pull(hlen as usize) {
            i.stats.reasm_fails += 1;
            return DefragResult::Dropped(DropReason::Malformed);
        }
        // Over the memory limit: evict the oldest queues; refuse while still over.
        if i.mem > cfg.high_thresh {
            evict(&mut i, cfg.low_thresh);
            if i.mem > cfg.high_thresh {
                i.stats.reasm_fails += 1;
                return DefragResult::Dropped(DropReason::MemoryLimit);
            }
        }
        let off = u32::from(frag_off & 0x1fff) * 8;
        let mf = frag_off & 0x2000 != 0;
        let mut end = off + (tot - hlen);
        if end > 65535 {
            i.stats.reasm_fails += 1;
            return DefragResult::Dropped(DropReason::TooBig);
        }
        // The source's fragment counter (max_dist).
        let rid = {
            let r = i.peers.entry(key.0).or_insert(0);
            *r = r.wrapping_add(1);
            *r
        };
        if i.peers.len() > 65536 {
            i.peers.clear();
        }
        // Find or create the queue; a queue too far behind its source restarts.
        let mut restart = false;
        if let Some(q) = i.queues.get(&key) {
            if cfg.max_dist > 0 && rid.wrapping_sub(q.rid) > cfg.max_dist {
                restart = true;
            }
        }
        if restart {
            kill(&mut i, &key);
        }
        let inner = &mut *i;
        if let std::collections::hash_map::Entry::Vacant(slot) = inner.queues.entry(key) {
            slot.insert(Queue {
                frags: Vec::new(),
                len: 0,
                last_seen: false,
                meat: 0,
                mem: QUEUE_OVERHEAD,
                created: now,
                max_size: 0,
                rid,
            });
            inner.mem += QUEUE_OVERHEAD;
            inner.lru.push_back((now, key));
        }
        let q = i.queues.get_mut(&key).expect("queue exists");
        q.rid = rid;
        // Where this fragment ends and whether that is consistent.
        if !mf {
            if end < q.len || (q.last_seen && end != q.len) {
                kill(&mut i, &key);
                i.stats.reasm_fails += 1;
                return DefragResult::Dropped(DropReason::Malformed);
            }
            q.last_seen = true;
            q.len = end;
        } else {
            if end & 7 != 0 {
                end &= !7;
                if skb.ip_summed != IpSummed::Unnecessary {
                    skb.ip_summed = IpSummed::None;
                }
            }
            if end > q.len {
                if q.last_seen {
                    kill(&mut i, &key);
                    i.stats.reasm_fails += 1;
                    return DefragResult::Dropped(DropReason::Malformed);
                }
                q.len = end;
            }
        }
        if end == off {
            i.stats.reasm_fails += 1;
            return DefragResult::Dropped(DropReason::Malformed);
        }
        // Overlaps and duplicates.
        if q.frags.iter().any(|f| f.off == off && f.end == end) {
            return DefragResult::Dropped(DropReason::Duplicate);
        }
        if q.frags.iter().any(|f| off < f.end && end > f.off) {
            kill(&mut i, &key);
            i.stats.reasm_overlaps += 1;
            i.stats.reasm_fails += 1;
            return DefragResult::Dropped(DropReason::Overlap);
        }
        // Keep only the payload (and the header of the first fragment).
        skb.trim((hlen + (end - off)) as usize);
        let truesize = skb.truesize() as usize;
        let max_size = tot.min(65535) as u16;
        let pos = q.frags.partition_point(|f| f.off < off);
        q.frags.insert(
            pos,
            Frag {
                off,
                end,
                skb,
                hlen,
            },
        );
        q.meat += end - off;
        q.mem += truesize;
        q.max_size = q.max_size.max(max_size);
        i.mem += truesize;
        let q = i.queues.get(&key).expect("queue exists");
        let complete =
            q.last_seen && q.meat == q.len && q.frags.first().is_some_and(|f| f.off == 0);
        if !complete {
            return DefragResult::Queued;
        }
        let q = i.queues.remove(&key).expect("queue exists");
        i.mem = i.mem.saturating_sub(q.mem);
        i.stats.reasm_oks += 1;
        DefragResult::Complete(reassemble(q))
    }

    /// Queues older than `ipfrag_time` (`ip_expire`). Counts ReasmTimeout and ReasmFails.
    pub fn expire(&self, now: Instant) -> Vec<ExpiredQueue> {
        let timeout = self.cfg.lock().timeout;
        let mut i = self.inner.lock();
        let mut out = Vec::new();
        while let Some(&(created, key)) = i.lru.front() {
            if created + timeout > now {
                break;
            }
            i.lru.pop_front();
            let live = i.queues.get(&key).is_some_and(|q| q.created == created);
            if !live {
                continue;
            }
            if let Some(q) = i.queues.remove(&key) {
                i.mem = i.mem.saturating_sub(q.mem);
                i.stats.reasm_timeout += 1;
                i.stats.reasm_fails += 1;
                let first = q.frags.into_iter().find(|f| f.off == 0).map(|f| f.skb);
                out.push(ExpiredQueue {
                    first_fragment: first,
                });
            }
        }
        out
    }
}

/// Drop a queue and its memory.
fn kill(i: &mut Inner, key: &Key) {
    if let Some(q) = i.queues.remove(key) {
        i.mem = i.mem.saturating_sub(q.mem);
    }
}

/// `inet_frag_worker` eviction: oldest queues first until under `low`.
fn evict(i: &mut Inner, low: usize) {
    while i.mem > low {
        let Some((created, key)) = i.lru.pop_front() else {
            break;
        };
        if i.queues.get(&key).is_some_and(|q| q.created == created) {
            kill(i, &key);
            i.stats.reasm_fails += 1;
        }
    }
}

/// `ip_frag_reasm`: one linear datagram from the first fragment's header and every
/// payload in order.
fn reassemble(q: Queue) -> Skb {
    let first = &q.frags[0];
    let hlen = first.hlen as usize;
    let total = hlen + q.len as usize;
    let mut out = Skb::alloc(total, 128);
    {
        let d = out.put(total);
        first.skb.copy_bits(0, &mut d[..hlen]);
        for f in &q.frags {
            let start = f.hlen as usize;
            let n = (f.end - f.off) as usize;
            f.skb.copy_bits(
                start,
                &mut d[hlen + f.off as usize..hlen + f.off as usize + n],
            );
        }
        d[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        let df = u16::from_be_bytes([d[6], d[7]]) & 0x4000;
        d[6..8].copy_from_slice(&df.to_be_bytes());
        super::ip_send_check(&mut d[..hlen]);
    }
    out.copy_meta_for_segment(&first.skb);
    out.ip_summed = IpSummed::None;
    out.reset_network_header();
    out.set_transport_header(hlen);
    out.cb.ip.frag_max_size = q.max_size;
    out
}

#[cfg(test)]
mod tests;
