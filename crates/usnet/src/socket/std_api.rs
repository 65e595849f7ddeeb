//! `std::net`-like sockets over a stack's descriptor table: [`TcpListener`],
//! [`TcpStream`] (with `std::io::Read`/`Write`) and [`UdpSocket`]. Each owns a
//! descriptor of [`Sys`] and closes it when dropped. Blocking calls need the stack's
//! softirq thread running ([`crate::Stack::start`]) or another thread driving it.

use std::io;
use std::net::{Shutdown, SocketAddrV4};
use std::time::Duration;

use super::{Fcntl, Fd, Opt, SockType, Sys};
use crate::Stack;

/// A listening TCP socket.
pub struct TcpListener {
    sys: Sys,
    fd: Fd,
}

/// A connected TCP socket.
pub struct TcpStream {
    sys: Sys,
    fd: Fd,
}

/// A UDP socket.
pub struct UdpSocket {
    sys: Sys,
    fd: Fd,
}

macro_rules! common {
    ($t:ty) => {
        impl $t {
            /// The descriptor in the stack's table.
            pub fn as_raw_fd(&self) -> Fd {
                self.fd
            }

            /// `getsockname`.
            pub fn local_addr(&self) -> io::Result<SocketAddrV4> {
                self.sys.getsockname(self.fd)
            }

            /// `O_NONBLOCK`.
            pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
                self.sys.fcntl(self.fd, Fcntl::SetNonblock(on)).map(|_| ())
            }

            /// `SO_RCVTIMEO`.
            pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
                self.sys.setsockopt(self.fd, Opt::RcvTimeo(t))
            }

            /// The pending error (`SO_ERROR`).
            pub fn take_error(&self) -> io::Result<Option<io::Error>> {
                match self.sys.getsockopt(self.fd, "SO_ERROR")? {
                    super::OptValue::Int(0) => Ok(None),
                    super::OptValue::Int(e) => Ok(Some(io::Error::from_raw_os_error(e as i32))),
                    _ => Ok(None),
                }
            }
        }

        impl Drop for $t {
            fn drop(&mut self) {
                let _ = self.sys.close(self.fd);
            }
        }
    };
}

common!(TcpListener);
common!(TcpStream);
common!(UdpSocket);

impl TcpListener {
    /// `socket` + `SO_REUSEADDR` + `bind` + `listen(128)`, as `std` does.
    pub fn bind(stack: &Stack, addr: SocketAddrV4) -> io::Result<TcpListener> {
        let sys = Sys::new(stack);
        let fd = sys.socket(SockType::Stream)?;
        let l = TcpListener { sys, fd };
        l.sys.setsockopt(fd, Opt::ReuseAddr(true))?;
        l.sys.bind(fd, addr)?;
        l.sys.listen(fd, 128)?;
        Ok(l)
    }

    /// `accept`.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddrV4)> {
        let (fd, peer) = self.sys.accept(self.fd)?;
        Ok((
            TcpStream {
                sys: self.sys.clone(),
                fd,
            },
            peer,
        ))
    }
}

impl TcpStream {
    /// `socket` + `connect` (blocking until established or refused).
    pub fn connect(stack: &Stack, addr: SocketAddrV4) -> io::Result<TcpStream> {
        let sys = Sys::new(stack);
        let fd = sys.socket(SockType::Stream)?;
        let s = TcpStream { sys, fd };
        s.sys.connect(fd, addr)?;
        Ok(s)
    }

    /// `getpeername`.
    pub fn peer_addr(&self) -> io::Result<SocketAddrV4> {
        self.sys.getpeername(self.fd)
    }

    /// `shutdown`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sys.shutdown(self.fd, how)
    }

    /// `TCP_NODELAY`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.sys.setsockopt(self.fd, Opt::NoDelay(on))
    }

    /// `SO_BUSY_POLL` (µs): busy-poll the device before sleeping in a blocking read.
    pub fn set_busy_poll(&self, us: u32) -> io::Result<()> {
        self.sys
            .setsockopt(self.fd, Opt::Tcp(crate::tcp::SockOpt::BusyPoll(us)))
    }

    /// `SO_SNDTIMEO`.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.sys.setsockopt(self.fd, Opt::SndTimeo(t))
    }

    /// `sendmsg(MSG_SPLICE_PAGES)`: queue `pages` without copying them, as `sendfile`
    /// does with page-cache pages ([`crate::tcp::TcpSock::send_pages`]). Returns the
    /// bytes queued, like `write`; the stack holds each page while an skb carries its
    /// bytes (until acknowledged, on loopback until read).
    ///
    /// ```
    /// use std::io::Read;
    /// use std::net::{Ipv4Addr, SocketAddrV4};
    /// use usnet::socket::std_api::{TcpListener, TcpStream};
    ///
    /// let stack = usnet::Stack::builder().name("doc").build();
    /// stack.start();
    /// let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7);
    /// let l = TcpListener::bind(&stack, addr).unwrap();
    /// let c = TcpStream::connect(&stack, addr).unwrap();
    /// let (mut s, _) = l.accept().unwrap();
    /// let reader = std::thread::spawn(move || {
    ///     let mut got = Vec::new();
    ///     s.read_to_end(&mut got).unwrap();
    ///     got
    /// });
    ///
    /// let page = bytes::Bytes::from(vec![7u8; 300_000]);
    /// let mut sent = 0;
    /// while sent < page.len() {
    ///     sent += c.send_pages(&[page.slice(sent..)]).unwrap();
    /// }
    /// c.shutdown(std::net::Shutdown::Write).unwrap();
    /// assert_eq!(reader.join().unwrap(), page);
    /// stack.stop();
    /// ```
    pub fn send_pages(&self, pages: &[bytes::Bytes]) -> io::Result<usize> {
        self.sys.send_pages(self.fd, pages, 0)
    }

    /// [`TcpStream::send_pages`] until all of `page` is queued, as `write_all` is to
    /// `write`.
    pub fn send_all_pages(&self, page: &bytes::Bytes) -> io::Result<()> {
        let mut off = 0;
        while off < page.len() {
            off += self.send_pages(&[page.slice(off..)])?;
        }
        Ok(())
    }

    /// `sendfile(2)`: send `count` bytes read from `file` at its position (to its end
    /// when `None`), each read of up to 256 KiB going to the stack uncopied
    /// ([`TcpStream::send_pages`]) and its buffer refilled once the stack lets it go
    /// ([`super::pages::PageRing`]) — one copy per byte, the read, where `write` would
    /// make two. As Linux's, the file position ends past what was sent and no
    /// further: bytes read but not sent when sending fails are sought back over.
    /// Returns the bytes sent — fewer than `count` at the end of the file, or when an
    /// error came after some were sent (the error then shows on the next call, as
    /// Linux returns a partial count) — or the error when none were.
    pub fn sendfile<F: io::Read + io::Seek>(
        &self,
        file: &mut F,
        count: Option<u64>,
    ) -> io::Result<u64> {
        const CHUNK: usize = 256 << 10;
        let mut ring = super::pages::PageRing::new(32);
        let mut sent = 0u64;
        let partial = |sent: u64, e: io::Error| if sent > 0 { Ok(sent) } else { Err(e) };
        loop {
            let want = count.map_or(CHUNK as u64, |c| (c - sent).min(CHUNK as u64)) as usize;
            if want == 0 {
                return Ok(sent);
            }
            let mut page = ring.take(want);
            let mut filled = 0;
            let mut read_err = None;
            while filled < want {
                match file.read(&mut page[filled..want]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        // What was read before the error still goes.
                        read_err = Some(e);
                        break;
                    }
                }
            }
            page.truncate(filled);
            let page = page.freeze();
            let mut off = 0;
            while off < filled {
                match self.send_pages(&[page.slice(off..)]) {
                    Ok(n) => off += n,
                    Err(e) => {
                        // The file position stays at the first byte not sent.
                        let back = (filled - off) as i64;
                        file.seek(io::SeekFrom::Current(-back))?;
                        return partial(sent + off as u64, e);
                    }
                }
            }
            sent += filled as u64;
            ring.lend(page);
            if let Some(e) = read_err {
                return partial(sent, e);
            }
            if filled < want {
                return Ok(sent);
            }
        }
    }

    /// `recv(MSG_PEEK)`.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sys.recv(self.fd, buf, crate::tcp::msg::PEEK)
    }
}

impl io::Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sys.read(self.fd, buf)
    }
}

impl io::Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sys.write(self.fd, buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let iov: Vec<&[u8]> = bufs.iter().map(|b| &**b).collect();
        self.sys.sendmsg(self.fd, &iov, 0, None)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl io::Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sys.read(self.fd, buf)
    }
}

impl io::Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sys.write(self.fd, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl UdpSocket {
    /// `socket` + `bind`.
    pub fn bind(stack: &Stack, addr: SocketAddrV4) -> io::Result<UdpSocket> {
        let sys = Sys::new(stack);
        let fd = sys.socket(SockType::Dgram)?;
        let s = UdpSocket { sys, fd };
        s.sys.bind(fd, addr)?;
        Ok(s)
    }

    /// `connect`: fix the peer.
    pub fn connect(&self, addr: SocketAddrV4) -> io::Result<()> {
        self.sys.connect(self.fd, addr)
    }

    /// `sendto`.
    pub fn send_to(&self, buf: &[u8], to: SocketAddrV4) -> io::Result<usize> {
        self.sys.sendto(self.fd, buf, 0, to)
    }

    /// `send` on a connected socket.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sys.send(self.fd, buf, 0)
    }

    /// `recvfrom`.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddrV4)> {
        let (n, from) = self.sys.recvfrom(self.fd, buf, 0)?;
        Ok((
            n,
            from.unwrap_or(SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0)),
        ))
    }

    /// `recv`.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sys.recv(self.fd, buf, 0)
    }

    /// `SO_BROADCAST`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.sys.setsockopt(self.fd, Opt::Broadcast(on))
    }
}
