//! `inet_stream_ops` and `inet_dgram_ops`: the protocol-agnostic operations of the
//! socket layer, dispatched to TCP (`tcp_prot`) and UDP (`udp_prot`).

use std::io;
use std::net::{Shutdown, SocketAddrV4};
use std::sync::Arc;

use super::{poll, Opt, OptValue, ProtoOps, SockType};
use crate::ipv4::udp::UdpSocket;
use crate::sock::{errno, os_err, WaitQueue};
use crate::tcp::{msg, SockOpt, TcpSock, TcpState};

/// A TCP socket behind the socket layer (`inet_stream_ops` → `tcp_prot`).
pub struct InetStream(pub Arc<TcpSock>);

/// A UDP socket behind the socket layer (`inet_dgram_ops` → `udp_prot`).
pub struct InetDgram(pub Arc<UdpSocket>);

impl ProtoOps for InetStream {
    fn name(&self) -> &'static str {
        "inet_stream_ops"
    }

    fn sock_type(&self) -> SockType {
        SockType::Stream
    }

    fn bind(&self, addr: SocketAddrV4) -> io::Result<()> {
        self.0.bind(addr).map(|_| ())
    }

    fn connect(&self, addr: SocketAddrV4) -> io::Result<()> {
        self.0.connect(addr)
    }

    fn listen(&self, backlog: usize) -> io::Result<()> {
        self.0.listen(backlog)
    }

    fn accept(&self) -> io::Result<(Arc<dyn ProtoOps>, SocketAddrV4)> {
        let child = self.0.accept()?;
        let peer = child.peer_addr()?;
        Ok((Arc::new(InetStream(child)), peer))
    }

    fn sendmsg(&self, iov: &[&[u8]], flags: u32, to: Option<SocketAddrV4>) -> io::Result<usize> {
        if to.is_some() {
            // sendto on a connected stream ignores the address only when it matches;
            // Linux returns EISCONN for TCP with an address.
            return Err(os_err(errno::EISCONN));
        }
        self.0.send_flags(iov, flags | msg::NOSIGNAL)
    }

    fn send_pages(&self, pages: &[bytes::Bytes], flags: u32) -> io::Result<usize> {
        self.0.send_pages(pages, flags | msg::NOSIGNAL)
    }

    fn recvmsg(&self, buf: &mut [u8], flags: u32) -> io::Result<(usize, Option<SocketAddrV4>)> {
        let n = self.0.recv_flags(buf, flags)?;
        Ok((n, None))
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.0.shutdown(how)
    }

    fn release(&self) {
        self.0.close();
    }

    fn getsockname(&self) -> io::Result<SocketAddrV4> {
        Ok(self.0.local_addr())
    }

    fn getpeername(&self) -> io::Result<SocketAddrV4> {
        self.0.peer_addr()
    }

    fn setsockopt(&self, opt: Opt) -> io::Result<()> {
        let o = match opt {
            Opt::NoDelay(v) => SockOpt::NoDelay(v),
            Opt::Cork(v) => SockOpt::Cork(v),
            Opt::MaxSeg(v) => SockOpt::MaxSeg(v),
            Opt::SndBuf(v) => SockOpt::SndBuf(v),
            Opt::RcvBuf(v) => SockOpt::RcvBuf(v),
            Opt::ReuseAddr(v) => SockOpt::ReuseAddr(v),
            Opt::ReusePort(v) => SockOpt::ReusePort(v),
            Opt::KeepAlive(v) => SockOpt::KeepAlive(v),
            Opt::Linger(v) => SockOpt::Linger(v),
            Opt::SndTimeo(t) => {
                self.0.set_write_timeout(t);
                return Ok(());
            }
            Opt::RcvTimeo(t) => {
                self.0.set_read_timeout(t);
                return Ok(());
            }
            Opt::Tcp(o) => o,
            Opt::RcvLowat(v) => SockOpt::RcvLowat(v),
            Opt::Broadcast(_) => return Err(os_err(errno::ENOPROTOOPT)),
        };
        self.0.set_opt(o)
    }

    fn getsockopt(&self, name: &str) -> io::Result<OptValue> {
        let info = self.0.info();
        Ok(match name {
            "SO_ERROR" => OptValue::Int(
                self.0
                    .take_error()
                    .and_then(|e| e.raw_os_error())
                    .unwrap_or(0) as i64,
            ),
            "SO_TYPE" => OptValue::Int(1),
            "SO_SNDBUF" => OptValue::Int(info.sndbuf as i64),
            "SO_RCVBUF" => OptValue::Int(info.rcvbuf as i64),
            "SO_RCVLOWAT" => OptValue::Int(self.0.with_tcb(|t| i64::from(t.rcvlowat))),
            "TCP_NOTSENT_LOWAT" => OptValue::Int(self.0.with_tcb(|t| i64::from(t.notsent_lowat))),
            "TCP_NODELAY" => OptValue::Int(self.0.with_tcb(|t| i64::from(t.nonagle & 1 != 0))),
            "TCP_MAXSEG" => OptValue::Int(i64::from(info.snd_mss)),
            "TCP_CONGESTION" => OptValue::Str(info.cc.to_string()),
            "TCP_INFO" => OptValue::TcpInfo(Box::new(info)),
            _ => return Err(os_err(errno::ENOPROTOOPT)),
        })
    }

    fn set_nonblocking(&self, on: bool) {
        self.0.set_nonblocking(on);
    }

    fn poll(&self) -> u32 {
        let mut m = 0;
        let state = self.0.state();
        if self.0.readable() {
            m |= poll::POLLIN | poll::POLLRDNORM;
        }
        let connecting = matches!(state, TcpState::SynSent | TcpState::SynRecv);
        let listening = state == TcpState::Listen;
        if !connecting && !listening && self.0.writable() {
            m |= poll::POLLOUT | poll::POLLWRNORM;
        }
        if self.0.with_tcb(|t| t.err != 0) {
            m |= poll::POLLERR;
        }
        let shut = self.0.with_tcb(|t| t.shutdown);
        if shut == crate::tcp::shutdown::SEND | crate::tcp::shutdown::RCV
            || (state == TcpState::Close && !listening && self.0.with_tcb(|t| t.local.port() != 0))
        {
            m |= poll::POLLHUP;
        }
        if shut & crate::tcp::shutdown::RCV != 0 {
            m |= poll::POLLRDHUP | poll::POLLIN;
        }
        m
    }

    fn wait_queue(&self) -> &Arc<WaitQueue> {
        &self.0.wq
    }
}

impl ProtoOps for InetDgram {
    fn name(&self) -> &'static str {
        "inet_dgram_ops"
    }

    fn sock_type(&self) -> SockType {
        SockType::Dgram
    }

    fn bind(&self, addr: SocketAddrV4) -> io::Result<()> {
        self.0.bind(addr).map(|_| ())
    }

    fn connect(&self, addr: SocketAddrV4) -> io::Result<()> {
        self.0.connect(addr)
    }

    fn listen(&self, _backlog: usize) -> io::Result<()> {
        Err(os_err(errno::EOPNOTSUPP))
    }

    fn accept(&self) -> io::Result<(Arc<dyn ProtoOps>, SocketAddrV4)> {
        Err(os_err(errno::EOPNOTSUPP))
    }

    fn sendmsg(&self, iov: &[&[u8]], flags: u32, to: Option<SocketAddrV4>) -> io::Result<usize> {
        if flags & msg::OOB != 0 {
            return Err(os_err(errno::EOPNOTSUPP));
        }
        self.0.send_vectored(iov, to)
    }

    /// A datagram of `pages` to the connected peer, copied into its skb (Linux's UDP
    /// takes `MSG_SPLICE_PAGES` since 6.5, so `sendfile` to a UDP socket works).
    fn send_pages(&self, pages: &[bytes::Bytes], flags: u32) -> io::Result<usize> {
        match pages {
            [one] => self.sendmsg(&[&one[..]], flags, None),
            _ => {
                let iov: Vec<&[u8]> = pages.iter().map(|p| &p[..]).collect();
                self.sendmsg(&iov, flags, None)
            }
        }
    }

    fn recvmsg(&self, buf: &mut [u8], flags: u32) -> io::Result<(usize, Option<SocketAddrV4>)> {
        let (n, from) = self.0.recv_flags(buf, flags)?;
        Ok((n, Some(from)))
    }

    fn shutdown(&self, _how: Shutdown) -> io::Result<()> {
        // UDP has no connection to shut down: Linux returns ENOTCONN unless connected.
        match self.0.peer_addr() {
            Some(_) => Ok(()),
            None => Err(os_err(errno::ENOTCONN)),
        }
    }

    fn release(&self) {
        self.0.close();
    }

    fn getsockname(&self) -> io::Result<SocketAddrV4> {
        Ok(self.0.local_addr())
    }

    fn getpeername(&self) -> io::Result<SocketAddrV4> {
        self.0.peer_addr().ok_or_else(|| os_err(errno::ENOTCONN))
    }

    fn setsockopt(&self, opt: Opt) -> io::Result<()> {
        match opt {
            Opt::SndBuf(v) => self.0.set_sndbuf(v),
            Opt::RcvBuf(v) => self.0.set_rcvbuf(v),
            Opt::ReuseAddr(v) => self.0.set_reuseaddr(v),
            Opt::Broadcast(v) => self.0.set_broadcast(v),
            Opt::RcvTimeo(t) => self.0.set_read_timeout(t),
            Opt::SndTimeo(_) | Opt::RcvLowat(_) => {}
            _ => return Err(os_err(errno::ENOPROTOOPT)),
        }
        Ok(())
    }

    fn getsockopt(&self, name: &str) -> io::Result<OptValue> {
        Ok(match name {
            "SO_ERROR" => OptValue::Int(
                self.0
                    .take_error()
                    .and_then(|e| e.raw_os_error())
                    .unwrap_or(0) as i64,
            ),
            "SO_TYPE" => OptValue::Int(2),
            _ => return Err(os_err(errno::ENOPROTOOPT)),
        })
    }

    fn set_nonblocking(&self, on: bool) {
        self.0.set_nonblocking(on);
    }

    fn poll(&self) -> u32 {
        let mut m = 0;
        if self.0.readable() {
            m |= poll::POLLIN | poll::POLLRDNORM;
        }
        if self.0.writable() {
            m |= poll::POLLOUT | poll::POLLWRNORM;
        }
        m
    }

    fn wait_queue(&self) -> &Arc<WaitQueue> {
        &self.0.wq
    }
}
