//! `Skb`: the one packet structure that travels the whole path (Linux's `struct sk_buff`).
//!
//! Layout, as in seed 003: a linear buffer `[head ... data ... tail ... end]` where
//! headers are pushed into the headroom before `data` without copying payload, plus a
//! list of refcounted page fragments ([`Frag`], Linux's `skb_shared_info.frags`) for
//! scatter-gather payload. `len()` counts both; `headlen()` only the linear part.
//!
//! ```text
//!  head      data           tail        end        frags[0]   frags[1] ...
//!   |<-room->|<-- linear -->|<-tailroom->|          [bytes]    [bytes]
//!            ^ mac/network/transport header offsets point in here
//! ```
//!
//! * `Skb::clone_shared` is `skb_clone`: a new skb that copies the (header-sized) linear
//!   area and shares every fragment. TCP keeps the original on its retransmit queue and
//!   sends the clone, so payload bytes are never copied for transmission.
//! * Skbs come from a [`pool`]: dropping one returns its body (metadata, linear buffer and
//!   fragment vector) for reuse, so steady-state traffic allocates nothing.
//! * An skb may have an [`SkbOwner`] (the socket's `sk_wmem_alloc` accounting and the TCP
//!   small-queue release, Linux's `skb->destructor`), told when the skb is freed.
//!
//! ```
//! use usnet::skb::Skb;
//! let mut skb = Skb::alloc(64, 128);
//! skb.put_slice(b"payload");
//! skb.push(4).copy_from_slice(b"hdr:");
//! skb.reset_network_header();
//! assert_eq!(skb.data(), b"hdr:payload");
//! assert_eq!(skb.headroom(), 124);
//! let clone = skb.clone_shared();
//! assert_eq!(clone.data(), skb.data());
//! ```

pub mod pool;

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::time::Instant;

/// A page fragment: a refcounted, immutable byte range (Linux's `skb_frag_t`).
pub type Frag = Bytes;

thread_local! {
    static FRAG_SCRATCH: std::cell::RefCell<Vec<Frag>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// An empty vector of fragments from this thread's scratch, for moving fragments
/// between skbs (TSO splits, GSO, trimming acknowledged bytes) without allocating in
/// steady state. Give it back with [`put_frag_scratch`]; a second taker while it is out
/// gets a new vector.
pub fn take_frag_scratch() -> Vec<Frag> {
    FRAG_SCRATCH
        .try_with(|c| {
            c.try_borrow_mut()
                .map(|mut v| std::mem::take(&mut *v))
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

/// Return a vector from [`take_frag_scratch`] (emptied; its capacity is kept).
pub fn put_frag_scratch(mut v: Vec<Frag>) {
    v.clear();
    let _ = FRAG_SCRATCH.try_with(|c| {
        if let Ok(mut s) = c.try_borrow_mut() {
            if s.capacity() < v.capacity() {
                *s = v;
            }
        }
    });
}

/// At most this many fragments per skb (Linux's `MAX_SKB_FRAGS`).
pub const MAX_SKB_FRAGS: usize = 17;

/// What the stack charges per skb on top of its buffers (`SKB_TRUESIZE` overhead of the
/// `sk_buff` and `skb_shared_info` structures).
pub const SKB_OVERHEAD: u32 = 320;

/// No header offset recorded.
const NO_HEADER: u16 = u16::MAX;

/// Checksum state of an skb (Linux's `skb->ip_summed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IpSummed {
    /// Nothing known: the checksum is in the packet (receive: must be verified in software).
    #[default]
    None,
    /// Receive: the device verified the checksum (`CHECKSUM_UNNECESSARY`).
    Unnecessary,
    /// Receive: the device summed the packet; the sum is in `csum` (`CHECKSUM_COMPLETE`).
    Complete,
    /// Transmit: the checksum field holds the pseudo-header sum; whoever transmits must
    /// finish it over `[csum_start, end)` and store it at `csum_start + csum_offset`
    /// (`CHECKSUM_PARTIAL`).
    Partial,
}

impl IpSummed {
    /// Whether the transport checksum needs no software check on receive: verified by
    /// the device, or never finished because it was offloaded by a sender on the same
    /// path (Linux's `skb_csum_unnecessary`, which accepts `CHECKSUM_PARTIAL`).
    #[inline]
    pub fn is_verified(self) -> bool {
        matches!(self, IpSummed::Unnecessary | IpSummed::Partial)
    }
}

/// The kind of segmentation offload an skb asks for (Linux's `SKB_GSO_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GsoType {
    /// Not a GSO skb.
    #[default]
    None,
    /// TCP over IPv4 (`SKB_GSO_TCPV4`).
    TcpV4,
    /// UDP segmentation (`SKB_GSO_UDP_L4`).
    UdpL4,
}

/// Who the packet is for (Linux's `skb->pkt_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PktType {
    /// To us.
    #[default]
    Host,
    /// Link-layer broadcast.
    Broadcast,
    /// Link-layer multicast.
    Multicast,
    /// To another host (seen in promiscuous mode).
    OtherHost,
    /// Outgoing (seen by a packet tap).
    Outgoing,
}

/// TCP's per-skb control block (Linux's `struct tcp_skb_cb`, in `skb->cb`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpSkbCb {
    /// First sequence number.
    pub seq: u32,
    /// `seq` + SYN + FIN + data length.
    pub end_seq: u32,
    /// TCP header flags to send.
    pub tcp_flags: u8,
    /// SACK scoreboard bits (`TCPCB_SACKED_ACKED`, `TCPCB_SACKED_RETRANS`, `TCPCB_LOST`,
    /// `TCPCB_EVER_RETRANS`).
    pub sacked: u8,
    /// When the skb was (last) sent, for RTT and RACK.
    pub tx_time: Instant,
    /// Order of that transmission among the socket's (breaks ties between sends at
    /// the same instant, which Linux's nanosecond stamps rarely have).
    pub tx_order: u32,
    /// Delivery-rate sampling state at send time (`tx.delivered`).
    pub tx_delivered: u32,
    /// When the flight this skb belongs to started (`tx.first_tx_mstamp`).
    pub tx_first_tx: Instant,
    /// When the socket last delivered a packet before this send
    /// (`tx.delivered_mstamp`; `None` once the skb was SACKed and sampled).
    pub tx_delivered_mstamp: Option<Instant>,
    /// Whether the sender was application-limited at send time (`tx.is_app_limited`).
    pub tx_app_limited: bool,
    /// Whether the skb may not be collapsed or appended to (`eor`).
    pub eor: bool,
    /// On input: the ISN a SYN reusing a TIME_WAIT pair must get (`tcp_tw_isn`;
    /// 0: none).
    pub tw_isn: u32,
}

/// IP's per-skb control block (Linux's `struct inet_skb_parm`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpSkbCb {
    /// The interface the packet arrived on (0 for locally generated).
    pub iif: u32,
    /// Flags (`IPSKB_FORWARDED`, `IPSKB_FRAG_COMPLETE`, ...).
    pub flags: u16,
    /// Largest fragment size seen when this datagram was reassembled.
    pub frag_max_size: u16,
}

/// The per-layer control block (Linux's 48-byte `skb->cb`): each layer owns its part
/// while the skb is in that layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cb {
    /// TCP's part.
    pub tcp: TcpSkbCb,
    /// IP's part.
    pub ip: IpSkbCb,
}

/// Told when an skb it owns is freed (Linux's `skb->destructor` with `skb->sk`): socket
/// write-memory accounting and the TCP small-queue release.
pub trait SkbOwner: Send + Sync {
    /// The skb charged with `truesize` bytes was freed (or orphaned).
    fn skb_released(&self, truesize: u32);
    /// The owner's pacing state, if it is a full connected socket that a qdisc may
    /// treat as one flow and pace (`sk_fullsock`, not `TCP_CLOSE`). `None` (the default)
    /// makes the skb an "orphan" to fq, classified by its flow hash.
    fn pacing(&self) -> Option<&crate::sock::SkPacing> {
        None
    }
}

/// A socket's charge for one skb, detached from it (for a driver that hands the buffer
/// on but must release the charge at TX completion, or a segment inheriting it). The
/// owner is told when the charge is dropped.
pub struct SkbCharge {
    owner: Arc<dyn SkbOwner>,
    truesize: u32,
}

impl SkbCharge {
    /// Bytes charged.
    pub fn truesize(&self) -> u32 {
        self.truesize
    }
}

impl Drop for SkbCharge {
    fn drop(&mut self) {
        self.owner.skb_released(self.truesize);
    }
}

impl fmt::Debug for SkbCharge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SkbCharge({})", self.truesize)
    }
}

/// The body of an skb. [`Skb`] dereferences to it, so the metadata fields read as
/// `skb.priority`, `skb.cb.tcp.seq`, ...
pub struct SkbInner {
    buf: Vec<u8>,
    data: u32,
    tail: u32,
    mac_header: u16,
    network_header: u16,
    transport_header: u16,
    frags: Vec<Frag>,
    data_len: u32,
    class: u8,
    owner: Option<SkbCharge>,
    /// Link-layer protocol (EtherType) of the payload (`skb->protocol`).
    pub protocol: u16,
    /// Who the packet is for.
    pub pkt_type: PktType,
    /// Queueing priority (`SO_PRIORITY`; selects the pfifo_fast band).
    pub priority: u32,
    /// Firewall mark (`SO_MARK`).
    pub mark: u32,
    /// Flow hash (for TX queue selection, RX steering and GRO).
    pub hash: u32,
    /// Chosen transmit queue.
    pub queue_mapping: u16,
    /// Interface index of the device it is on (`skb->dev`).
    pub ifindex: u32,
    /// Checksum state.
    pub ip_summed: IpSummed,
    /// `CHECKSUM_PARTIAL`: where summing starts (offset from the buffer head).
    pub csum_start: u16,
    /// `CHECKSUM_PARTIAL`: where the result goes, from `csum_start`.
    pub csum_offset: u16,
    /// `CHECKSUM_COMPLETE`: the device's sum.
    pub csum: u32,
    /// Segment size for GSO/TSO (`skb_shinfo(skb)->gso_size`), 0 if not GSO.
    pub gso_size: u16,
    /// Number of segments this skb becomes on the wire.
    pub gso_segs: u16,
    /// GSO kind.
    pub gso_type: GsoType,
    /// Timestamp (receive time, or when queued for transmit).
    pub tstamp: Instant,
    /// Nonzero when this skb is followed by `usnet trace`.
    pub trace_id: u32,
    /// `xmit_more`-style hint and other small flags for drivers.
    pub xmit_more: bool,
    /// The per-layer control block.
    pub cb: Cb,
}

impl SkbInner {
    pub(crate) fn new_boxed(size: usize, class: u8) -> Box<SkbInner> {
        Box::new(SkbInner {
            buf: vec![0; size],
            data: 0,
            tail: 0,
            mac_header: NO_HEADER,
            network_header: NO_HEADER,
            transport_header: NO_HEADER,
            frags: Vec::with_capacity(4),
            data_len: 0,
            class,
            owner: None,
            protocol: 0,
            pkt_type: PktType::Host,
            priority: 0,
            mark: 0,
            hash: 0,
            queue_mapping: 0,
            ifindex: 0,
            ip_summed: IpSummed::None,
            csum_start: 0,
            csum_offset: 0,
            csum: 0,
            gso_size: 0,
            gso_segs: 0,
            gso_type: GsoType::None,
            tstamp: Instant::ZERO,
            trace_id: 0,
            xmit_more: false,
            cb: Cb::default(),
        })
    }

    fn reset(&mut self) {
        self.data = 0;
        self.tail = 0;
        self.frags.clear();
        self.data_len = 0;
        self.reset_meta();
    }

    fn reset_meta(&mut self) {
        self.mac_header = NO_HEADER;
        self.network_header = NO_HEADER;
        self.transport_header = NO_HEADER;
        self.protocol = 0;
        self.pkt_type = PktType::Host;
        self.priority = 0;
        self.mark = 0;
        self.hash = 0;
        self.queue_mapping = 0;
        self.ifindex = 0;
        self.ip_summed = IpSummed::None;
        self.csum_start = 0;
        self.csum_offset = 0;
        self.csum = 0;
        self.gso_size = 0;
        self.gso_segs = 0;
        self.gso_type = GsoType::None;
        self.tstamp = Instant::ZERO;
        self.trace_id = 0;
        self.xmit_more = false;
        self.cb = Cb::default();
    }

    fn copy_meta_from(&mut self, o: &SkbInner) {
        self.mac_header = o.mac_header;
        self.network_header = o.network_header;
        self.transport_header = o.transport_header;
        self.protocol = o.protocol;
        self.pkt_type = o.pkt_type;
        self.priority = o.priority;
        self.mark = o.mark;
        self.hash = o.hash;
        self.queue_mapping = o.queue_mapping;
        self.ifindex = o.ifindex;
        self.ip_summed = o.ip_summed;
        self.csum_start = o.csum_start;
        self.csum_offset = o.csum_offset;
        self.csum = o.csum;
        self.gso_size = o.gso_size;
        self.gso_segs = o.gso_segs;
        self.gso_type = o.gso_type;
        self.tstamp = o.tstamp;
        self.trace_id = o.trace_id;
        self.cb = o.cb;
    }
}

/// A packet buffer (Linux's `struct sk_buff`). See the [module docs](self).
pub struct Skb {
    inner: Option<Box<SkbInner>>,
}

impl std::ops::Deref for Skb {
    type Target = SkbInner;
    #[inline]
    fn deref(&self) -> &SkbInner {
        match &self.inner {
            Some(b) => b,
            None => unreachable!("skb used after free"),
        }
    }
}

impl std::ops::DerefMut for Skb {
    #[inline]
    fn deref_mut(&mut self) -> &mut SkbInner {
        match &mut self.inner {
            Some(b) => b,
            None => unreachable!("skb used after free"),
        }
    }
}

impl Drop for Skb {
    fn drop(&mut self) {
        if let Some(mut body) = self.inner.take() {
            drop(body.owner.take());
            body.reset();
            pool::put(body);
        }
    }
}

impl fmt::Debug for Skb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Skb")
            .field("len", &self.len())
            .field("headlen", &self.headlen())
            .field("frags", &self.frags.len())
            .field("headroom", &self.headroom())
            .field("protocol", &format_args!("{:#06x}", self.protocol))
            .field("gso_size", &self.gso_size)
            .field("gso_segs", &self.gso_segs)
            .field("ip_summed", &self.ip_summed)
            .finish()
    }
}

impl Skb {
    /// `alloc_skb` + `skb_reserve`: an empty skb with `headroom` bytes reserved in front and
    /// room for at least `size` bytes of linear data after them.
    pub fn alloc(size: usize, headroom: usize) -> Skb {
        let need = size.saturating_add(headroom);
        let body = match pool::class_for(need) {
            Some(class) => pool::get(class),
            None => SkbInner::new_boxed(need, u8::MAX),
        };
        let mut skb = Skb { inner: Some(body) };
        skb.data = headroom as u32;
        skb.tail = headroom as u32;
        skb
    }

    /// An skb holding a copy of `bytes` as linear data, with `headroom` in front.
    pub fn from_slice(bytes: &[u8], headroom: usize) -> Skb {
        let mut skb = Skb::alloc(bytes.len(), headroom);
        skb.put_slice(bytes);
        skb
    }
}

impl SkbInner {
    /// Total bytes of packet data (linear + fragments): `skb->len`.
    #[inline]
    pub fn len(&self) -> usize {
        (self.tail - self.data) as usize + self.data_len as usize
    }

    /// Whether the skb holds no data.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes in the linear area: `skb_headlen`.
    #[inline]
    pub fn headlen(&self) -> usize {
        (self.tail - self.data) as usize
    }

    /// Bytes in fragments: `skb->data_len`.
    #[inline]
    pub fn data_len(&self) -> usize {
        self.data_len as usize
    }

    /// Whether any data is in fragments: `skb_is_nonlinear`.
    #[inline]
    pub fn is_nonlinear(&self) -> bool {
        self.data_len > 0
    }

    /// Free space before `data`: `skb_headroom`.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.data as usize
    }

    /// Free space after `tail`: `skb_tailroom` (0 for nonlinear skbs, as Linux).
    #[inline]
    pub fn tailroom(&self) -> usize {
        if self.is_nonlinear() {
            0
        } else {
            self.buf.len() - self.tail as usize
        }
    }

    /// Memory charged to a socket for this skb: `skb->truesize`.
    pub fn truesize(&self) -> u32 {
        SKB_OVERHEAD + self.buf.len() as u32 + self.data_len
    }

    /// The linear data `[data, tail)`.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.data as usize..self.tail as usize]
    }

    /// The linear data, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let (d, t) = (self.data as usize, self.tail as usize);
        &mut self.buf[d..t]
    }

    /// Offset of `data` from the buffer head (for `csum_start` and header offsets).
    #[inline]
    pub fn data_offset(&self) -> usize {
        self.data as usize
    }

    /// The whole linear buffer from its head (for code that works with head offsets).
    pub fn head_buf(&self) -> &[u8] {
        &self.buf[..self.tail as usize]
    }

    /// The whole linear buffer from its head, writable up to `tail`.
    pub fn head_buf_mut(&mut self) -> &mut [u8] {
        let t = self.tail as usize;
        &mut self.buf[..t]
    }

    /// Reserve `n` bytes of headroom in an empty skb: `skb_reserve`.
    pub fn reserve(&mut self, n: usize) {
        debug_assert_eq!(self.headlen(), 0, "skb_reserve on a non-empty skb");
        self.ensure_tailroom(n);
        self.data += n as u32;
        self.tail += n as u32;
    }

    /// Make sure at least `n` bytes of headroom exist, moving the linear data into a
    /// larger buffer if needed (`skb_cow_head` / `skb_realloc_headroom`). Returns whether
    /// a reallocation happened.
    pub fn ensure_headroom(&mut self, n: usize) -> bool {
        if self.headroom() >= n {
            return false;
        }
        let grow = n - self.headroom();
        let new_size = self.buf.len() + grow + 64;
        self.regrow(new_size, grow + 64);
        true
    }

    fn ensure_tailroom(&mut self, n: usize) {
        if self.buf.len() - (self.tail as usize) < n {
            let new_size = self.tail as usize + n;
            self.regrow(new_size, 0);
        }
    }

    /// Move the linear contents to a buffer of `new_size`, shifting everything by `shift`.
    /// The old buffer goes back to the pool with a spare body, so this allocates nothing
    /// when both sizes are pooled classes.
    fn regrow(&mut self, new_size: usize, shift: usize) {
        let mut other = match pool::class_for(new_size) {
            Some(class) => pool::get(class),
            None => SkbInner::new_boxed(new_size, u8::MAX),
        };
        std::mem::swap(&mut self.buf, &mut other.buf);
        std::mem::swap(&mut self.class, &mut other.class);
        let t = self.tail as usize;
        self.buf[shift..shift + t].copy_from_slice(&other.buf[..t]);
        other.reset();
        pool::put(other);
        let s = shift as u32;
        self.data += s;
        self.tail += s;
        let sh = shift as u16;
        for h in [
            &mut self.mac_header,
            &mut self.network_header,
            &mut self.transport_header,
        ] {
            if *h != NO_HEADER {
                *h = h.saturating_add(sh);
            }
        }
        if self.ip_summed == IpSummed::Partial {
            self.csum_start = self.csum_start.saturating_add(sh);
        }
    }

    /// Prepend `n` bytes into the headroom and return them: `skb_push`. Grows the
    /// headroom if it is too small (never panics).
    #[inline]
    pub fn push(&mut self, n: usize) -> &mut [u8] {
        if self.headroom() < n {
            self.ensure_headroom(n);
        }
        self.data -= n as u32;
        let d = self.data as usize;
        &mut self.buf[d..d + n]
    }

    /// Remove `n` bytes from the front of the linear data: `skb_pull`. Returns `None`
    /// (and changes nothing) if fewer than `n` linear bytes exist.
    #[inline]
    pub fn pull(&mut self, n: usize) -> Option<&[u8]> {
        if self.headlen() < n {
            return None;
        }
        let d = self.data as usize;
        self.data += n as u32;
        Some(&self.buf[d..d + n])
    }

    /// Make the first `n` bytes linear, copying them out of fragments if needed:
    /// `pskb_may_pull`. False if the skb is shorter than `n`.
    pub fn may_pull(&mut self, n: usize) -> bool {
        if n <= self.headlen() {
            return true;
        }
        if n > self.len() {
            return false;
        }
        let mut need = n - self.headlen();
        self.ensure_tailroom(need);
        while need > 0 {
            let Some(first) = self.frags.first_mut() else {
                return false;
            };
            let take = need.min(first.len());
            let t = self.tail as usize;
            self.buf[t..t + take].copy_from_slice(&first[..take]);
            self.tail += take as u32;
            self.data_len -= take as u32;
            need -= take;
            if take == first.len() {
                self.frags.remove(0);
            } else {
                let _ = first.split_to(take);
            }
        }
        true
    }

    /// Append `n` bytes to the linear data and return them: `skb_put`. The skb must be
    /// linear (as Linux requires); the buffer grows if the tailroom is short.
    #[inline]
    pub fn put(&mut self, n: usize) -> &mut [u8] {
        debug_assert!(!self.is_nonlinear(), "skb_put on a nonlinear skb");
        self.ensure_tailroom(n);
        let t = self.tail as usize;
        self.tail += n as u32;
        &mut self.buf[t..t + n]
    }

    /// `skb_put_data`: append a copy of `bytes`.
    #[inline]
    pub fn put_slice(&mut self, bytes: &[u8]) {
        self.put(bytes.len()).copy_from_slice(bytes);
    }

    /// Cut the packet to `len` bytes (linear and fragments): `pskb_trim`.
    pub fn trim(&mut self, len: usize) {
        if len >= self.len() {
            return;
        }
        let head = self.headlen();
        if len <= head {
            self.tail = self.data + len as u32;
            self.frags.clear();
            self.data_len = 0;
            return;
        }
        let mut left = len - head;
        let mut keep = 0;
        for f in self.frags.iter_mut() {
            if left == 0 {
                break;
            }
            if f.len() > left {
                f.truncate(left);
            }
            left -= f.len();
            keep += 1;
        }
        self.frags.truncate(keep);
        self.data_len = (len - head) as u32;
    }

    /// The paged fragments.
    #[inline]
    pub fn frags(&self) -> &[Frag] {
        &self.frags
    }

    /// Append a fragment at the end of the data (`skb_fill_page_desc` plus the length
    /// updates). Returns it back if the skb already has [`MAX_SKB_FRAGS`].
    pub fn push_frag(&mut self, frag: Frag) -> Result<(), Frag> {
        if frag.is_empty() {
            return Ok(());
        }
        if self.frags.len() >= MAX_SKB_FRAGS {
            return Err(frag);
        }
        self.data_len += frag.len() as u32;
        self.frags.push(frag);
        Ok(())
    }

    /// Move every byte from `off` (counted from `data`) to the end into `out` as
    /// fragments, without copying (GRO's frag stealing, `skb_gro_receive`). When `off`
    /// falls inside the linear part, the linear buffer itself becomes a shared page and
    /// the emptied skb no longer returns to the pool; when the payload is all in
    /// fragments, only they move and the skb body is recycled as usual.
    pub fn steal_payload(&mut self, off: usize, out: &mut Vec<Frag>) {
        let head = self.headlen();
        if off < head {
            let start = self.data as usize + off;
            let end = self.tail as usize;
            let page = Bytes::from(std::mem::take(&mut self.buf));
            out.push(page.slice(start..end));
            out.append(&mut self.frags);
            // The buffer left with the payload: this body cannot go back to its pool.
            self.class = u8::MAX;
        } else {
            let mut skip = off - head;
            for f in self.frags.drain(..) {
                if skip >= f.len() {
                    skip -= f.len();
                    continue;
                }
                out.push(f.slice(skip..));
                skip = 0;
            }
        }
        self.data = 0;
        self.tail = 0;
        self.data_len = 0;
    }

    /// Remove and return all fragments (the skb keeps its linear part).
    pub fn take_frags(&mut self) -> impl Iterator<Item = Frag> + '_ {
        self.data_len = 0;
        self.frags.drain(..)
    }

    /// Split off everything from byte `at` of the paged data into a new list of
    /// fragments (sharing pages; no copy). The skb keeps `[0, at)` of its paged data.
    pub fn split_frags_at(&mut self, at: usize, out: &mut Vec<Frag>) {
        let mut pos = 0;
        let mut idx = 0;
        while idx < self.frags.len() {
            let flen = self.frags[idx].len();
            if pos + flen > at {
                break;
            }
            pos += flen;
            idx += 1;
        }
        if idx < self.frags.len() && pos < at {
            let tail = self.frags[idx].split_off(at - pos);
            out.push(tail);
            idx += 1;
        }
        out.extend(self.frags.drain(idx..));
        self.data_len = self.frags.iter().map(|f| f.len() as u32).sum();
    }

    // ----- header offsets (skb_reset_*_header, skb_*_header) -----

    /// Mark the current `data` as the start of the link-layer header.
    #[inline]
    pub fn reset_mac_header(&mut self) {
        self.mac_header = self.data as u16;
    }

    /// Mark the current `data` as the start of the network header.
    #[inline]
    pub fn reset_network_header(&mut self) {
        self.network_header = self.data as u16;
    }

    /// Mark the current `data` as the start of the transport header.
    #[inline]
    pub fn reset_transport_header(&mut self) {
        self.transport_header = self.data as u16;
    }

    /// Set the network header `off` bytes after `data`.
    #[inline]
    pub fn set_network_header(&mut self, off: usize) {
        self.network_header = (self.data as usize + off) as u16;
    }

    /// Set the transport header `off` bytes after `data`.
    #[inline]
    pub fn set_transport_header(&mut self, off: usize) {
        self.transport_header = (self.data as usize + off) as u16;
    }

    /// Offset from the head of the link-layer header, if set.
    #[inline]
    pub fn mac_header_offset(&self) -> Option<usize> {
        (self.mac_header != NO_HEADER).then_some(self.mac_header as usize)
    }

    /// Offset from the head of the network header, if set.
    #[inline]
    pub fn network_header_offset(&self) -> Option<usize> {
        (self.network_header != NO_HEADER).then_some(self.network_header as usize)
    }

    /// Offset from the head of the transport header, if set.
    #[inline]
    pub fn transport_header_offset(&self) -> Option<usize> {
        (self.transport_header != NO_HEADER).then_some(self.transport_header as usize)
    }

    /// The linear bytes from the network header to `tail` (empty if unset or past it).
    pub fn network_header(&self) -> &[u8] {
        self.slice_from(self.network_header)
    }

    /// The linear bytes from the transport header to `tail`.
    pub fn transport_header(&self) -> &[u8] {
        self.slice_from(self.transport_header)
    }

    /// The linear bytes from the link-layer header to `tail`.
    pub fn mac_header(&self) -> &[u8] {
        self.slice_from(self.mac_header)
    }

    /// The linear bytes from the network header to `tail`, writable.
    pub fn network_header_mut(&mut self) -> &mut [u8] {
        let off = self.network_header;
        self.slice_from_mut(off)
    }

    /// The linear bytes from the transport header to `tail`, writable.
    pub fn transport_header_mut(&mut self) -> &mut [u8] {
        let off = self.transport_header;
        self.slice_from_mut(off)
    }

    fn slice_from(&self, off: u16) -> &[u8] {
        let t = self.tail as usize;
        if off == NO_HEADER || off as usize > t {
            return &[];
        }
        &self.buf[off as usize..t]
    }

    fn slice_from_mut(&mut self, off: u16) -> &mut [u8] {
        let t = self.tail as usize;
        if off == NO_HEADER || off as usize > t {
            return &mut [];
        }
        &mut self.buf[off as usize..t]
    }

    // ----- sharing and copying -----

    /// `skb_clone`: a new skb with a private copy of the linear area (same offsets, so
    /// header positions stay valid) and shared fragments. The clone has no owner.
    pub fn clone_shared(&self) -> Skb {
        let mut c = Skb::alloc(self.headlen(), self.headroom());
        let (d, t) = (self.data as usize, self.tail as usize);
        c.buf[d..t].copy_from_slice(&self.buf[d..t]);
        c.data = self.data;
        c.tail = self.tail;
        c.frags.extend(self.frags.iter().cloned());
        c.data_len = self.data_len;
        c.copy_meta_from(self);
        c
    }

    /// `skb_copy`: a fully private, linear copy with `headroom` in front.
    pub fn copy_linear(&self, headroom: usize) -> Skb {
        let mut c = Skb::alloc(self.len(), headroom);
        let shift = headroom as isize - self.data as isize;
        {
            let dst = c.put(self.len());
            dst[..self.headlen()].copy_from_slice(self.data());
            let mut pos = self.headlen();
            for f in &self.frags {
                dst[pos..pos + f.len()].copy_from_slice(f);
                pos += f.len();
            }
        }
        c.copy_meta_from(self);
        let fix = |h: u16| -> u16 {
            if h == NO_HEADER || (h as isize + shift) < 0 {
                NO_HEADER
            } else {
                (h as isize + shift) as u16
            }
        };
        c.mac_header = fix(self.mac_header);
        c.network_header = fix(self.network_header);
        c.transport_header = fix(self.transport_header);
        if c.ip_summed == IpSummed::Partial {
            c.csum_start = (self.csum_start as isize + shift).max(0) as u16;
        }
        c
    }

    /// Copy `dst.len()` bytes starting at `offset` of the packet data (linear and paged)
    /// into `dst`: `skb_copy_bits`. False if the range runs past the end.
    pub fn copy_bits(&self, offset: usize, dst: &mut [u8]) -> bool {
        if offset.checked_add(dst.len()).is_none_or(|e| e > self.len()) {
            return false;
        }
        let mut done = 0;
        let mut pos = 0;
        for chunk in self.chunks() {
            let end = pos + chunk.len();
            if end > offset + done && done < dst.len() {
                let start = offset + done - pos;
                let n = (chunk.len() - start).min(dst.len() - done);
                dst[done..done + n].copy_from_slice(&chunk[start..start + n]);
                done += n;
            }
            pos = end;
            if done == dst.len() {
                break;
            }
        }
        true
    }

    /// The data as a sequence of byte slices: the linear area, then each fragment.
    pub fn chunks(&self) -> impl Iterator<Item = &[u8]> + '_ {
        std::iter::once(self.data()).chain(self.frags.iter().map(|f| &f[..]))
    }

    /// Copy every byte into a new vector (for tests, pcap and slow paths).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        for c in self.chunks() {
            v.extend_from_slice(c);
        }
        v
    }

    /// Move all paged data into the linear area: `skb_linearize`.
    pub fn linearize(&mut self) {
        if !self.is_nonlinear() {
            return;
        }
        let n = self.len();
        self.may_pull(n);
    }

    // ----- ownership (skb_set_owner_w / skb_orphan) -----

    /// Charge this skb to `owner` (`skb_set_owner_w`): the owner is told its truesize
    /// when the skb is freed. Replaces (and releases) any earlier owner.
    pub fn set_owner(&mut self, owner: Arc<dyn SkbOwner>) {
        self.orphan();
        let truesize = self.truesize();
        self.owner = Some(SkbCharge { owner, truesize });
    }

    /// Release the skb from its owner now (`skb_orphan`).
    pub fn orphan(&mut self) {
        drop(self.owner.take());
    }

    /// Detach the owner's charge without releasing it.
    pub fn take_owner(&mut self) -> Option<SkbCharge> {
        self.owner.take()
    }

    /// Attach a detached charge (releasing any current one).
    pub fn put_owner(&mut self, charge: SkbCharge) {
        self.owner = Some(charge);
    }

    /// Whether an owner is attached.
    pub fn has_owner(&self) -> bool {
        self.owner.is_some()
    }

    /// The owning socket's pacing state (`skb->sk` for a full socket), if any.
    pub fn sk_pacing(&self) -> Option<&crate::sock::SkPacing> {
        self.owner.as_ref().and_then(|c| c.owner.pacing())
    }

    /// Copy the metadata a segment or fragment inherits from its parent (everything but
    /// lengths, header offsets, checksum state and GSO fields).
    pub fn copy_meta_for_segment(&mut self, o: &SkbInner) {
        self.protocol = o.protocol;
        self.pkt_type = o.pkt_type;
        self.priority = o.priority;
        self.mark = o.mark;
        self.hash = o.hash;
        self.queue_mapping = o.queue_mapping;
        self.ifindex = o.ifindex;
        self.tstamp = o.tstamp;
        self.trace_id = o.trace_id;
        self.cb = o.cb;
    }

    /// Clear what the sender's metadata says, as a frame arriving from the wire: only
    /// the data and the trace id survive; the timestamp becomes `now`.
    pub fn reset_for_rx(&mut self, now: Instant) {
        let trace_id = self.trace_id;
        let csum = (self.ip_summed, self.csum_start, self.csum_offset);
        self.orphan();
        self.reset_meta();
        self.trace_id = trace_id;
        if csum.0 == IpSummed::Partial {
            // An unfinished checksum stays describable (the driver decides what to keep).
            (self.ip_summed, self.csum_start, self.csum_offset) = csum;
        }
        self.tstamp = now;
    }

    /// As [`SkbInner::reset_for_rx`], but keep the checksum state and GSO fields (the
    /// loopback device hands packets back whole, checksums unfinished but trusted).
    pub fn reset_for_rx_keep_csum(&mut self, now: Instant) {
        let (summed, gso) = (
            self.ip_summed,
            (self.gso_size, self.gso_segs, self.gso_type),
        );
        self.reset_for_rx(now);
        self.ip_summed = summed;
        (self.gso_size, self.gso_segs, self.gso_type) = gso;
    }

    /// Set the link-layer header offset (from the buffer head).
    pub fn set_mac_header_at(&mut self, off: usize) {
        self.mac_header = off as u16;
    }

    /// Whether this is a GSO skb: `skb_is_gso`.
    #[inline]
    pub fn is_gso(&self) -> bool {
        self.gso_size != 0
    }

    /// Number of segments it is on the wire (1 for non-GSO): `tcp_skb_pcount`-like.
    #[inline]
    pub fn pcount(&self) -> u32 {
        if self.gso_size == 0 {
            1
        } else {
            u32::from(self.gso_segs.max(1))
        }
    }
}

/// A FIFO of skbs (Linux's `sk_buff_head`), keeping its capacity across uses.
pub type SkbQueue = std::collections::VecDeque<Skb>;

#[cfg(test)]
mod tests;
