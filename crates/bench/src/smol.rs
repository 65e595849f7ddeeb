//! smoltcp 0.14, the peer: two interfaces in this process joined by an in-memory
//! Ethernet link, polled by one thread, with its best settings for bulk transfer (CUBIC,
//! checksums left to "hardware" as usnet's vnic does, large socket buffers, window
//! scaling). smoltcp has no TSO or GRO: every segment is a frame.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

/// Frames in flight each way, and spare buffers (recycled, so the link allocates
/// nothing in steady state, as usnet's does not).
#[derive(Default)]
struct Link {
    /// Frames each way, with the (wall-clock) time they may be delivered.
    queues: [VecDeque<(std::time::Instant, Vec<u8>)>; 2],
    spare: Vec<Vec<u8>>,
    /// Impairment: loss probability and one-way delay (as netem's).
    loss: f64,
    delay: std::time::Duration,
    rng: u64,
}

impl Link {
    /// xorshift64: the same losses for the same seed.
    fn lose(&mut self) -> bool {
        if self.loss <= 0.0 {
            return false;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        ((self.rng >> 11) as f64 / (1u64 << 53) as f64) < self.loss
    }
}

/// One end of the link: receives from `queues[side]`, sends to the other.
struct End {
    link: Rc<RefCell<Link>>,
    side: usize,
    mtu: usize,
}

struct Rx {
    buf: Vec<u8>,
    link: Rc<RefCell<Link>>,
}

struct Tx {
    link: Rc<RefCell<Link>>,
    to: usize,
}

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let r = f(&self.buf);
        self.link.borrow_mut().spare.push(self.buf);
        r
    }
}

impl phy::TxToken for Tx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = self.link.borrow_mut().spare.pop().unwrap_or_default();
        buf.resize(len, 0);
        let r = f(&mut buf);
        let mut l = self.link.borrow_mut();
        if l.lose() {
            l.spare.push(buf);
        } else {
            let at = std::time::Instant::now() + l.delay;
            l.queues[self.to].push_back((at, buf));
        }
        r
    }
}

impl Device for End {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx;

    fn receive(&mut self, _: Instant) -> Option<(Rx, Tx)> {
        let mut l = self.link.borrow_mut();
        let due = l.queues[self.side]
            .front()
            .is_some_and(|(at, _)| *at <= std::time::Instant::now());
        if !due {
            return None;
        }
        let (_, buf) = l.queues[self.side].pop_front()?;
        drop(l);
        Some((
            Rx {
                buf,
                link: self.link.clone(),
            },
            Tx {
                link: self.link.clone(),
                to: 1 - self.side,
            },
        ))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx> {
        Some(Tx {
            link: self.link.clone(),
            to: 1 - self.side,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = self.mtu + 14;
        c.checksum = ChecksumCapabilities::ignored();
        c
    }
}

/// A TCP socket with `buf`-byte buffers, CUBIC, no Nagle.
fn socket(buf: usize) -> tcp::Socket<'static> {
    let mut s = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; buf]),
        tcp::SocketBuffer::new(vec![0; buf]),
    );
    s.set_congestion_control(tcp::CongestionControl::Cubic);
    s.set_nagle_enabled(false);
    s
}

/// Two hosts and a connection between them, established.
pub struct Pair {
    ends: [End; 2],
    ifaces: [Interface; 2],
    /// Each interface has its own sockets: [client's host, server's host].
    sockets: [SocketSet<'static>; 2],
    client: SocketHandle,
    server: SocketHandle,
    start: std::time::Instant,
}

fn now(start: std::time::Instant) -> Instant {
    Instant::from_micros(start.elapsed().as_micros() as i64)
}

impl Pair {
    /// Hosts 10.0.0.1 and 10.0.0.2 with `mtu`, socket buffers of `buf` bytes each, and
    /// an established connection 1 → 2.
    pub fn new(mtu: usize, buf: usize) -> Pair {
        Pair::impaired(mtu, buf, 0.0, std::time::Duration::ZERO)
    }

    /// As [`Pair::new`], with random `loss` (probability) and a one-way `delay` on the
    /// link both ways, in real time (smoltcp runs on the wall clock).
    pub fn impaired(mtu: usize, buf: usize, loss: f64, delay: std::time::Duration) -> Pair {
        let link = Rc::new(RefCell::new(Link {
            loss,
            delay,
            rng: 0x9e37_79b9_7f4a_7c15,
            ..Link::default()
        }));
        let start = std::time::Instant::now();
        let mut ends = [0, 1].map(|side| End {
            link: link.clone(),
            side,
            mtu,
        });
        let mut ifaces = [0u8, 1].map(|i| {
            let mac = EthernetAddress([0x02, 0, 0, 0, 0, i + 1]);
            let mut cfg = Config::new(HardwareAddress::Ethernet(mac));
            cfg.random_seed = 7 + u64::from(i);
            let mut iface = Interface::new(cfg, &mut ends[usize::from(i)], now(start));
            iface.update_ip_addrs(|a| {
                let _ = a.push(IpCidr::new(IpAddress::v4(10, 0, 0, i + 1), 24));
            });
            iface
        });
        let mut sockets = [SocketSet::new(Vec::new()), SocketSet::new(Vec::new())];
        let server = sockets[1].add(socket(buf));
        let client = sockets[0].add(socket(buf));
        sockets[1]
            .get_mut::<tcp::Socket>(server)
            .listen(5001)
            .unwrap();
        let cx = ifaces[0].context();
        sockets[0]
            .get_mut::<tcp::Socket>(client)
            .connect(cx, (IpAddress::v4(10, 0, 0, 2), 5001), 49152)
            .unwrap();
        let mut p = Pair {
            ends,
            ifaces,
            sockets,
            client,
            server,
            start,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            p.poll();
            if p.sockets[0].get_mut::<tcp::Socket>(p.client).may_send()
                && p.sockets[1].get_mut::<tcp::Socket>(p.server).may_recv()
            {
                break;
            }
        }
        p
    }

    fn poll(&mut self) {
        let t = now(self.start);
        let (a, b) = self.ends.split_at_mut(1);
        self.ifaces[0].poll(t, &mut a[0], &mut self.sockets[0]);
        self.ifaces[1].poll(t, &mut b[0], &mut self.sockets[1]);
    }

    /// Move `bytes` from client to server; returns the wall-clock seconds it took (an
    /// error if the transfer stalls).
    pub fn bulk(&mut self, bytes: u64) -> Result<f64, String> {
        let chunk = vec![0x5au8; 64 * 1024];
        let mut rbuf = vec![0u8; 64 * 1024];
        let (mut sent, mut got) = (0u64, 0u64);
        let t0 = std::time::Instant::now();
        let mut progress = std::time::Instant::now();
        while got < bytes {
            let before = got;
            {
                let c = self.sockets[0].get_mut::<tcp::Socket>(self.client);
                while sent < bytes && c.can_send() {
                    let n = ((bytes - sent) as usize).min(chunk.len());
                    match c.send_slice(&chunk[..n]) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => sent += k as u64,
                    }
                }
            }
            self.poll();
            let s = self.sockets[1].get_mut::<tcp::Socket>(self.server);
            while s.can_recv() {
                match s.recv_slice(&mut rbuf) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => got += k as u64,
                }
            }
            if got != before {
                progress = std::time::Instant::now();
            } else if progress.elapsed() > std::time::Duration::from_secs(30) {
                return Err(format!(
                    "smoltcp made no progress for 30 s after {got} of {bytes} bytes"
                ));
            }
        }
        Ok(t0.elapsed().as_secs_f64())
    }

    /// `n` one-byte request/response exchanges; returns transactions per second.
    pub fn rr(&mut self, n: u32) -> f64 {
        let mut b = [0u8; 1];
        let t0 = std::time::Instant::now();
        for _ in 0..n {
            let _ = self.sockets[0]
                .get_mut::<tcp::Socket>(self.client)
                .send_slice(&[1]);
            loop {
                self.poll();
                let s = self.sockets[1].get_mut::<tcp::Socket>(self.server);
                if s.can_recv() {
                    let _ = s.recv_slice(&mut b);
                    let _ = s.send_slice(&b);
                    break;
                }
            }
            loop {
                self.poll();
                let c = self.sockets[0].get_mut::<tcp::Socket>(self.client);
                if c.can_recv() {
                    let _ = c.recv_slice(&mut b);
                    break;
                }
            }
        }
        f64::from(n) / t0.elapsed().as_secs_f64()
    }
}

impl Pair {
    /// Connections per second: a listening socket on host 2, a connecting one on host
    /// 1, both closed once established and dropped when the close is done (the
    /// client's TIME_WAIT included), `n` times.
    pub fn conn_rate(&mut self, n: u32) -> Result<f64, String> {
        let t0 = std::time::Instant::now();
        for i in 0..n {
            let srv = self.sockets[1].add(socket(4096));
            let cli = self.sockets[0].add(socket(4096));
            self.sockets[1]
                .get_mut::<tcp::Socket>(srv)
                .listen(6000)
                .map_err(|e| format!("listen: {e}"))?;
            let cx = self.ifaces[0].context();
            self.sockets[0]
                .get_mut::<tcp::Socket>(cli)
                .connect(
                    cx,
                    (IpAddress::v4(10, 0, 0, 2), 6000),
                    20_000 + (i % 40_000) as u16,
                )
                .map_err(|e| format!("connect: {e}"))?;
            let state = |p: &mut Pair| {
                (
                    p.sockets[0].get_mut::<tcp::Socket>(cli).state(),
                    p.sockets[1].get_mut::<tcp::Socket>(srv).state(),
                )
            };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while state(self) != (tcp::State::Established, tcp::State::Established) {
                self.poll();
                if std::time::Instant::now() > deadline {
                    return Err(format!("connection {i} not established: {:?}", state(self)));
                }
            }
            self.sockets[0].get_mut::<tcp::Socket>(cli).close();
            self.sockets[1].get_mut::<tcp::Socket>(srv).close();
            loop {
                self.poll();
                let (c, s) = state(self);
                // Both closed at once: either side may end in TIME_WAIT.
                let done = |x| matches!(x, tcp::State::TimeWait | tcp::State::Closed);
                if done(c) && done(s) {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    return Err(format!("connection {i} did not close: {:?}", (c, s)));
                }
            }
            self.sockets[0].remove(cli);
            self.sockets[1].remove(srv);
        }
        Ok(f64::from(n) / t0.elapsed().as_secs_f64())
    }
}

/// smoltcp's memory per socket without buffers: its TCP socket object and its slot in
/// a `SocketSet` (smoltcp allocates nothing else per connection; a connection needs a
/// socket at each end).
pub fn idle_socket_bytes() -> f64 {
    (std::mem::size_of::<tcp::Socket<'static>>()
        + std::mem::size_of::<smoltcp::iface::SocketStorage<'static>>()) as f64
}

/// smoltcp's device over a TAP descriptor (no offloads: a frame per `read`/`write`,
/// as smoltcp's own `TunTapInterface` does), with one receive and one transmit buffer.
struct TapDev {
    tap: std::sync::Arc<usnet::drivers::tap::Tap>,
    rbuf: Vec<u8>,
    tbuf: Vec<u8>,
}

struct TapRx<'a>(&'a [u8]);

struct TapTx<'a> {
    tap: &'a usnet::drivers::tap::Tap,
    buf: &'a mut Vec<u8>,
}

impl phy::RxToken for TapRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl phy::TxToken for TapTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        use usnet::drivers::relay::FramePort;
        self.buf.resize(len, 0);
        let r = f(self.buf);
        let _ = self.tap.send_frame(self.buf);
        r
    }
}

impl Device for TapDev {
    type RxToken<'a> = TapRx<'a>;
    type TxToken<'a> = TapTx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(TapRx<'_>, TapTx<'_>)> {
        use usnet::drivers::relay::FramePort;
        let TapDev { tap, rbuf, tbuf } = self;
        let n = tap.recv_frame(rbuf).ok()?;
        Some((TapRx(&rbuf[..n.min(rbuf.len())]), TapTx { tap, buf: tbuf }))
    }

    fn transmit(&mut self, _: Instant) -> Option<TapTx<'_>> {
        Some(TapTx {
            tap: &self.tap,
            buf: &mut self.tbuf,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = 1514;
        c
    }
}

/// smoltcp at 10.77.1.2 on a TAP whose kernel side (10.77.1.1) is in a namespace,
/// polled in real time by the calling thread, sleeping in `poll(2)` when idle.
pub struct TapHost {
    dev: TapDev,
    iface: Interface,
    sockets: SocketSet<'static>,
    start: std::time::Instant,
    port: u16,
}

impl TapHost {
    /// smoltcp on `tap` (opened without offloads).
    pub fn new(tap: std::sync::Arc<usnet::drivers::tap::Tap>) -> TapHost {
        let start = std::time::Instant::now();
        let mut dev = TapDev {
            tap,
            rbuf: vec![0; 65536],
            tbuf: Vec::with_capacity(2048),
        };
        let mut cfg = Config::new(HardwareAddress::Ethernet(EthernetAddress([
            0x02, 0x73, 0x6d, 0x6f, 0x6c, 0x01,
        ])));
        cfg.random_seed = 11;
        let mut iface = Interface::new(cfg, &mut dev, now(start));
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::v4(10, 77, 1, 2), 24));
        });
        TapHost {
            dev,
            iface,
            sockets: SocketSet::new(Vec::new()),
            start,
            port: 7000,
        }
    }

    /// Poll the interface; then, if `idle`, sleep until a frame arrives or smoltcp's
    /// next timer.
    fn poll(&mut self, idle: bool) {
        let t = now(self.start);
        self.iface.poll(t, &mut self.dev, &mut self.sockets);
        if idle {
            let ms = self
                .iface
                .poll_delay(now(self.start), &self.sockets)
                .map_or(10, |d| d.total_millis().min(10) as i32);
            wait_readable(&*self.dev.tap, ms);
        }
    }

    /// Connect to `kernel:port`, send `bytes`, close, and poll until the kernel has
    /// acknowledged everything.
    pub fn send(&mut self, port: u16, bytes: u64) -> Result<(), String> {
        let h = self.sockets.add(socket(4 << 20));
        self.port += 1;
        let cx = self.iface.context();
        self.sockets
            .get_mut::<tcp::Socket>(h)
            .connect(cx, (IpAddress::v4(10, 77, 1, 1), port), self.port)
            .map_err(|e| format!("smoltcp connect: {e}"))?;
        let chunk = vec![0x5au8; 64 * 1024];
        let mut sent = 0u64;
        let mut progress = std::time::Instant::now();
        loop {
            let s = self.sockets.get_mut::<tcp::Socket>(h);
            let before = sent;
            while sent < bytes && s.can_send() {
                let n = ((bytes - sent) as usize).min(chunk.len());
                match s.send_slice(&chunk[..n]) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => sent += k as u64,
                }
            }
            if sent == bytes && s.send_queue() == 0 {
                s.close();
            }
            if matches!(
                s.state(),
                tcp::State::FinWait2 | tcp::State::TimeWait | tcp::State::Closed
            ) && sent == bytes
            {
                break;
            }
            let idle = sent == before && (sent == bytes || !s.can_send());
            if sent != before {
                progress = std::time::Instant::now();
            } else if progress.elapsed() > std::time::Duration::from_secs(30) {
                return Err(format!("smoltcp stalled after {sent} of {bytes} bytes"));
            }
            self.poll(idle);
        }
        self.sockets.remove(h);
        Ok(())
    }

    /// Listen on `port`, receive `bytes` from one connection (while `done` is false),
    /// close; returns the seconds from the first byte to the last.
    pub fn recv(&mut self, port: u16, bytes: u64, done: impl Fn() -> bool) -> Result<f64, String> {
        let h = self.sockets.add(socket(4 << 20));
        self.sockets
            .get_mut::<tcp::Socket>(h)
            .listen(port)
            .map_err(|e| format!("smoltcp listen: {e}"))?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0u64;
        let mut t0 = None;
        let mut progress = std::time::Instant::now();
        let mut secs = 0.0;
        loop {
            let s = self.sockets.get_mut::<tcp::Socket>(h);
            let before = got;
            while s.can_recv() {
                match s.recv_slice(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => {
                        t0.get_or_insert_with(std::time::Instant::now);
                        got += k as u64;
                    }
                }
            }
            if got == bytes && secs == 0.0 {
                secs = t0.map_or(0.0, |t: std::time::Instant| t.elapsed().as_secs_f64());
                s.close();
            }
            if got == bytes && (done() || s.state() == tcp::State::Closed) {
                break;
            }
            if got != before {
                progress = std::time::Instant::now();
            } else if progress.elapsed() > std::time::Duration::from_secs(30) {
                return Err(format!("smoltcp stalled after {got} of {bytes} bytes"));
            }
            self.poll(got == before);
        }
        self.sockets.remove(h);
        Ok(secs)
    }
}

/// Sleep until `fd` is readable or `ms` milliseconds pass.
#[allow(unsafe_code)]
fn wait_readable(fd: &impl std::os::fd::AsRawFd, ms: i32) {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, alive across the call.
    unsafe { libc::poll(&mut p, 1, ms) };
}
