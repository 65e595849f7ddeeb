//! The BSD socket layer (Linux's `net/socket.c` and `af_inet.c`): a per-stack file
//! descriptor table, the system calls on it, and `poll`/`epoll`.
//!
//! Every call goes the kernel's way: the fd names a [`File`]; its operations dispatch
//! through [`ProtoOps`] — `inet_stream_ops` for TCP, `inet_dgram_ops` for UDP — to the
//! protocol. Blocking calls sleep on the socket's wait queue (with `SO_RCVTIMEO` /
//! `SO_SNDTIMEO`); `O_NONBLOCK` and `MSG_DONTWAIT` return `EAGAIN` instead. Errors are
//! `io::Error`s carrying the errno Linux returns.
//!
//! ```
//! use usnet::socket::{SockType, Sys};
//! let stack = usnet::Stack::builder().name("doc").build();
//! let sys = Sys::new(&stack);
//! let fd = sys.socket(SockType::Dgram).unwrap();
//! assert_eq!(fd, 3); // the lowest free descriptor, after stdin/stdout/stderr
//! sys.bind(fd, "127.0.0.1:7000".parse().unwrap()).unwrap();
//! sys.sendto(fd, b"to myself", 0, "127.0.0.1:7000".parse().unwrap()).unwrap();
//! stack.do_softirq();
//! let mut buf = [0u8; 32];
//! let (n, from) = sys.recvfrom(fd, &mut buf, 0).unwrap();
//! assert_eq!(&buf[..n], b"to myself");
//! assert_eq!(from.unwrap().port(), 7000);
//! sys.close(fd).unwrap();
//! assert_eq!(sys.close(fd).unwrap_err().raw_os_error(), Some(9)); // EBADF
//! ```

pub mod epoll;
pub mod inet;
pub mod pages;
pub mod std_api;
#[cfg(feature = "tokio")]
pub mod tokio_api;

use std::io;
use std::net::{Shutdown, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::sock::{errno, os_err, Notify, WaitQueue};
use crate::tcp::{msg, TcpSock};
use crate::Stack;

/// A file descriptor.
pub type Fd = i32;

/// `EBADF`.
pub const EBADF: i32 = 9;
/// `EMFILE`.
pub const EMFILE: i32 = 24;

/// `poll` event bits (Linux's values).
pub mod poll {
    /// Data to read (or a connection to accept, or EOF).
    pub const POLLIN: u32 = 0x001;
    /// Room to write.
    pub const POLLOUT: u32 = 0x004;
    /// An error is pending.
    pub const POLLERR: u32 = 0x008;
    /// Hung up: both directions closed.
    pub const POLLHUP: u32 = 0x010;
    /// Normal data to read.
    pub const POLLRDNORM: u32 = 0x040;
    /// Normal data may be written.
    pub const POLLWRNORM: u32 = 0x100;
    /// The peer closed its sending side.
    pub const POLLRDHUP: u32 = 0x2000;
}

/// Socket types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockType {
    /// `SOCK_STREAM` (TCP).
    Stream,
    /// `SOCK_DGRAM` (UDP).
    Dgram,
}

/// Options for [`Sys::setsockopt`] (the common ones by name; TCP's own through
/// [`Opt::Tcp`]).
#[derive(Clone, Debug)]
pub enum Opt {
    /// `TCP_NODELAY`.
    NoDelay(bool),
    /// `TCP_CORK`.
    Cork(bool),
    /// `TCP_MAXSEG`.
    MaxSeg(u32),
    /// `SO_SNDBUF`.
    SndBuf(usize),
    /// `SO_RCVBUF`.
    RcvBuf(usize),
    /// `SO_REUSEADDR`.
    ReuseAddr(bool),
    /// `SO_REUSEPORT`.
    ReusePort(bool),
    /// `SO_KEEPALIVE`.
    KeepAlive(bool),
    /// `SO_LINGER`.
    Linger(Option<Duration>),
    /// `SO_SNDTIMEO`.
    SndTimeo(Option<Duration>),
    /// `SO_RCVTIMEO`.
    RcvTimeo(Option<Duration>),
    /// `SO_BROADCAST`.
    Broadcast(bool),
    /// `SO_RCVLOWAT` (TCP; a datagram socket ignores it, as Linux's reads do).
    RcvLowat(u32),
    /// Any TCP option.
    Tcp(crate::tcp::SockOpt),
}

/// What [`Sys::getsockopt`] returns.
#[derive(Clone, Debug)]
pub enum OptValue {
    /// An integer option.
    Int(i64),
    /// A string option (`TCP_CONGESTION`).
    Str(String),
    /// `TCP_INFO`.
    TcpInfo(Box<crate::tcp::info::TcpInfo>),
}

/// The operations of one protocol family and type (Linux's `struct proto_ops`).
pub trait ProtoOps: Send + Sync {
    /// `inet_stream_ops` or `inet_dgram_ops`.
    fn name(&self) -> &'static str;
    /// The socket type.
    fn sock_type(&self) -> SockType;
    /// `bind`.
    fn bind(&self, addr: SocketAddrV4) -> io::Result<()>;
    /// `connect`.
    fn connect(&self, addr: SocketAddrV4) -> io::Result<()>;
    /// `listen`.
    fn listen(&self, backlog: usize) -> io::Result<()>;
    /// `accept`: the new socket and the peer's address.
    fn accept(&self) -> io::Result<(Arc<dyn ProtoOps>, SocketAddrV4)>;
    /// `sendmsg`.
    fn sendmsg(&self, iov: &[&[u8]], flags: u32, to: Option<SocketAddrV4>) -> io::Result<usize>;
    /// `sendmsg(MSG_SPLICE_PAGES)`: queue `pages` without copying them where the
    /// protocol can (TCP), else as `sendmsg` would (`EOPNOTSUPP` if it cannot at all).
    fn send_pages(&self, pages: &[bytes::Bytes], flags: u32) -> io::Result<usize> {
        let _ = (pages, flags);
        Err(os_err(errno::EOPNOTSUPP))
    }
    /// `recvmsg`: bytes and (datagrams) the sender.
    fn recvmsg(&self, buf: &mut [u8], flags: u32) -> io::Result<(usize, Option<SocketAddrV4>)>;
    /// `shutdown`.
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
    /// `release` (the last close).
    fn release(&self);
    /// `getsockname`.
    fn getsockname(&self) -> io::Result<SocketAddrV4>;
    /// `getpeername`.
    fn getpeername(&self) -> io::Result<SocketAddrV4>;
    /// `setsockopt`.
    fn setsockopt(&self, opt: Opt) -> io::Result<()>;
    /// `getsockopt` by Linux name (`SO_ERROR`, `TCP_INFO`, ...).
    fn getsockopt(&self, name: &str) -> io::Result<OptValue>;
    /// `O_NONBLOCK`.
    fn set_nonblocking(&self, on: bool);
    /// Current readiness (`POLLIN`, `POLLOUT`, ...): `sock_poll` → `tcp_poll`/`udp_poll`.
    fn poll(&self) -> u32;
    /// The wait queue blocking callers and pollers sleep on.
    fn wait_queue(&self) -> &Arc<WaitQueue>;
}

/// An open socket file (`struct file` + `struct socket`).
pub struct File {
    /// The protocol operations.
    pub ops: Arc<dyn ProtoOps>,
    nonblock: AtomicBool,
}

impl File {
    fn new(ops: Arc<dyn ProtoOps>) -> Arc<File> {
        Arc::new(File {
            ops,
            nonblock: AtomicBool::new(false),
        })
    }

    /// Whether `O_NONBLOCK` is set.
    pub fn is_nonblocking(&self) -> bool {
        self.nonblock.load(Ordering::Relaxed)
    }

    /// A call's message flags with `MSG_DONTWAIT` added when the file is non-blocking.
    fn msg_flags(&self, flags: u32) -> u32 {
        if self.is_nonblocking() {
            flags | msg::DONTWAIT
        } else {
            flags
        }
    }
}

/// A stack's file descriptor table (`files_struct`): the lowest free number is
/// allocated first, from 3 (0–2 are the process's standard streams).
#[derive(Default)]
pub struct FdTable {
    slots: Mutex<Vec<Option<Arc<File>>>>,
}

/// Most descriptors one table holds (`RLIMIT_NOFILE`'s usual soft limit).
pub const NR_OPEN: usize = 1024;

impl FdTable {
    fn install(&self, f: Arc<File>) -> io::Result<Fd> {
        let mut s = self.slots.lock();
        if s.len() < 3 {
            s.resize(3, None);
        }
        if let Some(i) = s.iter().skip(3).position(Option::is_none) {
            s[i + 3] = Some(f);
            return Ok((i + 3) as Fd);
        }
        if s.len() >= NR_OPEN {
            return Err(os_err(EMFILE));
        }
        s.push(Some(f));
        Ok((s.len() - 1) as Fd)
    }

    /// The file behind `fd` (`fdget`), or `EBADF`.
    pub fn get(&self, fd: Fd) -> io::Result<Arc<File>> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.lock().get(i).cloned().flatten())
            .ok_or_else(|| os_err(EBADF))
    }

    fn remove(&self, fd: Fd) -> io::Result<Arc<File>> {
        let i = usize::try_from(fd).map_err(|_| os_err(EBADF))?;
        self.slots
            .lock()
            .get_mut(i)
            .and_then(Option::take)
            .ok_or_else(|| os_err(EBADF))
    }

    /// Open descriptors.
    pub fn open_fds(&self) -> Vec<Fd> {
        self.slots
            .lock()
            .iter()
            .enumerate()
            .filter(|(_, f)| f.is_some())
            .map(|(i, _)| i as Fd)
            .collect()
    }
}

/// `fcntl` commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fcntl {
    /// `F_GETFL`: returns `O_NONBLOCK` (0o4000) when set.
    GetFl,
    /// `F_SETFL` with `O_NONBLOCK` on or off.
    SetNonblock(bool),
}

/// `O_NONBLOCK`.
pub const O_NONBLOCK: i64 = 0o4000;

/// The system calls of one stack, on its fd table.
#[derive(Clone)]
pub struct Sys {
    stack: Stack,
}

impl Sys {
    /// System calls on `stack`'s descriptor table.
    pub fn new(stack: &Stack) -> Sys {
        Sys {
            stack: stack.clone(),
        }
    }

    fn file(&self, fd: Fd) -> io::Result<Arc<File>> {
        self.stack.fds.get(fd)
    }

    /// `socket(AF_INET, type, 0)`.
    pub fn socket(&self, ty: SockType) -> io::Result<Fd> {
        let ops: Arc<dyn ProtoOps> = match ty {
            SockType::Stream => Arc::new(inet::InetStream(TcpSock::new(&self.stack))),
            SockType::Dgram => Arc::new(inet::InetDgram(crate::ipv4::udp::UdpSocket::new(
                &self.stack,
            ))),
        };
        self.stack.fds.install(File::new(ops))
    }

    /// `bind`.
    pub fn bind(&self, fd: Fd, addr: SocketAddrV4) -> io::Result<()> {
        self.file(fd)?.ops.bind(addr)
    }

    /// `listen`.
    pub fn listen(&self, fd: Fd, backlog: usize) -> io::Result<()> {
        self.file(fd)?.ops.listen(backlog)
    }

    /// `accept`: a new descriptor and the peer's address.
    pub fn accept(&self, fd: Fd) -> io::Result<(Fd, SocketAddrV4)> {
        let f = self.file(fd)?;
        let (ops, peer) = f.ops.accept()?;
        Ok((self.stack.fds.install(File::new(ops))?, peer))
    }

    /// `connect` (`EINPROGRESS` when non-blocking).
    pub fn connect(&self, fd: Fd, addr: SocketAddrV4) -> io::Result<()> {
        self.file(fd)?.ops.connect(addr)
    }

    /// `write`.
    pub fn write(&self, fd: Fd, data: &[u8]) -> io::Result<usize> {
        self.sendmsg(fd, &[data], 0, None)
    }

    /// `send`.
    pub fn send(&self, fd: Fd, data: &[u8], flags: u32) -> io::Result<usize> {
        self.sendmsg(fd, &[data], flags, None)
    }

    /// `sendto`.
    pub fn sendto(&self, fd: Fd, data: &[u8], flags: u32, to: SocketAddrV4) -> io::Result<usize> {
        self.sendmsg(fd, &[data], flags, Some(to))
    }

    /// `sendmsg` with an iovec (`sock_sendmsg` → `inet_sendmsg` → `sk_prot->sendmsg`).
    pub fn sendmsg(
        &self,
        fd: Fd,
        iov: &[&[u8]],
        flags: u32,
        to: Option<SocketAddrV4>,
    ) -> io::Result<usize> {
        let f = self.file(fd)?;
        let flags = f.msg_flags(flags);
        f.ops.sendmsg(iov, flags, to)
    }

    /// `sendmsg(MSG_SPLICE_PAGES)` (what `sendfile` and `splice` do): queue `pages`
    /// without copying them (TCP); a datagram socket sends them as one datagram to
    /// its connected peer, copied.
    pub fn send_pages(&self, fd: Fd, pages: &[bytes::Bytes], flags: u32) -> io::Result<usize> {
        let f = self.file(fd)?;
        let flags = f.msg_flags(flags);
        f.ops.send_pages(pages, flags)
    }

    /// `read`.
    pub fn read(&self, fd: Fd, buf: &mut [u8]) -> io::Result<usize> {
        self.recvmsg(fd, buf, 0).map(|r| r.0)
    }

    /// `recv` (`MSG_PEEK`, `MSG_WAITALL`, `MSG_DONTWAIT`).
    pub fn recv(&self, fd: Fd, buf: &mut [u8], flags: u32) -> io::Result<usize> {
        self.recvmsg(fd, buf, flags).map(|r| r.0)
    }

    /// `recvfrom`.
    pub fn recvfrom(
        &self,
        fd: Fd,
        buf: &mut [u8],
        flags: u32,
    ) -> io::Result<(usize, Option<SocketAddrV4>)> {
        self.recvmsg(fd, buf, flags)
    }

    /// `recvmsg`.
    pub fn recvmsg(
        &self,
        fd: Fd,
        buf: &mut [u8],
        flags: u32,
    ) -> io::Result<(usize, Option<SocketAddrV4>)> {
        let f = self.file(fd)?;
        let flags = f.msg_flags(flags);
        f.ops.recvmsg(buf, flags)
    }

    /// `shutdown`.
    pub fn shutdown(&self, fd: Fd, how: Shutdown) -> io::Result<()> {
        self.file(fd)?.ops.shutdown(how)
    }

    /// `close`: the descriptor is gone; the socket is released when the last
    /// reference (another descriptor, an epoll set) goes.
    pub fn close(&self, fd: Fd) -> io::Result<()> {
        let f = self.stack.fds.remove(fd)?;
        f.ops.release();
        Ok(())
    }

    /// `getsockname`.
    pub fn getsockname(&self, fd: Fd) -> io::Result<SocketAddrV4> {
        self.file(fd)?.ops.getsockname()
    }

    /// `getpeername`.
    pub fn getpeername(&self, fd: Fd) -> io::Result<SocketAddrV4> {
        self.file(fd)?.ops.getpeername()
    }

    /// `setsockopt`.
    pub fn setsockopt(&self, fd: Fd, opt: Opt) -> io::Result<()> {
        self.file(fd)?.ops.setsockopt(opt)
    }

    /// `getsockopt` by Linux name.
    pub fn getsockopt(&self, fd: Fd, name: &str) -> io::Result<OptValue> {
        self.file(fd)?.ops.getsockopt(name)
    }

    /// `fcntl(F_GETFL / F_SETFL O_NONBLOCK)`.
    pub fn fcntl(&self, fd: Fd, cmd: Fcntl) -> io::Result<i64> {
        let f = self.file(fd)?;
        match cmd {
            Fcntl::GetFl => Ok(if f.is_nonblocking() { O_NONBLOCK } else { 0 } | 2),
            Fcntl::SetNonblock(on) => {
                f.nonblock.store(on, Ordering::Relaxed);
                f.ops.set_nonblocking(on);
                Ok(0)
            }
        }
    }

    /// `poll`: wait until one of `fds` has an event it asks for, or `timeout` passes
    /// (`None`: forever). Returns (fd, revents) for the ready ones; `POLLERR`/`POLLHUP`
    /// are always reported. A bad descriptor reports `POLLNVAL` (0x20).
    pub fn poll(&self, fds: &[(Fd, u32)], timeout: Option<Duration>) -> io::Result<Vec<(Fd, u32)>> {
        let files: Vec<Option<Arc<File>>> = fds.iter().map(|(fd, _)| self.file(*fd).ok()).collect();
        let notify = Arc::new(Notify::default());
        for f in files.iter().flatten() {
            f.ops.wait_queue().add_poller(&notify);
        }
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let result = loop {
            let seen = notify.generation();
            let ready: Vec<(Fd, u32)> = fds
                .iter()
                .zip(&files)
                .filter_map(|((fd, want), f)| {
                    let rev = match f {
                        Some(f) => f.ops.poll() & (want | poll::POLLERR | poll::POLLHUP),
                        None => 0x20,
                    };
                    (rev != 0).then_some((*fd, rev))
                })
                .collect();
            if !ready.is_empty() || deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                break ready;
            }
            notify.wait_change(seen, deadline);
        };
        for f in files.iter().flatten() {
            f.ops.wait_queue().remove_poller(&notify);
        }
        Ok(result)
    }

    /// The stack.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }
}
