//! UDP (Linux's `net/ipv4/udp.c`): `udp_sendmsg` (route, header, checksum or checksum
//! offload, fragmentation of datagrams larger than the MTU below), `udp_rcv` (checksum,
//! socket lookup by score, receive queue bounded by the receive buffer, ICMP port
//! unreachable when nobody listens), `udp_err` (ICMP errors to connected sockets), and
//! port allocation from `ip_local_port_range`.
//!
//! [`UdpSocket`] is the protocol-level socket; the BSD socket layer wraps it.

use std::collections::VecDeque;

use crate::hash::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use usnet_wire::checksum;

use super::icmp::{err_convert, icmp_send, IcmpError, PORT_UNREACH};
use super::output::{ip_local_out, ip_push_header, IpSockOpts, PmtuDisc, MAX_HEADER};
use super::route::{Dst, Flowi4, RtnType};
use crate::dev::Features;
use crate::mib::Udp;
use crate::skb::Skb;
use crate::sock::{errno, os_err, SockError, WaitQueue, WmemAccount};
use crate::trace::Stage;
use crate::{Stack, WeakStack};

/// Largest UDP payload over IPv4 (65535 − 20 − 8).
pub const MAX_PAYLOAD: usize = 65507;

/// Receive-queue overhead charged per datagram on top of its bytes.
const RX_OVERHEAD: usize = 256;

struct Inner {
    local: SocketAddrV4,
    remote: Option<SocketAddrV4>,
    rx: VecDeque<(Skb, SocketAddrV4)>,
    rmem: usize,
    rcvbuf: usize,
    opts: IpSockOpts,
    dst: Option<Arc<Dst>>,
    broadcast: bool,
    reuseaddr: bool,
    bound: bool,
    closed: bool,
    recverr: bool,
}

/// A UDP socket.
pub struct UdpSocket {
    inner: Mutex<Inner>,
    /// Woken when datagrams arrive, room frees up or an error comes in.
    pub wq: Arc<WaitQueue>,
    wmem: Arc<WmemAccount>,
    err: SockError,
    stack: WeakStack,
    nonblocking: std::sync::atomic::AtomicBool,
    rcvtimeo: Mutex<Option<Duration>>,
}

impl std::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = self.inner.lock();
        write!(f, "UdpSocket({} -> {:?})", i.local, i.remote)
    }
}

/// The UDP socket table (Linux's `udp_table`, hashed by local port).
#[derive(Default)]
pub struct UdpTable {
    ports: RwLock<HashMap<u16, Vec<Arc<UdpSocket>>>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for UdpTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UdpTable({} ports)", self.ports.read().len())
    }
}

fn stack_of(s: &WeakStack) -> io::Result<Stack> {
    s.upgrade()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "stack is gone"))
}

impl UdpTable {
    /// Every bound socket (for `ss -u`).
    pub fn sockets(&self) -> Vec<Arc<UdpSocket>> {
        self.ports.read().values().flatten().cloned().collect()
    }

    /// `udp_lib_get_port`: bind `sk` to `addr` (port 0: an ephemeral port from
    /// `ip_local_port_range`, tried from a random start).
    fn bind(
        &self,
        stack: &Stack,
        sk: &Arc<UdpSocket>,
        addr: SocketAddrV4,
    ) -> io::Result<SocketAddrV4> {
        let mut ports = self.ports.write();
        let reuse = sk.inner.lock().reuseaddr;
        let conflicts = |ports: &HashMap<u16, Vec<Arc<UdpSocket>>>, p: u16| {
            ports.get(&p).is_some_and(|v| {
                v.iter().any(|o| {
                    let oi = o.inner.lock();
                    let same_addr = oi.local.ip().is_unspecified()
                        || addr.ip().is_unspecified()
                        || oi.local.ip() == addr.ip();
                    same_addr && !(reuse && oi.reuseaddr)
                })
            })
        };
        let port = if addr.port() != 0 {
            if conflicts(&ports, addr.port()) {
                return Err(os_err(errno::EADDRINUSE));
            }
            addr.port()
        } else {
            let found = super::addr::local_ports(stack).find(|&p| !conflicts(&ports, p));
            match found {
                Some(p) => p,
                None => return Err(os_err(errno::EADDRINUSE)),
            }
        };
        let local = SocketAddrV4::new(*addr.ip(), port);
        {
            let mut i = sk.inner.lock();
            i.local = local;
            i.bound = true;
        }
        ports.entry(port).or_default().push(sk.clone());
        self.next.fetch_add(1, Ordering::Relaxed);
        Ok(local)
    }

    fn unhash(&self, sk: &Arc<UdpSocket>) {
        let port = sk.inner.lock().local.port();
        let mut ports = self.ports.write();
        if let Some(v) = ports.get_mut(&port) {
            v.retain(|s| !Arc::ptr_eq(s, sk));
            if v.is_empty() {
                ports.remove(&port);
            }
        }
    }

    /// `__udp4_lib_lookup`: the best socket for a datagram, by Linux's `compute_score`
    /// (exact local address and connected peer beat wildcards).
    fn lookup(
        &self,
        saddr: Ipv4Addr,
        sport: u16,
        daddr: Ipv4Addr,
        dport: u16,
    ) -> Option<Arc<UdpSocket>> {
        let ports = self.ports.read();
        let v = ports.get(&dport)?;
        let mut best: Option<(i32, &Arc<UdpSocket>)> = None;
        for s in v {
            let i = s.inner.lock();
            if i.closed {
                continue;
            }
            let mut score = 2;
            if !i.local.ip().is_unspecified() {
                if *i.local.ip() != daddr {
                    continue;
                }
                score += 4;
            }
            if let Some(r) = i.remote {
                if *r.ip() != saddr || r.port() != sport {
                    continue;
                }
                score += 8;
            }
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, s));
            }
        }
        best.map(|(_, s)| s.clone())
    }
}

impl UdpSocket {
    /// `socket(AF_INET, SOCK_DGRAM, 0)` on `stack`.
    pub fn new(stack: &Stack) -> Arc<UdpSocket> {
        let wq = Arc::new(WaitQueue::default());
        Arc::new(UdpSocket {
            inner: Mutex::new(Inner {
                local: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
                remote: None,
                rx: VecDeque::new(),
                rmem: 0,
                rcvbuf: stack.sysctl.rmem_default().max(256) as usize,
                opts: IpSockOpts {
                    pmtudisc: if stack.sysctl.ip_no_pmtu_disc() != 0 {
                        PmtuDisc::Dont
                    } else {
                        PmtuDisc::Want
                    },
                    ..IpSockOpts::default()
                },
                dst: None,
                broadcast: false,
                reuseaddr: false,
                bound: false,
                closed: false,
                recverr: false,
            }),
            wmem: WmemAccount::new(stack.sysctl.wmem_default().max(256) as usize, wq.clone()),
            wq,
            err: SockError::default(),
            stack: stack.downgrade(),
            nonblocking: std::sync::atomic::AtomicBool::new(false),
            rcvtimeo: Mutex::new(None),
        })
    }

    /// `bind`. `EADDRNOTAVAIL` for an address that is not ours, `EADDRINUSE` for a taken
    /// port, `EINVAL` if already bound.
    pub fn bind(self: &Arc<Self>, addr: SocketAddrV4) -> io::Result<SocketAddrV4> {
        let stack = stack_of(&self.stack)?;
        if self.inner.lock().bound {
            return Err(os_err(errno::EINVAL));
        }
        let ip = *addr.ip();
        if !ip.is_unspecified() && !ip.is_broadcast() && super::addr::is_local(&stack, ip).is_none()
        {
            return Err(os_err(errno::EADDRNOTAVAIL));
        }
        stack.ipv4.udp.bind(&stack, self, addr)
    }

    /// `connect`: fix the peer (datagrams from others are no longer delivered) and
    /// cache the route.
    pub fn connect(self: &Arc<Self>, peer: SocketAddrV4) -> io::Result<()> {
        let stack = stack_of(&self.stack)?;
        if peer.port() == 0 {
            return Err(os_err(errno::EINVAL));
        }
        let (bound, local) = {
            let i = self.inner.lock();
            (i.bound, i.local)
        };
        let dst = stack.ipv4.fib.route_output(
            &stack,
            &Flowi4 {
                daddr: Some(*peer.ip()),
                saddr: Some(*local.ip()).filter(|a| !a.is_unspecified()),
                ..Flowi4::default()
            },
        )?;
        if dst.kind == RtnType::Broadcast && !self.inner.lock().broadcast {
            return Err(os_err(errno::EACCES));
        }
        if !bound {
            stack
                .ipv4
                .udp
                .bind(&stack, self, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
        }
        let mut i = self.inner.lock();
        if i.local.ip().is_unspecified() {
            i.local = SocketAddrV4::new(dst.saddr, i.local.port());
        }
        i.remote = Some(peer);
        i.dst = Some(dst);
        Ok(())
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.inner.lock().local
    }

    /// The connected peer.
    pub fn peer_addr(&self) -> Option<SocketAddrV4> {
        self.inner.lock().remote
    }

    /// `SO_BROADCAST`.
    pub fn set_broadcast(&self, on: bool) {
        self.inner.lock().broadcast = on;
    }

    /// `SO_REUSEADDR`.
    pub fn set_reuseaddr(&self, on: bool) {
        self.inner.lock().reuseaddr = on;
    }

    /// `IP_RECVERR`: report ICMP errors on unconnected sockets too.
    pub fn set_recverr(&self, on: bool) {
        self.inner.lock().recverr = on;
    }

    /// `SO_RCVBUF` (doubled, as Linux, and capped by `rmem_max`).
    pub fn set_rcvbuf(&self, bytes: usize) {
        let max = self
            .stack
            .upgrade()
            .map(|s| s.sysctl.rmem_max() as usize)
            .unwrap_or(212_992);
        self.inner.lock().rcvbuf = (bytes.min(max) * 2).max(2304);
    }

    /// `SO_SNDBUF` (doubled, capped by `wmem_max`).
    pub fn set_sndbuf(&self, bytes: usize) {
        let max = self
            .stack
            .upgrade()
            .map(|s| s.sysctl.wmem_max() as usize)
            .unwrap_or(212_992);
        self.wmem
            .sndbuf
            .store((bytes.min(max) * 2).max(4608), Ordering::Relaxed);
    }

    /// IP-level options (TTL, TOS, PMTU discovery, priority, mark).
    pub fn set_ip_opts(&self, f: impl FnOnce(&mut IpSockOpts)) {
        f(&mut self.inner.lock().opts);
    }

    /// `O_NONBLOCK`.
    pub fn set_nonblocking(&self, on: bool) {
        self.nonblocking.store(on, Ordering::Relaxed);
    }

    /// `SO_RCVTIMEO`.
    pub fn set_read_timeout(&self, t: Option<Duration>) {
        *self.rcvtimeo.lock() = t;
    }

    /// The pending error (`SO_ERROR`), cleared.
    pub fn take_error(&self) -> Option<io::Error> {
        self.err.take()
    }

    /// Datagrams waiting.
    pub fn rx_queued(&self) -> usize {
        self.inner.lock().rx.len()
    }

    /// Whether a read would not block (data or an error waiting).
    pub fn readable(&self) -> bool {
        !self.inner.lock().rx.is_empty() || self.err.peek() != 0
    }

    /// Whether a write would not block.
    pub fn writable(&self) -> bool {
        self.wmem.has_room(2048)
    }

    /// `close`: unhash and drop queued datagrams.
    pub fn close(self: &Arc<Self>) {
        if let Ok(stack) = stack_of(&self.stack) {
            stack.ipv4.udp.unhash(self);
        }
        let mut i = self.inner.lock();
        i.closed = true;
        i.rx.clear();
        i.rmem = 0;
        drop(i);
        self.wq.wake_all();
    }

    /// `sendto` / `send` (`udp_sendmsg`). `to` None: the connected peer.
    pub fn send_to(self: &Arc<Self>, data: &[u8], to: Option<SocketAddrV4>) -> io::Result<usize> {
        self.send_vectored(&[data], to)
    }

    /// `sendmsg` with an iovec.
    pub fn send_vectored(
        self: &Arc<Self>,
        iov: &[&[u8]],
        to: Option<SocketAddrV4>,
    ) -> io::Result<usize> {
        let stack = stack_of(&self.stack)?;
        let len: usize = iov.iter().map(|b| b.len()).sum();
        if len > MAX_PAYLOAD {
            return Err(os_err(errno::EMSGSIZE));
        }
        if let Some(e) = self.err.take() {
            return Err(e);
        }
        let (dest, connected) = match to {
            Some(t) => (t, false),
            None => match self.inner.lock().remote {
                Some(r) => (r, true),
                None => return Err(os_err(errno::EDESTADDRREQ)),
            },
        };
        if dest.port() == 0 {
            return Err(os_err(errno::EINVAL));
        }
        if !self.inner.lock().bound {
            stack
                .ipv4
                .udp
                .bind(&stack, self, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
        }
        let (local, opts, broadcast_ok, cached) = {
            let i = self.inner.lock();
            (
                i.local,
                i.opts.clone(),
                i.broadcast,
                if connected { i.dst.clone() } else { None },
            )
        };
        let fib = &stack.ipv4.fib;
        let dst = match cached.filter(|d| fib.check(d)) {
            Some(d) => d,
            None => {
                let d = fib
                    .route_output(
                        &stack,
                        &Flowi4 {
                            daddr: Some(*dest.ip()),
                            saddr: Some(*local.ip()).filter(|a| !a.is_unspecified()),
                            tos: opts.tos,
                            mark: opts.mark,
                            oif: None,
                        },
                    )
                    .inspect_err(|e| {
                        if e.raw_os_error() == Some(errno::ENETUNREACH) {
                            stack.ipv4.mib.inc(crate::mib::Ip::OutNoRoutes);
                        }
                    })?;
                if connected {
                    self.inner.lock().dst = Some(d.clone());
                }
                d
            }
        };
        if dst.kind == RtnType::Broadcast && !broadcast_ok {
            return Err(os_err(errno::EACCES));
        }
        let saddr = if local.ip().is_unspecified() {
            dst.saddr
        } else {
            *local.ip()
        };
        let now = stack.now();
        let mtu = dst.mtu(now) as usize;
        let ihl = 20 + opts.options.len();
        let fits = ihl + 8 + len <= mtu;
        if !fits && matches!(opts.pmtudisc, PmtuDisc::Do | PmtuDisc::Probe) {
            return Err(os_err(errno::EMSGSIZE));
        }
        // Send buffer (sock_alloc_send_skb).
        let truesize = len + 8 + MAX_HEADER + crate::skb::SKB_OVERHEAD as usize;
        if !self.wmem.has_room(truesize) {
            let nb = self.nonblocking.load(Ordering::Relaxed);
            if nb || !self.wq.wait_until(None, || self.wmem.has_room(truesize)) {
                stack.ipv4.udp_mib.inc(Udp::SndbufErrors);
                return Err(os_err(errno::EAGAIN));
            }
        }
        let mut skb = Skb::alloc(len + 8, MAX_HEADER);
        stack.trace.hit(Stage::UdpSendmsg, skb.trace_id, len, now);
        {
            let d = skb.put(len + 8);
            let mut off = 8;
            for b in iov {
                d[off..off + b.len()].copy_from_slice(b);
                off += b.len();
            }
            d[0..2].copy_from_slice(&local.port().to_be_bytes());
            d[2..4].copy_from_slice(&dest.port().to_be_bytes());
            d[4..6].copy_from_slice(&((len + 8) as u16).to_be_bytes());
            d[6..8].copy_from_slice(&[0, 0]);
        }
        if fits && dst.dev.features().contains(Features::IP_CSUM) {
            crate::dev::gso::set_partial_csum(&mut skb, 0, 17, saddr, *dest.ip(), len + 8);
        } else {
            let mut acc = checksum::Accumulator::with_initial(checksum::pseudo_header_v4(
                &saddr,
                dest.ip(),
                17,
                (len + 8) as u32,
            ));
            acc.add(skb.data());
            let mut c = acc.finish();
            if c == 0 {
                c = 0xffff;
            }
            skb.data_mut()[6..8].copy_from_slice(&c.to_be_bytes());
        }
        skb.set_owner(self.wmem.clone());
        self.wmem.charge(skb.truesize() as usize);
        let mut opts = opts;
        if !fits {
            opts.pmtudisc = PmtuDisc::Dont; // fragments go without DF
        }
        ip_push_header(&stack, &dst, &mut skb, saddr, *dest.ip(), 17, &opts);
        match ip_local_out(&stack, &dst, skb) {
            Ok(()) => {
                stack.ipv4.udp_mib.inc(Udp::OutDatagrams);
                Ok(len)
            }
            Err(e) => {
                if e.raw_os_error() == Some(errno::ENOBUFS) {
                    stack.ipv4.udp_mib.inc(Udp::SndbufErrors);
                }
                Err(e)
            }
        }
    }

    /// `recvfrom`: copy the next datagram into `buf` (the rest of a longer one is
    /// discarded, as Linux). Blocks unless non-blocking (`EAGAIN`); a pending ICMP error
    /// is returned first.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddrV4)> {
        self.recv_inner(buf, false)
    }

    /// `recvfrom` with `MSG_PEEK`: leave the datagram queued.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddrV4)> {
        self.recv_inner(buf, true)
    }

    /// `recvmsg` with flags: `MSG_PEEK`, `MSG_DONTWAIT` (as `crate::tcp::msg`).
    pub fn recv_flags(&self, buf: &mut [u8], flags: u32) -> io::Result<(usize, SocketAddrV4)> {
        let peek = flags & crate::tcp::msg::PEEK != 0;
        if flags & crate::tcp::msg::DONTWAIT != 0 {
            return match self.try_recv(buf, peek)? {
                Some(r) => Ok(r),
                None => Err(os_err(errno::EAGAIN)),
            };
        }
        self.recv_inner(buf, peek)
    }

    /// Whether `O_NONBLOCK` is set.
    pub fn is_nonblocking(&self) -> bool {
        self.nonblocking.load(Ordering::Relaxed)
    }

    fn recv_inner(&self, buf: &mut [u8], peek: bool) -> io::Result<(usize, SocketAddrV4)> {
        loop {
            if let Some(r) = self.try_recv(buf, peek)? {
                return Ok(r);
            }
            if self.nonblocking.load(Ordering::Relaxed) {
                return Err(os_err(errno::EAGAIN));
            }
            let t = *self.rcvtimeo.lock();
            if !self
                .wq
                .wait_until(t, || self.readable() || self.inner.lock().closed)
            {
                return Err(os_err(errno::EAGAIN));
            }
            if self.inner.lock().closed {
                return Err(os_err(errno::EINVAL));
            }
        }
    }

    fn try_recv(&self, buf: &mut [u8], peek: bool) -> io::Result<Option<(usize, SocketAddrV4)>> {
        let mut i = self.inner.lock();
        let Some((skb, from)) = i.rx.front() else {
            drop(i);
            return match self.err.take() {
                Some(e) => Err(e),
                None => Ok(None),
            };
        };
        let n = skb.len().min(buf.len());
        skb.copy_bits(0, &mut buf[..n]);
        let from = *from;
        if !peek {
            if let Some((skb, _)) = i.rx.pop_front() {
                i.rmem = i.rmem.saturating_sub(skb.len() + RX_OVERHEAD);
            }
        }
        Ok(Some((n, from)))
    }
}

/// `udp_rcv`: `skb.data()` is the UDP header; `saddr`/`daddr` from the IP header.
pub fn udp_rcv(stack: &Stack, mut skb: Skb, saddr: Ipv4Addr, daddr: Ipv4Addr, broadcast: bool) {
    stack
        .trace
        .hit(Stage::UdpRcv, skb.trace_id, skb.len(), stack.now());
    let mib = &stack.ipv4.udp_mib;
    if !skb.may_pull(8) {
        mib.inc(Udp::InErrors);
        return;
    }
    let (sport, dport, ulen, check) = {
        let d = skb.data();
        (
            u16::from_be_bytes([d[0], d[1]]),
            u16::from_be_bytes([d[2], d[3]]),
            usize::from(u16::from_be_bytes([d[4], d[5]])),
            u16::from_be_bytes([d[6], d[7]]),
        )
    };
    if ulen < 8 || ulen > skb.len() {
        mib.inc(Udp::InErrors);
        return;
    }
    skb.trim(ulen);
    if check != 0 && !skb.ip_summed.is_verified() {
        let mut acc = checksum::Accumulator::with_initial(checksum::pseudo_header_v4(
            &saddr,
            &daddr,
            17,
            ulen as u32,
        ));
        for c in skb.chunks() {
            acc.add(c);
        }
        if acc.finish() != 0 {
            mib.inc(Udp::InCsumErrors);
            mib.inc(Udp::InErrors);
            return;
        }
    }
    let Some(sk) = stack.ipv4.udp.lookup(saddr, sport, daddr, dport) else {
        if broadcast || daddr.is_multicast() {
            mib.inc(Udp::IgnoredMulti);
            return;
        }
        mib.inc(Udp::NoPorts);
        // Quote the datagram from its IP header.
        let nh = skb.network_header_offset().unwrap_or(skb.data_offset());
        let hl = skb.data_offset() - nh;
        skb.push(hl);
        icmp_send(stack, &skb, super::icmp::DEST_UNREACH, PORT_UNREACH, 0);
        return;
    };
    skb.pull(8);
    let size = skb.len() + RX_OVERHEAD;
    {
        let mut i = sk.inner.lock();
        if i.rmem + size > i.rcvbuf {
            drop(i);
            mib.inc(Udp::RcvbufErrors);
            mib.inc(Udp::InErrors);
            return;
        }
        i.rmem += size;
        i.rx.push_back((skb, SocketAddrV4::new(saddr, sport)));
    }
    mib.inc(Udp::InDatagrams);
    sk.wq.wake_all();
}

/// `__udp4_lib_err`: an ICMP error about a datagram we sent. A connected socket (or one
/// with `IP_RECVERR`) gets the errno; others ignore it, as Linux.
pub fn udp_err(stack: &Stack, e: &IcmpError) {
    let Some(sk) = stack.ipv4.udp.lookup(e.daddr, e.dport, e.saddr, e.sport) else {
        stack.ipv4.icmp_mib.inc(crate::mib::Icmp::InErrors);
        return;
    };
    let (err, mut fatal) = err_convert(e.kind, e.code);
    let (connected, recverr, pmtudisc) = {
        let i = sk.inner.lock();
        (i.remote.is_some(), i.recverr, i.opts.pmtudisc)
    };
    if e.kind == super::icmp::DEST_UNREACH && e.code == super::icmp::FRAG_NEEDED {
        // Path MTU discovery: the route already learned the MTU; the socket hears of
        // it unless it does not fragment-check at all.
        if pmtudisc == PmtuDisc::Dont {
            return;
        }
        fatal = true;
    }
    if !recverr && (!fatal || !connected) {
        return;
    }
    sk.err.set(err);
    sk.wq.wake_all();
}
