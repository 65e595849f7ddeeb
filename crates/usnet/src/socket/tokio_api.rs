//! tokio `AsyncRead`/`AsyncWrite` sockets (feature `tokio`). A pending operation
//! leaves its task's waker on the socket's wait queue; the softirq side wakes it when
//! data, room or a connection arrives — the same wake-up blocking callers get. The
//! stack's softirq thread must run ([`crate::Stack::start`]).

use std::future::poll_fn;
use std::io;
use std::net::{Shutdown, SocketAddrV4};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::sock::errno;
use crate::tcp::{msg, TcpSock, TcpState};
use crate::Stack;

/// Run `op` without blocking; if it would block, leave the waker first (so a wake-up
/// between the attempt and the registration is not lost) and report `Pending`.
fn poll_op<T>(
    sk: &TcpSock,
    cx: &mut Context<'_>,
    mut op: impl FnMut() -> io::Result<T>,
) -> Poll<io::Result<T>> {
    sk.wq.register(cx.waker());
    match op() {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        r => Poll::Ready(r),
    }
}

/// An async TCP listener.
pub struct TcpListener {
    sk: Arc<TcpSock>,
}

impl TcpListener {
    /// `socket` + `bind` + `listen(128)`.
    pub fn bind(stack: &Stack, addr: SocketAddrV4) -> io::Result<TcpListener> {
        let sk = TcpSock::new(stack);
        sk.set_nonblocking(true);
        sk.set_opt(crate::tcp::SockOpt::ReuseAddr(true))?;
        sk.bind(addr)?;
        sk.listen(128)?;
        Ok(TcpListener { sk })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.sk.local_addr()
    }

    /// Accept a connection.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddrV4)> {
        let child = poll_fn(|cx| poll_op(&self.sk, cx, || self.sk.accept())).await?;
        child.set_nonblocking(true);
        let peer = child.peer_addr()?;
        Ok((TcpStream { sk: child }, peer))
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        self.sk.close();
    }
}

/// An async TCP stream.
pub struct TcpStream {
    sk: Arc<TcpSock>,
}

impl TcpStream {
    /// Connect (the handshake completes asynchronously).
    pub async fn connect(stack: &Stack, addr: SocketAddrV4) -> io::Result<TcpStream> {
        let sk = TcpSock::new(stack);
        sk.set_nonblocking(true);
        match sk.connect(addr) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(errno::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        poll_fn(|cx| {
            poll_op(&sk, cx, || match sk.state() {
                TcpState::SynSent | TcpState::SynRecv => Err(io::ErrorKind::WouldBlock.into()),
                TcpState::Established | TcpState::CloseWait => Ok(()),
                _ => Err(sk
                    .take_error()
                    .unwrap_or_else(|| io::Error::from_raw_os_error(errno::ECONNREFUSED))),
            })
        })
        .await?;
        Ok(TcpStream { sk })
    }

    /// The peer.
    pub fn peer_addr(&self) -> io::Result<SocketAddrV4> {
        self.sk.peer_addr()
    }

    /// `TCP_NODELAY`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.sk.set_opt(crate::tcp::SockOpt::NoDelay(on))
    }

    /// `sendmsg(MSG_SPLICE_PAGES)`: queue `pages` without copying them, waiting for
    /// send-buffer room if none is free; the bytes queued (see
    /// [`TcpSock::send_pages`]).
    pub async fn send_pages(&self, pages: &[bytes::Bytes]) -> io::Result<usize> {
        poll_fn(|cx| poll_op(&self.sk, cx, || self.sk.send_pages(pages, msg::DONTWAIT))).await
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let sk = self.sk.clone();
        let dst = buf.initialize_unfilled();
        match poll_op(&sk, cx, || sk.recv_flags(dst, msg::DONTWAIT)) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let sk = self.sk.clone();
        poll_op(&sk, cx, || sk.send_flags(&[data], msg::DONTWAIT))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.sk.shutdown(Shutdown::Write))
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        self.sk.close();
    }
}

/// An async UDP socket.
pub struct UdpSocket {
    s: Arc<crate::ipv4::udp::UdpSocket>,
}

impl UdpSocket {
    /// `socket` + `bind`.
    pub fn bind(stack: &Stack, addr: SocketAddrV4) -> io::Result<UdpSocket> {
        let s = crate::ipv4::udp::UdpSocket::new(stack);
        s.set_nonblocking(true);
        s.bind(addr)?;
        Ok(UdpSocket { s })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.s.local_addr()
    }

    /// Send a datagram (UDP never waits for the peer; it may wait for buffer room).
    pub async fn send_to(&self, data: &[u8], to: SocketAddrV4) -> io::Result<usize> {
        poll_fn(|cx| {
            self.s.wq.register(cx.waker());
            match self.s.send_to(data, Some(to)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
                r => Poll::Ready(r),
            }
        })
        .await
    }

    /// Receive a datagram.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddrV4)> {
        poll_fn(|cx| {
            self.s.wq.register(cx.waker());
            match self.s.recv_flags(buf, msg::DONTWAIT) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
                r => Poll::Ready(r),
            }
        })
        .await
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        self.s.close();
    }
}
