//! Pieces every socket shares (Linux's `struct sock` basics): the wait queue blocking
//! calls sleep on, send-buffer accounting that wakes writers when skbs are freed, the
//! pending-error slot (`sk_err`) that ICMP errors fill, and the pacing fields a qdisc
//! reads through `skb->sk` ([`SkPacing`]).

use std::sync::atomic::{AtomicI32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::skb::SkbOwner;

/// A socket's wait queue (Linux's `sk_wq`): blocking callers sleep on it; async callers
/// leave a waker. Every state change that may unblock someone calls
/// [`WaitQueue::wake_all`].
#[derive(Default)]
pub struct WaitQueue {
    /// Wake-ups so far: changed under `lock` (so a sleeper cannot miss one), read
    /// without it by a busy poller, which re-checks readiness only when it moves.
    gen: AtomicU64,
    lock: Mutex<()>,
    cv: Condvar,
    wakers: Mutex<Vec<Waker>>,
    /// poll/epoll sets watching this socket (Linux's `ep_poll_callback` entries).
    pollers: Mutex<Vec<std::sync::Weak<Notify>>>,
}

/// Something a poll or epoll waiter sleeps on; every watched socket's wake-up
/// signals it.
#[derive(Default, Debug)]
pub struct Notify {
    gen: Mutex<u64>,
    cv: Condvar,
    /// Also signalled (an epoll item's notifier points at its set's).
    parent: Option<Arc<Notify>>,
}

impl Notify {
    /// A notifier that also signals `parent`.
    pub fn with_parent(parent: Arc<Notify>) -> Notify {
        Notify {
            parent: Some(parent),
            ..Notify::default()
        }
    }

    /// Signal the waiter.
    pub fn notify(&self) {
        *self.gen.lock() += 1;
        self.cv.notify_all();
        if let Some(p) = &self.parent {
            p.notify();
        }
    }

    /// The current generation (to sleep until it changes).
    pub fn generation(&self) -> u64 {
        *self.gen.lock()
    }

    /// Sleep until the generation differs from `seen` or `deadline` passes.
    pub fn wait_change(&self, seen: u64, deadline: Option<std::time::Instant>) {
        let mut g = self.gen.lock();
        while *g == seen {
            match deadline {
                Some(d) => {
                    if std::time::Instant::now() >= d || self.cv.wait_until(&mut g, d).timed_out() {
                        return;
                    }
                }
                None => self.cv.wait(&mut g),
            }
        }
    }
}

impl std::fmt::Debug for WaitQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WaitQueue(gen {})", self.seq())
    }
}

impl WaitQueue {
    /// Wake every sleeper and waker (`sk->sk_data_ready` / `sk_write_space`).
    pub fn wake_all(&self) {
        {
            let _g = self.lock.lock();
            self.gen.fetch_add(1, Ordering::AcqRel);
        }
        self.cv.notify_all();
        let wakers = std::mem::take(&mut *self.wakers.lock());
        for w in wakers {
            w.wake();
        }
        let mut pollers = self.pollers.lock();
        if !pollers.is_empty() {
            pollers.retain(|p| match p.upgrade() {
                Some(n) => {
                    n.notify();
                    true
                }
                None => false,
            });
        }
    }

    /// Watch this queue from a poll/epoll set: every wake-up signals `n`.
    pub fn add_poller(&self, n: &Arc<Notify>) {
        let mut p = self.pollers.lock();
        p.retain(|w| w.strong_count() > 0);
        if !p.iter().any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(n))) {
            p.push(Arc::downgrade(n));
        }
    }

    /// Stop watching from `n`.
    pub fn remove_poller(&self, n: &Arc<Notify>) {
        self.pollers
            .lock()
            .retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(n)));
    }

    /// Wake-ups so far (lock-free; changes whenever [`WaitQueue::wake_all`] runs).
    #[inline]
    pub fn seq(&self) -> u64 {
        self.gen.load(Ordering::Acquire)
    }

    /// Register an async waker for the next wake-up.
    pub fn register(&self, w: &Waker) {
        let mut ws = self.wakers.lock();
        if !ws.iter().any(|x| x.will_wake(w)) {
            ws.push(w.clone());
        }
    }

    /// Sleep until `ready()` is true or `timeout` passes. Returns whether it became
    /// ready. `ready` runs without the queue's lock held (it may take the socket's
    /// locks, which wakers hold while waking); a wake-up between the check and the
    /// sleep is still never lost, because the sleeper compares the queue's generation
    /// with the one it saw before checking.
    pub fn wait_until(&self, timeout: Option<Duration>, mut ready: impl FnMut() -> bool) -> bool {
        if timeout == Some(Duration::ZERO) {
            // Non-blocking: one look, no clock read, no sleep.
            return ready();
        }
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            let seen = self.seq();
            if ready() {
                return true;
            }
            let mut g = self.lock.lock();
            if self.gen.load(Ordering::Acquire) != seen {
                continue;
            }
            match deadline {
                Some(d) => {
                    if std::time::Instant::now() >= d {
                        drop(g);
                        return ready();
                    }
                    self.cv.wait_until(&mut g, d);
                }
                None => self.cv.wait(&mut g),
            }
        }
    }
}

/// Send-buffer accounting of one socket (`sk_wmem_alloc` against `sk_sndbuf`): skbs
/// charged to it release their truesize when freed, waking writers.
#[derive(Debug)]
pub struct WmemAccount {
    /// Bytes charged (`sk_wmem_alloc`).
    pub alloc: AtomicUsize,
    /// The limit (`sk_sndbuf`).
    pub sndbuf: AtomicUsize,
    /// Woken when room frees up.
    pub wq: Arc<WaitQueue>,
}

impl WmemAccount {
    /// An account with `sndbuf` bytes of room, waking `wq`.
    pub fn new(sndbuf: usize, wq: Arc<WaitQueue>) -> Arc<WmemAccount> {
        Arc::new(WmemAccount {
            alloc: AtomicUsize::new(0),
            sndbuf: AtomicUsize::new(sndbuf),
            wq,
        })
    }

    /// Whether `more` bytes fit.
    pub fn has_room(&self, more: usize) -> bool {
        self.alloc.load(Ordering::Acquire) + more <= self.sndbuf.load(Ordering::Relaxed)
    }

    /// Charge `n` bytes (the skb's owner is set separately).
    pub fn charge(&self, n: usize) {
        self.alloc.fetch_add(n, Ordering::AcqRel);
    }
}

impl SkbOwner for WmemAccount {
    fn skb_released(&self, truesize: u32) {
        let before = self.alloc.fetch_sub(truesize as usize, Ordering::AcqRel);
        // sock_wfree: wake writers when at least half the buffer is free again.
        let after = before.saturating_sub(truesize as usize);
        if after <= self.sndbuf.load(Ordering::Relaxed) / 2 {
            self.wq.wake_all();
        }
    }
}

/// Who paces a socket's packets (Linux's `sk_pacing_status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacingStatus {
    /// No one: packets leave as soon as the congestion window allows
    /// (`SK_PACING_NONE`).
    None,
    /// The transport paces with its own timer (`SK_PACING_NEEDED`: set by
    /// `SO_MAX_PACING_RATE` when no fq qdisc has claimed the socket).
    Needed,
    /// The fq qdisc paces, by each skb's departure time (`SK_PACING_FQ`); the transport
    /// only stamps the times.
    Fq,
}

/// The part of `struct sock` a qdisc sees through `skb->sk`: the socket's identity (fq's
/// flow key), its pacing rate (`sk_pacing_rate`) and its pacing status
/// (`sk_pacing_status`). Shared between the socket and every skb it owns, so a qdisc
/// may read and set it without the socket lock, as Linux does with
/// `READ_ONCE`/`smp_store_release`.
#[derive(Debug)]
pub struct SkPacing {
    /// Low 32 bits of the socket's id: a flow key for fq, where a rare collision
    /// only shares a flow (and it keeps an idle socket small).
    id: u32,
    status: AtomicU8,
    rate: AtomicU64,
}

impl SkPacing {
    /// The pacing state of socket `id` (unique for the process's lifetime): rate
    /// unlimited, status [`PacingStatus::None`].
    pub fn new(id: u64) -> SkPacing {
        SkPacing {
            id: id as u32,
            status: AtomicU8::new(0),
            rate: AtomicU64::new(u64::MAX),
        }
    }

    /// The owning socket's id (its low 32 bits).
    pub fn id(&self) -> u64 {
        u64::from(self.id)
    }

    /// `sk_pacing_rate` in bytes per second (`u64::MAX`: unlimited).
    pub fn rate(&self) -> u64 {
        self.rate.load(Ordering::Relaxed)
    }

    /// Publish a new `sk_pacing_rate` (bytes per second; `u64::MAX` for unlimited).
    pub fn set_rate(&self, bytes_per_sec: u64) {
        self.rate.store(bytes_per_sec, Ordering::Relaxed);
    }

    /// `sk_pacing_status` (`smp_load_acquire`).
    pub fn status(&self) -> PacingStatus {
        match self.status.load(Ordering::Acquire) {
            1 => PacingStatus::Needed,
            2 => PacingStatus::Fq,
            _ => PacingStatus::None,
        }
    }

    /// The fq qdisc takes over pacing (`smp_store_release(.., SK_PACING_FQ)`).
    pub fn set_fq(&self) {
        self.status.store(2, Ordering::Release);
    }

    /// Ask for transport pacing unless someone already paces
    /// (`cmpxchg(NONE, NEEDED)`, as `SO_MAX_PACING_RATE` and BBR do).
    pub fn request_internal(&self) {
        let _ = self
            .status
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire);
    }

    /// `tcp_needs_internal_pacing`: the transport must pace with its own timer.
    pub fn needs_internal_pacing(&self) -> bool {
        self.status() == PacingStatus::Needed
    }
}

/// The pending error of a socket (`sk_err`), set by ICMP errors and consumed by the next
/// call (`sock_error`).
#[derive(Debug, Default)]
pub struct SockError(AtomicI32);

impl SockError {
    /// Record an errno.
    pub fn set(&self, errno: i32) {
        self.0.store(errno, Ordering::Release);
    }

    /// Take the pending error, if any (`sock_error`).
    pub fn take(&self) -> Option<std::io::Error> {
        let e = self.0.swap(0, Ordering::AcqRel);
        (e != 0).then(|| std::io::Error::from_raw_os_error(e))
    }

    /// The pending errno without clearing it.
    pub fn peek(&self) -> i32 {
        self.0.load(Ordering::Acquire)
    }
}

/// Linux errno values the stack returns.
pub mod errno {
    /// Operation not permitted.
    pub const EPERM: i32 = 1;
    /// Interrupted / would block.
    pub const EAGAIN: i32 = 11;
    /// Permission denied.
    pub const EACCES: i32 = 13;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// Broken pipe.
    pub const EPIPE: i32 = 32;
    /// Protocol error.
    pub const EPROTO: i32 = 71;
    /// Destination address required.
    pub const EDESTADDRREQ: i32 = 89;
    /// Message too long.
    pub const EMSGSIZE: i32 = 90;
    /// Protocol not available.
    pub const ENOPROTOOPT: i32 = 92;
    /// Operation not supported.
    pub const EOPNOTSUPP: i32 = 95;
    /// Address in use.
    pub const EADDRINUSE: i32 = 98;
    /// Cannot assign requested address.
    pub const EADDRNOTAVAIL: i32 = 99;
    /// Network unreachable.
    pub const ENETUNREACH: i32 = 101;
    /// No buffer space.
    pub const ENOBUFS: i32 = 105;
    /// Already connected.
    pub const EISCONN: i32 = 106;
    /// Not connected.
    pub const ENOTCONN: i32 = 107;
    /// Timed out.
    pub const ETIMEDOUT: i32 = 110;
    /// Connection refused.
    pub const ECONNREFUSED: i32 = 111;
    /// Host down.
    pub const EHOSTDOWN: i32 = 112;
    /// Host unreachable.
    pub const EHOSTUNREACH: i32 = 113;
    /// Connection reset.
    pub const ECONNRESET: i32 = 104;
    /// Machine is not on the network.
    pub const ENONET: i32 = 64;
    /// Operation now in progress (non-blocking connect).
    pub const EINPROGRESS: i32 = 115;
    /// Operation already in progress.
    pub const EALREADY: i32 = 114;
}

/// An `io::Error` for an errno.
pub fn os_err(errno: i32) -> std::io::Error {
    std::io::Error::from_raw_os_error(errno)
}
