//! ICMP echo sockets (Linux's `net/ipv4/ping.c`, `socket(AF_INET, SOCK_DGRAM,
//! IPPROTO_ICMP)`): what `ping` uses without raw sockets. Each socket owns an echo
//! identifier; replies carrying it are queued to the socket.

use std::collections::VecDeque;

use crate::hash::HashMap;
use std::io;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use usnet_wire::checksum;

use super::icmp::{err_convert, IcmpError, ECHO};
use super::output::{ip_local_out, ip_push_header, IpSockOpts, MAX_HEADER};
use super::route::Flowi4;
use crate::skb::Skb;
use crate::sock::{errno, os_err, SockError, WaitQueue};
use crate::time::Instant;
use crate::{Stack, WeakStack};

/// A received echo reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EchoReply {
    /// Who answered.
    pub from: Ipv4Addr,
    /// Echo sequence number.
    pub seq: u16,
    /// Payload (after the 8-byte ICMP header).
    pub data: Vec<u8>,
    /// TTL of the reply.
    pub ttl: u8,
    /// When it arrived (the stack's clock).
    pub at: Instant,
}

/// The table of echo sockets by identifier.
#[derive(Default)]
pub struct PingTable {
    socks: Mutex<HashMap<u16, Weak<PingSocket>>>,
}

impl std::fmt::Debug for PingTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PingTable({})", self.socks.lock().len())
    }
}

/// An ICMP echo socket.
pub struct PingSocket {
    ident: u16,
    rx: Mutex<VecDeque<EchoReply>>,
    /// Woken on replies and errors.
    pub wq: Arc<WaitQueue>,
    err: SockError,
    opts: Mutex<IpSockOpts>,
    stack: WeakStack,
    nonblocking: AtomicBool,
}

impl std::fmt::Debug for PingSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PingSocket(id {})", self.ident)
    }
}

impl PingSocket {
    /// A new echo socket with a free identifier.
    pub fn new(stack: &Stack) -> io::Result<Arc<PingSocket>> {
        let mut t = stack.ipv4.ping.socks.lock();
        t.retain(|_, w| w.strong_count() > 0);
        let start = stack.rng.lock().next_u32() as u16;
        let ident = (0..=u16::MAX)
            .map(|i| start.wrapping_add(i))
            .find(|id| !t.contains_key(id))
            .ok_or_else(|| os_err(errno::EADDRINUSE))?;
        let s = Arc::new(PingSocket {
            ident,
            rx: Mutex::new(VecDeque::new()),
            wq: Arc::new(WaitQueue::default()),
            err: SockError::default(),
            opts: Mutex::new(IpSockOpts::default()),
            stack: stack.downgrade(),
            nonblocking: AtomicBool::new(false),
        });
        t.insert(ident, Arc::downgrade(&s));
        Ok(s)
    }

    /// The echo identifier.
    pub fn ident(&self) -> u16 {
        self.ident
    }

    /// `IP_TTL`.
    pub fn set_ttl(&self, ttl: u8) {
        self.opts.lock().ttl = Some(ttl);
    }

    /// `O_NONBLOCK`.
    pub fn set_nonblocking(&self, on: bool) {
        self.nonblocking.store(on, Ordering::Relaxed);
    }

    /// Send an echo request with `seq` and `payload` to `dst`.
    pub fn send_echo(&self, dst: Ipv4Addr, seq: u16, payload: &[u8]) -> io::Result<()> {
        let stack = self.stack.upgrade().ok_or_else(|| os_err(errno::EINVAL))?;
        if let Some(e) = self.err.take() {
            return Err(e);
        }
        let d = stack.ipv4.fib.route_output(
            &stack,
            &Flowi4 {
                daddr: Some(dst),
                ..Flowi4::default()
            },
        )?;
        let mut skb = Skb::alloc(8 + payload.len(), MAX_HEADER);
        {
            let h = skb.put(8 + payload.len());
            h[0] = ECHO;
            h[1] = 0;
            h[2..4].copy_from_slice(&[0, 0]);
            h[4..6].copy_from_slice(&self.ident.to_be_bytes());
            h[6..8].copy_from_slice(&seq.to_be_bytes());
            h[8..].copy_from_slice(payload);
            let c = checksum::checksum(h);
            h[2..4].copy_from_slice(&c.to_be_bytes());
        }
        let opts = self.opts.lock().clone();
        ip_push_header(&stack, &d, &mut skb, d.saddr, dst, 1, &opts);
        stack.ipv4.icmp_mib.inc(crate::mib::Icmp::OutMsgs);
        stack.ipv4.icmp_mib.inc(crate::mib::Icmp::OutEchos);
        ip_local_out(&stack, &d, skb)
    }

    /// Take the next reply without blocking.
    pub fn try_recv(&self) -> io::Result<Option<EchoReply>> {
        if let Some(r) = self.rx.lock().pop_front() {
            return Ok(Some(r));
        }
        match self.err.take() {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    /// Wait for the next reply (blocking; `EAGAIN` after `timeout` or when non-blocking).
    pub fn recv(&self, timeout: Option<Duration>) -> io::Result<EchoReply> {
        loop {
            if let Some(r) = self.try_recv()? {
                return Ok(r);
            }
            if self.nonblocking.load(Ordering::Relaxed)
                || !self.wq.wait_until(timeout, || {
                    !self.rx.lock().is_empty() || self.err.peek() != 0
                })
            {
                return Err(os_err(errno::EAGAIN));
            }
        }
    }

    /// Replies waiting.
    pub fn queued(&self) -> usize {
        self.rx.lock().len()
    }
}

/// `ping_rcv`: an echo reply for one of our sockets.
pub fn ping_rcv(stack: &Stack, skb: Skb, from: Ipv4Addr) {
    let d = skb.data();
    if d.len() < 8 {
        return;
    }
    let ident = u16::from_be_bytes([d[4], d[5]]);
    let seq = u16::from_be_bytes([d[6], d[7]]);
    let Some(sk) = stack
        .ipv4
        .ping
        .socks
        .lock()
        .get(&ident)
        .and_then(|w| w.upgrade())
    else {
        return;
    };
    let ttl = skb.network_header().get(8).copied().unwrap_or(0);
    let mut data = vec![0u8; skb.len() - 8];
    skb.copy_bits(8, &mut data);
    let mut rx = sk.rx.lock();
    if rx.len() < 1024 {
        rx.push_back(EchoReply {
            from,
            seq,
            data,
            ttl,
            at: stack.now(),
        });
    }
    drop(rx);
    sk.wq.wake_all();
}

/// `ping_err`: an ICMP error about an echo request of ours.
pub fn ping_err(stack: &Stack, e: &IcmpError, ident: u16) {
    let Some(sk) = stack
        .ipv4
        .ping
        .socks
        .lock()
        .get(&ident)
        .and_then(|w| w.upgrade())
    else {
        return;
    };
    let (err, _) = err_convert(e.kind, e.code);
    sk.err.set(err);
    sk.wq.wake_all();
}
