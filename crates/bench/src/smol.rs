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
