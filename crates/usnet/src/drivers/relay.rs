//! A userspace relay between two real links, applying [`Netem`] impairments in real
//! time — loss, delay, jitter, rate, duplication, reordering, corruption — the way the
//! `netem` qdisc would if the kernel had it (this machine's kernel does not).
//!
//! Each side is a [`FramePort`]: a TAP descriptor ([`Tap`](super::tap::Tap)) whose
//! interface carries a kernel's traffic, or an [`AF_PACKET` socket](super::packet)
//! on an interface another program (such as usnet on a TAP) writes to. Frames read on
//! one side are decided by the same `NetemState` as the emulated wire uses, held for
//! their time to send, and written to the other side. So two kernels in two network
//! namespaces, or usnet and a kernel, talk across a lossy, delayed path:
//!
//! ```text
//!  kernel (ns A) ── tapA ═ relay (netem a→b, b→a) ═ tapB ── kernel (ns B)
//! ```
//!
//! One thread serves both directions: it polls both descriptors with a timeout set by
//! the next frame due, drains what is readable, and keeps waiting frames in one heap
//! ordered by time to send (buffers are recycled, so a steady flow allocates nothing).
//! Each direction counts what it saw ([`RelayStats`]), with
//! `received + duplicated = forwarded + lost + dropped_limit + too_big + send_errors +
//! discarded` once the relay has stopped.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::link::netem::NetemState;
use crate::link::Netem;
use crate::time::Instant;

/// A descriptor that reads and writes whole Ethernet frames.
pub trait FramePort: AsRawFd + Send + Sync {
    /// Read one frame without blocking (`WouldBlock` when none is waiting). Returns
    /// the frame's length, which may exceed `buf` when it was truncated.
    fn recv_frame(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Write one frame.
    fn send_frame(&self, frame: &[u8]) -> io::Result<usize>;
    /// A name for messages (`tap:NAME`, `packet:IFACE`).
    fn port_name(&self) -> String;
}

/// Counters of one direction of the relay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Frames read from the incoming side.
    pub received: u64,
    /// Bytes read from the incoming side.
    pub received_bytes: u64,
    /// Frames written to the other side.
    pub forwarded: u64,
    /// Bytes written to the other side.
    pub forwarded_bytes: u64,
    /// Frames lost by the loss model.
    pub lost: u64,
    /// Frames dropped because `limit` frames were already waiting.
    pub dropped_limit: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// Frames with one bit flipped.
    pub corrupted: u64,
    /// Frames sent ahead of delayed ones.
    pub reordered: u64,
    /// Frames longer than the relay's buffer (dropped).
    pub too_big: u64,
    /// Frames the other side refused to take.
    pub send_errors: u64,
    /// Frames still waiting when the relay stopped (discarded).
    pub discarded: u64,
}

/// Largest frame relayed (a 64 KiB GSO frame plus its Ethernet header).
const MAX_FRAME: usize = 65536 + 14;
/// Frames drained from one side per wakeup, so the other side is not starved.
const BATCH: usize = 256;

/// A frame waiting for its time to send.
struct Pending {
    at: Instant,
    seq: u64,
    /// 0: towards side b, 1: towards side a.
    dir: usize,
    buf: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// A running relay; stops (and joins its thread) when dropped.
pub struct Relay {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    stats: Arc<Mutex<[RelayStats; 2]>>,
}

impl Relay {
    /// Start relaying between `a` and `b`: frames from `a` get `a_to_b`'s impairments,
    /// frames from `b` get `b_to_a`'s. `seed` makes the impairment decisions repeat.
    pub fn start(
        a: Arc<dyn FramePort>,
        b: Arc<dyn FramePort>,
        a_to_b: Netem,
        b_to_a: Netem,
        seed: u64,
    ) -> io::Result<Relay> {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new([RelayStats::default(); 2]));
        let name = format!("relay/{}", a.port_name());
        let mut worker = Worker {
            ports: [a, b],
            cfg: [a_to_b, b_to_a],
            netem: [NetemState::new(seed), NetemState::new(seed ^ 0x5bd1_e995)],
            waiting: [0, 0],
            heap: BinaryHeap::new(),
            pool: Vec::new(),
            seq: 0,
            epoch: std::time::Instant::now(),
            stats: stats.clone(),
        };
        let st = stop.clone();
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            worker.run(&st);
            let mut stats = worker.stats.lock();
            for Reverse(p) in worker.heap.drain() {
                stats[p.dir].discarded += 1;
            }
        })?;
        Ok(Relay {
            stop,
            thread: Some(thread),
            stats,
        })
    }

    /// The counters so far: `[a→b, b→a]`.
    pub fn stats(&self) -> [RelayStats; 2] {
        *self.stats.lock()
    }

    /// Stop the relay (frames still waiting are discarded) and return its counters.
    pub fn stop(mut self) -> [RelayStats; 2] {
        self.halt();
        self.stats()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.halt();
    }
}

struct Worker {
    ports: [Arc<dyn FramePort>; 2],
    cfg: [Netem; 2],
    netem: [NetemState; 2],
    /// Frames waiting per direction (for `limit`).
    waiting: [usize; 2],
    heap: BinaryHeap<Reverse<Pending>>,
    pool: Vec<Vec<u8>>,
    seq: u64,
    epoch: std::time::Instant,
    stats: Arc<Mutex<[RelayStats; 2]>>,
}

impl Worker {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.epoch.elapsed().as_nanos() as u64)
    }

    fn run(&mut self, stop: &AtomicBool) {
        let mut rbuf = vec![0u8; MAX_FRAME];
        while !stop.load(Ordering::Acquire) {
            self.send_due();
            let wait = match self.heap.peek() {
                Some(Reverse(p)) => p.at.saturating_duration_since(self.now()),
                None => Duration::from_millis(50),
            }
            .min(Duration::from_millis(50));
            let ready = poll2([self.ports[0].as_raw_fd(), self.ports[1].as_raw_fd()], wait);
            for (dir, r) in ready.into_iter().enumerate() {
                if r {
                    self.drain(dir, &mut rbuf);
                }
            }
        }
    }

    /// Write every frame whose time has come to its side.
    fn send_due(&mut self) {
        let now = self.now();
        let mut stats = self.stats.lock();
        while self.heap.peek().is_some_and(|Reverse(p)| p.at <= now) {
            let Some(Reverse(p)) = self.heap.pop() else {
                break;
            };
            self.waiting[p.dir] -= 1;
            let st = &mut stats[p.dir];
            match self.ports[1 - p.dir].send_frame(&p.buf) {
                Ok(n) => {
                    st.forwarded += 1;
                    st.forwarded_bytes += n as u64;
                }
                Err(_) => st.send_errors += 1,
            }
            self.pool.push(p.buf);
        }
    }

    /// Read up to a batch of frames from side `dir` and decide each one's fate.
    fn drain(&mut self, dir: usize, rbuf: &mut [u8]) {
        let mut stats = *self.stats.lock();
        let st = &mut stats[dir];
        for _ in 0..BATCH {
            let n = match self.ports[dir].recv_frame(rbuf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            st.received += 1;
            st.received_bytes += n as u64;
            if n > rbuf.len() {
                st.too_big += 1;
                continue;
            }
            let cfg = self.cfg[dir];
            let v = self.netem[dir].decide(&cfg);
            if v.copies == 0 {
                st.lost += 1;
                continue;
            }
            st.duplicated += u64::from(v.copies - 1);
            for copy in 0..v.copies {
                if self.waiting[dir] >= cfg.limit {
                    st.dropped_limit += 1;
                    continue;
                }
                let mut buf = self.pool.pop().unwrap_or_default();
                buf.clear();
                buf.extend_from_slice(&rbuf[..n]);
                if copy == 0 && v.corrupt && n > 14 {
                    // One random bit past the Ethernet header, as netem flips one in
                    // the packet.
                    let bit = 14 * 8 + self.netem[dir].rng.below(((n - 14) * 8) as u32) as usize;
                    buf[bit / 8] ^= 1 << (bit % 8);
                    st.corrupted += 1;
                }
                let now = self.now();
                let at = if v.reorder {
                    st.reordered += 1;
                    now
                } else {
                    self.netem[dir].time_to_send(&cfg, n, now)
                };
                self.seq += 1;
                self.waiting[dir] += 1;
                self.heap.push(Reverse(Pending {
                    at,
                    // Reordered frames jump the queue: they sort before any frame
                    // already due at the same time.
                    seq: if v.reorder { 0 } else { self.seq },
                    dir,
                    buf,
                }));
            }
        }
        self.stats.lock()[dir] = *st;
    }
}

/// Wait up to `timeout` for either descriptor to become readable.
fn poll2(fds: [RawFd; 2], timeout: Duration) -> [bool; 2] {
    let mut pfds = fds.map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: two valid pollfds and a timespec, all alive across the call; no signal
    // mask is passed.
    let r = unsafe { libc::ppoll(pfds.as_mut_ptr(), 2, &ts, std::ptr::null()) };
    if r <= 0 {
        return [false, false];
    }
    pfds.map(|p| p.revents & (libc::POLLIN | libc::POLLERR) != 0)
}
