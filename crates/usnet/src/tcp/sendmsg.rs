//! The socket's send side (Linux's `net/ipv4/tcp.c`): `tcp_sendmsg` copies the
//! application's bytes once, into page fragments of the skb at the tail of the write
//! queue (a new skb every `size_goal` bytes), waits for send-buffer space, and pushes:
//! `tcp_push` with Nagle, corking, `MSG_MORE` and autocorking deciding whether
//! `tcp_write_xmit` (in [`super::output`]) runs now.
//!
//! The bytes come from a [`SendSource`]: the application's buffers, copied, or its
//! pages themselves (`MSG_SPLICE_PAGES`, what `sendfile` and `splice` hand TCP),
//! attached to the skb as fragments and held while an skb carries them, no copy at all.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

use super::output::{
    tcp_current_mss, tcp_send_mss, tcp_write_xmit, tcphdr, PAGE_FRAG_SIZE, SKB_TRUESIZE_BASE,
};
use super::seq::after;
use super::timer;
use super::{msg, nagle, shutdown, SockGuard, Tcb, TcpExt, TcpSock, TcpState, MAX_TCP_HEADER};
use crate::skb::{Skb, MAX_SKB_FRAGS};
use crate::sock::{errno, os_err};
use crate::trace::Stage;
use crate::Stack;

/// `sk_stream_memory_free`: room in the send buffer for more data, and fewer unsent bytes than `TCP_NOTSENT_LOWAT` (`tcp_stream_memory_free`).
pub fn stream_memory_free(stack: &Stack, t: &Tcb) -> bool {
    memory_free(stack, t, 0)
}

/// `__sk_stream_memory_free(sk, wake)`: a writer is woken only once the unsent bytes
/// are below half the mark (`wake` 1), so it has room to fill when it runs.
fn memory_free(stack: &Stack, t: &Tcb, wake: u32) -> bool {
    t.wmem_queued < t.sndbuf
        && (u64::from(t.notsent_bytes()) << wake) < u64::from(notsent_lowat(stack, t))
}

/// `tcp_notsent_lowat`: the socket's `TCP_NOTSENT_LOWAT`, else the sysctl's.
pub fn notsent_lowat(stack: &Stack, t: &Tcb) -> u32 {
    if t.notsent_lowat != 0 {
        t.notsent_lowat
    } else {
        stack
            .sysctl
            .tcp_notsent_lowat()
            .clamp(1, i64::from(u32::MAX)) as u32
    }
}

/// `sk_stream_is_writeable`: the free space is at least half of what is queued (a
/// third of the buffer when it is full), so a writer woken for it has room to fill,
/// and the unsent bytes are below half of `TCP_NOTSENT_LOWAT`.
pub fn stream_is_writeable(stack: &Stack, t: &Tcb) -> bool {
    t.sndbuf.saturating_sub(t.wmem_queued) >= t.wmem_queued >> 1 && memory_free(stack, t, 1)
}

/// `forced_push`: more than half the largest window is unpushed.
fn forced_push(t: &Tcb) -> bool {
    after(t.write_seq, t.pushed_seq.wrapping_add(t.max_window >> 1))
}

/// `tcp_mark_push`.
fn mark_push(t: &mut Tcb) {
    if let Some(skb) = t.write_queue.back_mut() {
        skb.cb.tcp.tcp_flags |= tcphdr::PSH;
    }
    t.pushed_seq = t.write_seq;
}

/// Move the tail skb's bytes still in the page fragment into a real fragment (done
/// before the skb is cloned, split or a new skb starts).
pub(crate) fn commit_frag(t: &mut Tcb) {
    if t.frag_pending == 0 {
        return;
    }
    let n = t.frag_pending;
    t.frag_pending = 0;
    let Some(page) = t.page_frag.as_mut() else {
        return;
    };
    let bytes = page.split_to(n).freeze();
    if let Some(skb) = t.write_queue.back_mut() {
        if let Err(b) = skb.push_frag(bytes) {
            // Out of fragment slots: linearize what is there, then append.
            skb.linearize();
            skb.put_slice(&b);
        }
    }
}

/// `skb_entail`: a new skb at the tail of the write queue.
pub(crate) fn skb_entail(t: &mut Tcb, skb: Skb) {
    t.wmem_queued += SKB_TRUESIZE_BASE;
    t.write_queue.push_back(skb);
}

fn new_data_skb(stack: &Stack, t: &Tcb) -> Skb {
    let mut skb = Skb::alloc(0, MAX_TCP_HEADER);
    if stack.trace.enabled() {
        // Followed through every stage (and across the wire) by this id.
        skb.trace_id = stack.trace.new_id();
    }
    skb.cb.tcp.seq = t.write_seq;
    skb.cb.tcp.end_seq = t.write_seq;
    skb.cb.tcp.tcp_flags = tcphdr::ACK;
    skb
}

/// Filled page fragments waiting for their skbs to be freed, shared by a stack's
/// sockets: a sender refills a page whose bytes have all been acknowledged instead of
/// allocating a new one — of those, the one filled (so sent, and so left in the cache
/// by the copy into it and the driver's read of it) last; a page filled long ago has
/// left the cache, and writing it costs a read of every line first. Without a pool
/// each 32 KiB page went back to malloc when its last skb was freed, often on another
/// thread, and a fresh one came from newly mapped memory (page faults and zeroing on
/// the copy into it).
#[derive(Debug, Default)]
pub struct PagePool {
    pages: Mutex<Pages>,
}

/// The pool's pages: lent (oldest first) and free again (filled last on top).
#[derive(Debug, Default)]
struct Pages {
    lent: VecDeque<BytesMut>,
    free: Vec<BytesMut>,
}

/// Lent pages a pool keeps at most (8 MiB): beyond that the oldest is let go (freed
/// by its last skb).
const PAGE_POOL_MAX: usize = 256;
/// Lent pages at the head of the pool looked at for ones that are free again (pages
/// come back in about the order they went out; sockets sharing the pool mix it).
const PAGE_POOL_SCAN: usize = 4;
/// Free pages a pool keeps at most (2 MiB; so 10 MiB in all).
const PAGE_POOL_FREE_MAX: usize = 64;

impl PagePool {
    /// Retire the filled page `full` (if there is one) and hand out a page to fill.
    pub fn exchange(&self, full: Option<BytesMut>) -> BytesMut {
        let mut guard = self.pages.lock();
        let p = &mut *guard;
        if let Some(full) = full {
            p.lent.push_back(full);
        }
        // Free pages at the head move to the free stack, oldest first, so the one
        // filled last ends on top.
        let mut i = 0;
        while i < p.lent.len().min(PAGE_POOL_SCAN) {
            if p.lent[i].try_reclaim(PAGE_FRAG_SIZE) {
                if let Some(page) = p.lent.remove(i) {
                    p.free.push(page);
                }
            } else {
                i += 1;
            }
        }
        if p.free.len() > PAGE_POOL_FREE_MAX {
            let extra = p.free.len() - PAGE_POOL_FREE_MAX;
            p.free.drain(..extra);
        }
        while p.lent.len() > PAGE_POOL_MAX {
            p.lent.pop_front();
        }
        if let Some(page) = p.free.pop() {
            return page;
        }
        drop(guard);
        BytesMut::with_capacity(PAGE_FRAG_SIZE)
    }

    /// Pages held (in use by skbs or free).
    pub fn len(&self) -> usize {
        let p = self.pages.lock();
        p.lent.len() + p.free.len()
    }

    /// Whether the pool holds no page.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Copy `data` into the tail skb through the page fragment (one copy), returning bytes
/// taken (it may stop early when the skb runs out of fragment slots).
fn copy_to_tail(stack: &Stack, t: &mut Tcb, data: &[u8]) -> usize {
    let mut done = 0;
    while done < data.len() {
        let room = t.page_frag.as_ref().map_or(0, |p| p.capacity() - p.len());
        if room == 0 {
            commit_frag(t);
        }
        // Bytes not joining a pending fragment start a new one: only with a slot free
        // (the tail may be full of spliced pages), as Linux checks before copying.
        let nfrags = t.write_queue.back().map_or(0, |s| s.frags().len());
        if t.frag_pending == 0 && nfrags >= MAX_SKB_FRAGS {
            break;
        }
        if room == 0 {
            // A fresh page: the old one if every reference is gone already, else one
            // from the stack's pool whose skbs have all been freed.
            let mut old = t.page_frag.take();
            let page = match old.as_mut().map(|p| p.try_reclaim(PAGE_FRAG_SIZE)) {
                Some(true) => old.take(),
                _ => None,
            }
            .unwrap_or_else(|| stack.tcp.page_pool.exchange(old));
            t.page_frag = Some(page);
        }
        let Some(page) = t.page_frag.as_mut() else {
            break;
        };
        let room = page.capacity() - page.len();
        let n = room.min(data.len() - done);
        page.extend_from_slice(&data[done..done + n]);
        t.frag_pending += n;
        done += n;
    }
    done
}

/// Attach `page` to the tail skb as a fragment, no copy (`skb_splice_from_iter`);
/// bytes taken: 0 when the skb is out of fragment slots.
fn splice_to_tail(t: &mut Tcb, page: Bytes) -> usize {
    commit_frag(t);
    let n = page.len();
    match t.write_queue.back_mut().map(|skb| skb.push_frag(page)) {
        Some(Ok(())) => n,
        _ => 0,
    }
}

/// Only this module's sources: `queue` must take what it reports, or `write_seq` and
/// the send-buffer accounting would be wrong.
mod sealed {
    pub trait Sealed {}
    impl Sealed for [&[u8]] {}
    impl Sealed for [bytes::Bytes] {}
}

/// Where `tcp_sendmsg` takes the bytes it queues from: a list of buffers, each queued
/// at the tail skb in pieces. Sealed: the application's buffers (`[&[u8]]`) or pages
/// (`[Bytes]`).
pub trait SendSource: sealed::Sealed {
    /// How many buffers there are.
    fn bufs(&self) -> usize;
    /// The length of buffer `i`.
    fn buf_len(&self, i: usize) -> usize;
    /// Queue bytes `off..off + n` of buffer `i` at the tail skb; bytes taken (fewer, or
    /// 0, when the skb runs out of fragment slots).
    fn queue(&self, stack: &Stack, t: &mut Tcb, i: usize, off: usize, n: usize) -> usize;
}

/// The application's buffers (`write`, `sendmsg`): copied once, into page fragments.
impl SendSource for [&[u8]] {
    fn bufs(&self) -> usize {
        self.len()
    }

    fn buf_len(&self, i: usize) -> usize {
        self[i].len()
    }

    fn queue(&self, stack: &Stack, t: &mut Tcb, i: usize, off: usize, n: usize) -> usize {
        copy_to_tail(stack, t, &self[i][off..off + n])
    }
}

/// The application's pages (`MSG_SPLICE_PAGES`): attached as fragments, no copy; the
/// stack holds a reference to each while an skb carries its bytes. (Linux copies
/// instead when the route's device cannot scatter-gather; a usnet device without
/// `SG` linearizes each skb at transmit, as it does for copied bytes.)
impl SendSource for [Bytes] {
    fn bufs(&self) -> usize {
        self.len()
    }

    fn buf_len(&self, i: usize) -> usize {
        self[i].len()
    }

    fn queue(&self, _stack: &Stack, t: &mut Tcb, i: usize, off: usize, n: usize) -> usize {
        splice_to_tail(t, self[i].slice(off..off + n))
    }
}

/// `tcp_sendmsg_locked`.
pub fn tcp_sendmsg<S: SendSource + ?Sized>(
    sk: &Arc<TcpSock>,
    t: &mut SockGuard<'_>,
    src: &S,
    flags: u32,
    timeout: Option<Duration>,
) -> std::io::Result<usize> {
    let stack = t.stack().clone();
    if flags & msg::OOB != 0 {
        return Err(os_err(errno::EOPNOTSUPP));
    }
    let bufs = src.bufs();
    let total: usize = (0..bufs).map(|i| src.buf_len(i)).sum();
    // Wait for the connection to be established (sk_stream_wait_connect).
    loop {
        if t.err != 0 {
            let e = std::mem::take(&mut t.err);
            return Err(os_err(e));
        }
        if t.shutdown & shutdown::SEND != 0 {
            return Err(os_err(errno::EPIPE));
        }
        match t.state {
            TcpState::Established | TcpState::CloseWait => break,
            TcpState::SynSent | TcpState::SynRecv => {
                if !t.wait(timeout, |t| {
                    !matches!(t.state, TcpState::SynSent | TcpState::SynRecv) || t.err != 0
                }) {
                    return Err(os_err(errno::EAGAIN));
                }
            }
            _ => return Err(os_err(errno::EPIPE)),
        }
    }
    // Is the application what limits sending? (tcp_rate_check_app_limited)
    let below = sk.wmem.alloc.load(std::sync::atomic::Ordering::Acquire);
    super::rate::check_app_limited(t, below);
    let (mut mss_now, mut size_goal) = tcp_send_mss(&stack, t);
    let mut copied = 0usize;
    let mut seg = 0usize; // index in src
    let mut off = 0usize; // offset in buffer seg
    let mut new_segment = false; // the tail skb is out of fragment slots
    'outer: while seg < bufs {
        let seg_len = src.buf_len(seg);
        if off >= seg_len {
            seg += 1;
            off = 0;
            continue;
        }
        // Room in the tail skb?
        let tail_room = if new_segment {
            0
        } else {
            t.write_queue.back().map_or(0, |s| {
                let used = s.len() + t.frag_pending;
                if s.cb.tcp.eor || s.cb.tcp.tcp_flags & tcphdr::FIN != 0 {
                    0
                } else {
                    (size_goal as usize).saturating_sub(used)
                }
            })
        };
        let mut copy = tail_room;
        if copy == 0 {
            // new_segment
            if !stream_memory_free(&stack, t) {
                // wait_for_space: sk_stream_wait_memory marks SOCK_NOSPACE first
                // (also when it returns EAGAIN), so tcp_check_space wakes us.
                sk.nospace.store(true, std::sync::atomic::Ordering::Release);
                if copied > 0 {
                    tcp_push(
                        &stack,
                        sk,
                        t,
                        flags & !msg::MORE,
                        mss_now,
                        nagle::PUSH,
                        size_goal,
                    );
                }
                let ok = t.wait(timeout, |t| {
                    stream_memory_free(&stack, t)
                        || t.err != 0
                        || t.shutdown & shutdown::SEND != 0
                        || !t.can_send()
                });
                if t.err != 0 || t.shutdown & shutdown::SEND != 0 || !t.can_send() {
                    if copied > 0 {
                        break 'outer;
                    }
                    let e = std::mem::take(&mut t.err);
                    return Err(os_err(if e != 0 { e } else { errno::EPIPE }));
                }
                if !ok {
                    if copied > 0 {
                        break 'outer;
                    }
                    return Err(os_err(errno::EAGAIN));
                }
                (mss_now, size_goal) = tcp_send_mss(&stack, t);
                continue;
            }
            commit_frag(t);
            let skb = new_data_skb(&stack, t);
            skb_entail(t, skb);
            new_segment = false;
            copy = size_goal as usize;
        }
        let want = copy.min(seg_len - off);
        let n = src.queue(&stack, t, seg, off, want);
        if n == 0 {
            // The tail skb is out of fragment slots: mark it pushed and start a new
            // one (tcp_mark_push; goto new_segment).
            commit_frag(t);
            mark_push(t);
            new_segment = true;
            continue;
        }
        off += n;
        copied += n;
        t.write_seq = t.write_seq.wrapping_add(n as u32);
        t.wmem_queued += n;
        let end = t.write_seq;
        let is_head;
        let skb_len;
        {
            let skb = t.write_queue.back_mut().expect("tail skb");
            skb.cb.tcp.end_seq = end;
            skb_len = skb.len();
            stack
                .trace
                .hit(Stage::TcpSendmsg, skb.trace_id, n, stack.now());
            is_head = t.write_queue.len() == 1;
        }
        let skb_len = skb_len + t.frag_pending;
        if seg == bufs - 1 && off == seg_len {
            break;
        }
        if skb_len < size_goal as usize {
            continue;
        }
        if forced_push(t) {
            commit_frag(t);
            mark_push(t);
            tcp_push_pending_frames_nagle(&stack, sk, t, nagle::PUSH);
        } else if is_head {
            commit_frag(t);
            tcp_push_one(&stack, sk, t, mss_now);
        }
    }
    if copied > 0 {
        let nonagle = t.nonagle;
        tcp_push(&stack, sk, t, flags, mss_now, nonagle, size_goal);
    }
    if copied == 0 && total > 0 {
        return Err(os_err(errno::EAGAIN));
    }
    Ok(copied)
}

/// `tcp_should_autocork`: hold a small tail skb while earlier data is still in the
/// qdisc or driver (its TX completion will push it).
fn should_autocork(stack: &Stack, sk: &TcpSock, t: &Tcb, skb_len: usize, size_goal: u32) -> bool {
    skb_len < size_goal as usize
        && stack.sysctl.tcp_autocorking() != 0
        && !t.rtx_queue.is_empty()
        && wmem_exceeds_tail(sk, t)
}

/// `refcount_read(&sk->sk_wmem_alloc) > skb->truesize` for the tail skb. Linux's
/// `sk_wmem_alloc` starts at 1 (the socket's own reference), so one in-flight skb as
/// large as the tail is enough; we keep that bias.
fn wmem_exceeds_tail(sk: &TcpSock, t: &Tcb) -> bool {
    let truesize = t.write_queue.back().map_or(0, |s| s.truesize() as usize);
    sk.wmem.alloc.load(Ordering::Acquire) + 1 > truesize
}

/// `tcp_push`: mark PSH (unless `MSG_MORE`), autocork, then push pending frames.
pub fn tcp_push(
    stack: &Stack,
    sk: &Arc<TcpSock>,
    t: &mut Tcb,
    flags: u32,
    _mss_now: u32,
    nonagle: u8,
    size_goal: u32,
) {
    commit_frag(t);
    let Some(skb_len) = t.write_queue.back().map(|s| s.len()) else {
        return;
    };
    let id = t.write_queue.back().map_or(0, |s| s.trace_id);
    stack.trace.hit(Stage::TcpPush, id, skb_len, stack.now());
    if flags & msg::MORE == 0 || forced_push(t) {
        mark_push(t);
    }
    if should_autocork(stack, sk, t, skb_len, size_goal) {
        if sk.tsq_pending.fetch_or(1, Ordering::AcqRel) & 1 == 0 {
            stack.tcp.mib.inc(TcpExt::TCPAutoCorking);
        }
        t.tsq_throttled = true;
        // TX completion may have happened before we set the flag: test again.
        if wmem_exceeds_tail(sk, t) {
            return;
        }
    }
    let nonagle = if flags & msg::MORE != 0 {
        nagle::CORK
    } else {
        nonagle
    };
    tcp_push_pending_frames_nagle(stack, sk, t, nonagle);
}

/// `__tcp_push_pending_frames` with the socket's Nagle setting.
pub fn tcp_push_pending_frames(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) {
    let n = t.nonagle;
    tcp_push_pending_frames_nagle(stack, sk, t, n);
}

/// `__tcp_push_pending_frames`.
pub fn tcp_push_pending_frames_nagle(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb, nonagle: u8) {
    if t.state == TcpState::Close {
        return;
    }
    commit_frag(t);
    let mss = tcp_current_mss(stack, t);
    if tcp_write_xmit(stack, sk, t, mss, nonagle, 0) {
        timer::tcp_check_probe_timer(stack, sk, t);
    }
    t.nonagle &= !nagle::PUSH;
}

/// `tcp_push_one`.
fn tcp_push_one(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb, mss_now: u32) {
    tcp_write_xmit(stack, sk, t, mss_now, nagle::PUSH, 1);
}

#[cfg(test)]
mod page_pool_tests {
    use super::*;

    fn fill(page: &mut BytesMut) -> bytes::Bytes {
        let n = page.capacity() - page.len();
        page.extend_from_slice(&vec![7u8; n]);
        page.split_to(n).freeze()
    }

    #[test]
    fn a_page_is_refilled_once_its_skbs_are_freed_and_not_before() {
        let pool = PagePool::default();
        let mut a = pool.exchange(None);
        let in_flight = fill(&mut a);
        let a_ptr = in_flight.as_ptr();
        // `a` is full and its bytes are still referenced (an skb not yet acknowledged):
        // the next page must be a different one.
        let mut b = pool.exchange(Some(a));
        assert_eq!(pool.len(), 1);
        let b_bytes = fill(&mut b);
        assert_ne!(b_bytes.as_ptr(), a_ptr);
        // The skb using `a` is freed: `a` comes back.
        drop(in_flight);
        let mut c = pool.exchange(Some(b));
        assert_eq!(c.capacity(), PAGE_FRAG_SIZE);
        let c_bytes = fill(&mut c);
        assert_eq!(c_bytes.as_ptr(), a_ptr, "the freed page is reused");
        drop((b_bytes, c_bytes));
    }

    /// Of two pages free again, the one filled (and so sent) last comes first: its
    /// lines are the likelier to be in the cache still. (`b` is freed before `a`, so
    /// the order of freeing does not decide it.)
    #[test]
    fn the_page_filled_last_is_refilled_first() {
        let pool = PagePool::default();
        let mut a = pool.exchange(None);
        let a_bytes = fill(&mut a);
        let mut b = pool.exchange(Some(a));
        let b_bytes = fill(&mut b);
        let b_ptr = b_bytes.as_ptr();
        let mut c = pool.exchange(Some(b));
        let c_bytes = fill(&mut c);
        drop(b_bytes);
        drop(a_bytes);
        let mut next = pool.exchange(Some(c));
        assert_eq!(fill(&mut next).as_ptr(), b_ptr, "b, not a");
        drop(c_bytes);
    }

    /// Free pages beyond `PAGE_POOL_FREE_MAX` are let go, and lent ones beyond
    /// `PAGE_POOL_MAX` even while free pages are handed out.
    #[test]
    fn free_and_lent_pages_are_both_bounded() {
        let pool = PagePool::default();
        let mut page = pool.exchange(None);
        let mut held = Vec::new();
        for _ in 0..PAGE_POOL_FREE_MAX + 40 {
            held.push(fill(&mut page));
            page = pool.exchange(Some(page));
        }
        // All of them free at once: the pool keeps PAGE_POOL_FREE_MAX of them.
        drop(held);
        held = vec![fill(&mut page)];
        page = pool.exchange(Some(page));
        assert!(pool.len() <= PAGE_POOL_FREE_MAX + 1, "{}", pool.len());
        for _ in 0..PAGE_POOL_MAX + 50 {
            held.push(fill(&mut page));
            page = pool.exchange(Some(page));
        }
        assert!(
            pool.len() <= PAGE_POOL_MAX + PAGE_POOL_FREE_MAX,
            "{}",
            pool.len()
        );
        drop(held);
    }

    #[test]
    fn the_pool_is_bounded() {
        let pool = PagePool::default();
        let mut held = Vec::new();
        let mut page = pool.exchange(None);
        for _ in 0..PAGE_POOL_MAX + 50 {
            held.push(fill(&mut page));
            page = pool.exchange(Some(page));
        }
        assert_eq!(pool.len(), PAGE_POOL_MAX);
    }
}
