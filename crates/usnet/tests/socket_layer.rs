//! The socket layer: descriptors, the system calls and their errnos, poll and epoll
//! (level- and edge-triggered) on the virtual clock; blocking std-like sockets and
//! tokio sockets across threads in real time, with the stacks' softirq threads.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddrV4};
use std::time::Duration;

use usnet::sock::errno;
use usnet::socket::epoll::Epoll;
use usnet::socket::poll::{POLLIN, POLLOUT};
use usnet::socket::{std_api, Fcntl, Opt, OptValue, SockType, Sys, EBADF};
use usnet::tcp::msg;
use usnet::testutil::{ip, RealTwoHosts, TwoHosts};

fn addr(a: u8, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip(10, 0, 0, a), port)
}

fn err(r: std::io::Result<impl std::fmt::Debug>) -> i32 {
    r.unwrap_err().raw_os_error().expect("an errno")
}

/// A connected pair on the simulator: (sim hosts, client sys, client fd, server sys,
/// listener fd, accepted fd).
fn connected() -> (TwoHosts, Sys, i32, Sys, i32, i32) {
    let h = TwoHosts::new(41, |_| {}).with_ip();
    let (sa, sb) = (Sys::new(&h.a), Sys::new(&h.b));
    let l = sb.socket(SockType::Stream).unwrap();
    sb.bind(l, addr(2, 80)).unwrap();
    sb.listen(l, 8).unwrap();
    sb.fcntl(l, Fcntl::SetNonblock(true)).unwrap();
    let c = sa.socket(SockType::Stream).unwrap();
    sa.fcntl(c, Fcntl::SetNonblock(true)).unwrap();
    assert_eq!(err(sa.connect(c, addr(2, 80))), errno::EINPROGRESS);
    // Not writable until the handshake completes; then POLLOUT.
    assert!(sa
        .poll(&[(c, POLLOUT)], Some(Duration::ZERO))
        .unwrap()
        .is_empty());
    h.sim.run_for(Duration::from_millis(5));
    assert_eq!(
        sa.poll(&[(c, POLLOUT)], Some(Duration::ZERO)).unwrap(),
        vec![(c, POLLOUT)],
        "revents carry only what was asked for (and POLLERR/POLLHUP)"
    );
    assert_eq!(
        sb.poll(&[(l, POLLIN)], Some(Duration::ZERO)).unwrap().len(),
        1,
        "listener readable"
    );
    let (s, peer) = sb.accept(l).unwrap();
    assert_eq!(peer, sa.getsockname(c).unwrap());
    sb.fcntl(s, Fcntl::SetNonblock(true)).unwrap();
    (h, sa, c, sb, l, s)
}

#[test]
fn descriptors_are_the_lowest_free_and_bad_ones_are_ebadf() {
    let h = TwoHosts::new(40, |_| {}).with_ip();
    let sys = Sys::new(&h.a);
    let a = sys.socket(SockType::Stream).unwrap();
    let b = sys.socket(SockType::Dgram).unwrap();
    assert_eq!((a, b), (3, 4));
    sys.close(a).unwrap();
    assert_eq!(sys.socket(SockType::Dgram).unwrap(), 3, "lowest free");
    assert_eq!(err(sys.close(99)), EBADF);
    assert_eq!(err(sys.read(-1, &mut [0; 4])), EBADF);
    assert_eq!(h.a.fds.open_fds(), vec![3, 4]);
    assert_eq!(
        sys.fcntl(4, Fcntl::GetFl).unwrap() & usnet::socket::O_NONBLOCK,
        0
    );
    sys.fcntl(4, Fcntl::SetNonblock(true)).unwrap();
    assert_ne!(
        sys.fcntl(4, Fcntl::GetFl).unwrap() & usnet::socket::O_NONBLOCK,
        0
    );
}

#[test]
fn stream_calls_and_their_errnos() {
    let (h, sa, c, sb, l, s) = connected();
    assert_eq!(sa.getpeername(c).unwrap(), addr(2, 80));
    assert_eq!(sb.getsockname(s).unwrap(), addr(2, 80));
    // Nothing to read: EAGAIN (O_NONBLOCK), and MSG_DONTWAIT on a blocking socket too.
    assert_eq!(err(sb.recv(s, &mut [0; 8], 0)), errno::EAGAIN);
    sb.fcntl(s, Fcntl::SetNonblock(false)).unwrap();
    assert_eq!(err(sb.recv(s, &mut [0; 8], msg::DONTWAIT)), errno::EAGAIN);
    sb.fcntl(s, Fcntl::SetNonblock(true)).unwrap();
    // sendmsg with an iovec; MSG_PEEK leaves the data; MSG_WAITALL-free read.
    assert_eq!(sa.sendmsg(c, &[b"hello, ", b"world"], 0, None).unwrap(), 12);
    h.sim.run_for(Duration::from_millis(5));
    assert_eq!(
        sb.poll(&[(s, POLLIN)], Some(Duration::ZERO)).unwrap().len(),
        1
    );
    let mut buf = [0u8; 32];
    assert_eq!(sb.recv(s, &mut buf, msg::PEEK).unwrap(), 12);
    let n = sb.read(s, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello, world");
    // A second bind of the same address: EADDRINUSE; listen on a UDP socket: EOPNOTSUPP.
    let x = sb.socket(SockType::Stream).unwrap();
    assert_eq!(err(sb.bind(x, addr(2, 80))), errno::EADDRINUSE);
    assert_eq!(err(sb.getpeername(x)), errno::ENOTCONN);
    let u = sb.socket(SockType::Dgram).unwrap();
    assert_eq!(err(sb.listen(u, 1)), errno::EOPNOTSUPP);
    // sendto with an address on a connected stream: EISCONN.
    assert_eq!(err(sa.sendto(c, b"x", 0, addr(2, 80))), errno::EISCONN);
    // Options through the layer.
    sa.setsockopt(c, Opt::NoDelay(true)).unwrap();
    assert!(matches!(
        sa.getsockopt(c, "TCP_NODELAY").unwrap(),
        OptValue::Int(1)
    ));
    assert!(
        matches!(sa.getsockopt(c, "TCP_INFO").unwrap(), OptValue::TcpInfo(i) if i.snd_mss == 1448)
    );
    assert_eq!(err(sa.getsockopt(c, "SO_NO_SUCH")), errno::ENOPROTOOPT);
    // Write after shutdown(SHUT_WR): EPIPE. The peer reads EOF.
    sa.shutdown(c, Shutdown::Write).unwrap();
    assert_eq!(err(sa.write(c, b"late")), errno::EPIPE);
    h.sim.run_for(Duration::from_millis(5));
    assert_eq!(sb.read(s, &mut buf).unwrap(), 0);
    assert_ne!(
        sb.poll(
            &[(s, POLLIN | usnet::socket::poll::POLLRDHUP)],
            Some(Duration::ZERO)
        )
        .unwrap()[0]
            .1
            & usnet::socket::poll::POLLRDHUP,
        0
    );
    // Connection refused through the layer.
    let r = sa.socket(SockType::Stream).unwrap();
    sa.fcntl(r, Fcntl::SetNonblock(true)).unwrap();
    let _ = sa.connect(r, addr(2, 9));
    h.sim.run_for(Duration::from_millis(5));
    assert!(
        matches!(sa.getsockopt(r, "SO_ERROR").unwrap(), OptValue::Int(e) if e == i64::from(errno::ECONNREFUSED))
    );
    for fd in [c, r] {
        sa.close(fd).unwrap();
    }
    for fd in [l, s, x, u] {
        sb.close(fd).unwrap();
    }
}

#[test]
fn datagram_calls() {
    let h = TwoHosts::new(42, |_| {}).with_ip();
    let (sa, sb) = (Sys::new(&h.a), Sys::new(&h.b));
    let u = sb.socket(SockType::Dgram).unwrap();
    sb.bind(u, addr(2, 53)).unwrap();
    sb.fcntl(u, Fcntl::SetNonblock(true)).unwrap();
    let v = sa.socket(SockType::Dgram).unwrap();
    assert_eq!(sa.sendto(v, b"query", 0, addr(2, 53)).unwrap(), 5);
    assert_eq!(err(sa.send(v, b"no peer", 0)), errno::EDESTADDRREQ);
    assert_eq!(
        err(sa.sendto(v, &vec![0; 70_000], 0, addr(2, 53))),
        errno::EMSGSIZE
    );
    h.sim.run_for(Duration::from_millis(5));
    let mut buf = [0u8; 16];
    let (n, from) = sb.recvfrom(u, &mut buf, 0).unwrap();
    assert_eq!(&buf[..n], b"query");
    // The sender was autobound to 0.0.0.0:<ephemeral>; the datagram carries its
    // interface address.
    let local = sa.getsockname(v).unwrap();
    assert_eq!(*local.ip(), std::net::Ipv4Addr::UNSPECIFIED);
    assert_eq!(from, Some(SocketAddrV4::new(ip(10, 0, 0, 1), local.port())));
    assert_eq!(err(sb.recvfrom(u, &mut buf, 0)), errno::EAGAIN);
}

#[test]
fn epoll_level_and_edge_triggered() {
    let (h, sa, c, sb, _l, s) = connected();
    let lt = Epoll::new();
    let et = Epoll::new();
    lt.add(&sb, s, POLLIN, false).unwrap();
    et.add(&sb, s, POLLIN, true).unwrap();
    assert_eq!(err(lt.add(&sb, s, POLLIN, false)), 17, "EEXIST");
    assert!(lt.wait(8, Some(Duration::ZERO)).is_empty());
    sa.write(c, b"one").unwrap();
    h.sim.run_for(Duration::from_millis(5));
    // Level-triggered: reported while data is there. Edge-triggered: once per arrival.
    assert_eq!(lt.wait(8, Some(Duration::ZERO)).len(), 1);
    assert_eq!(lt.wait(8, Some(Duration::ZERO)).len(), 1);
    assert_eq!(et.wait(8, Some(Duration::ZERO)).len(), 1);
    assert!(et.wait(8, Some(Duration::ZERO)).is_empty(), "no new edge");
    sa.write(c, b"two").unwrap();
    h.sim.run_for(Duration::from_millis(5));
    assert_eq!(
        et.wait(8, Some(Duration::ZERO)).len(),
        1,
        "new data, new edge"
    );
    let mut buf = [0u8; 16];
    assert_eq!(sb.read(s, &mut buf).unwrap(), 6);
    assert!(lt.wait(8, Some(Duration::ZERO)).is_empty(), "drained");
    lt.delete(s).unwrap();
    assert_eq!(err(lt.delete(s)), 2, "ENOENT");
}

#[test]
fn blocking_std_sockets_across_threads_in_real_time() {
    let h = RealTwoHosts::start(43);
    let listener = std_api::TcpListener::bind(&h.b, addr(2, 8080)).unwrap();
    let data: Vec<u8> = (0..4_000_000u32)
        .map(|i| (i * 7 + i / 1000) as u8)
        .collect();
    let expect = data.clone();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(b"thanks").unwrap();
        got
    });
    let a = h.a.clone();
    let client = std::thread::spawn(move || {
        let mut c = std_api::TcpStream::connect(&a, addr(2, 8080)).unwrap();
        c.write_all(&data).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut reply = String::new();
        c.read_to_string(&mut reply).unwrap();
        reply
    });
    assert_eq!(client.join().unwrap(), "thanks");
    assert!(server.join().unwrap() == expect, "4 MB intact");
    // SO_RCVTIMEO: a blocking read gives up with EAGAIN.
    let u = std_api::UdpSocket::bind(&h.b, addr(2, 9999)).unwrap();
    u.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let t0 = std::time::Instant::now();
    let e = u.recv_from(&mut [0; 8]).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    assert!(t0.elapsed() >= Duration::from_millis(50));
}

/// A file of `data` whose reads fail from byte `fail_at` on.
struct FailingFile {
    inner: std::io::Cursor<Vec<u8>>,
    fail_at: u64,
}

impl Read for FailingFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.fail_at.saturating_sub(self.inner.position());
        if left == 0 {
            return Err(std::io::Error::other("disk on fire"));
        }
        let n = buf.len().min(left as usize);
        self.inner.read(&mut buf[..n])
    }
}

impl std::io::Seek for FailingFile {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// `TcpStream::sendfile`: a count stops it exactly (0 sends nothing, more than the
/// file sends the file), `None` sends to the end (3 MB, twelve 256 KiB reads); a read
/// error after some bytes returns the partial count with those bytes sent, before any
/// the error; a failed send leaves the file position at the first byte not sent.
#[test]
fn sendfile_counts_and_file_positions_are_linuxs() {
    let h = RealTwoHosts::start(50);
    let listener = std_api::TcpListener::bind(&h.b, addr(2, 8081)).unwrap();
    let file: Vec<u8> = (0..3_012_345u32)
        .map(|i| (i * 13 + i / 4099) as u8)
        .collect();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got
    });
    let c = std_api::TcpStream::connect(&h.a, addr(2, 8081)).unwrap();
    let mut f = std::io::Cursor::new(file.clone());
    assert_eq!(c.sendfile(&mut f, Some(0)).unwrap(), 0);
    assert_eq!(c.sendfile(&mut f, Some(1000)).unwrap(), 1000);
    assert_eq!(f.position(), 1000, "read no further than the count");
    assert_eq!(c.sendfile(&mut f, None).unwrap(), file.len() as u64 - 1000);
    assert_eq!(
        c.sendfile(&mut f, None).unwrap(),
        0,
        "at the end of the file"
    );
    let mut short = std::io::Cursor::new(vec![0xddu8; 500]);
    assert_eq!(c.sendfile(&mut short, Some(10_000)).unwrap(), 500);
    let mut failing = FailingFile {
        inner: std::io::Cursor::new(vec![0xeeu8; 1000]),
        fail_at: 100,
    };
    assert_eq!(
        c.sendfile(&mut failing, None).unwrap(),
        100,
        "the bytes sent before the error"
    );
    let e = c.sendfile(&mut failing, None).unwrap_err();
    assert_eq!(e.to_string(), "disk on fire");
    c.shutdown(Shutdown::Write).unwrap();
    // Sending fails (EPIPE): nothing was sent, so the position goes back to 0.
    let mut late = std::io::Cursor::new(vec![1u8; 5000]);
    let e = c.sendfile(&mut late, None).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(errno::EPIPE));
    assert_eq!(late.position(), 0);
    let got = server.join().unwrap();
    // No byte took the copy path: it fills the stack's page fragments, and the pool
    // they return to stayed empty.
    assert_eq!(
        h.a.tcp.page_pool.len(),
        0,
        "sendfile copied into page fragments"
    );
    assert_eq!(got.len(), file.len() + 500 + 100);
    assert!(got[..file.len()] == file[..], "the file intact");
    assert!(got[file.len()..file.len() + 500].iter().all(|b| *b == 0xdd));
    assert!(got[file.len() + 500..].iter().all(|b| *b == 0xee));
}

/// Softirq bookkeeping of a request/response run: how often each stack's softirq ran
/// inline in an application thread, and how often the ksoftirqd threads were woken.
struct RrStats {
    inline_a: u64,
    inline_b: u64,
    wakeups: u64,
}

/// `n` one-byte request/response exchanges between a client and a server thread over
/// the blocking std API, both sockets with `SO_BUSY_POLL` = `busy_us`.
fn request_response(seed: u64, port: u16, busy_us: u32, n: u64) -> RrStats {
    let h = RealTwoHosts::start(seed);
    let l = std_api::TcpListener::bind(&h.b, addr(2, port)).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_nodelay(true).unwrap();
        s.set_busy_poll(busy_us).unwrap();
        let mut b = [0u8; 1];
        while s.read(&mut b).unwrap_or(0) == 1 {
            s.write_all(&b).unwrap();
        }
    });
    let mut c = std_api::TcpStream::connect(&h.a, addr(2, port)).unwrap();
    c.set_nodelay(true).unwrap();
    c.set_busy_poll(busy_us).unwrap();
    let stat = |s: &usnet::Stack| {
        let st = &s.softnet.stats;
        (
            st.inline_runs.load(std::sync::atomic::Ordering::Relaxed),
            st.wakeups.load(std::sync::atomic::Ordering::Relaxed),
        )
    };
    let (ia0, wa0) = stat(&h.a);
    let (ib0, wb0) = stat(&h.b);
    let mut b = [1u8; 1];
    for i in 0..n {
        b[0] = i as u8;
        c.write_all(&b).unwrap();
        c.read_exact(&mut b).unwrap();
        assert_eq!(b[0], i as u8, "the echo of request {i}");
    }
    let (ia, wa) = stat(&h.a);
    let (ib, wb) = stat(&h.b);
    drop(c);
    server.join().unwrap();
    RrStats {
        inline_a: ia - ia0,
        inline_b: ib - ib0,
        wakeups: (wa - wa0) + (wb - wb0),
    }
}

/// A send that raises NET_RX on a peer whose softirq thread sleeps runs that softirq
/// itself when it releases the socket (`local_bh_enable` → `do_softirq`, as a
/// `veth_xmit` in Linux), so a request/response exchange costs two thread wake-ups
/// (one per application), not four.
#[test]
fn the_senders_thread_runs_the_peers_receive_softirq() {
    let n = 2000;
    let r = request_response(9, 7300, 0, n);
    assert!(
        r.inline_b >= n / 2,
        "b's softirq ran in the client's thread: {}",
        r.inline_b
    );
    assert!(
        r.inline_a >= n / 2,
        "a's softirq ran in the server's thread: {}",
        r.inline_a
    );
    assert!(
        r.wakeups < n / 2,
        "ksoftirqd was rarely woken: {} for {n} exchanges",
        r.wakeups
    );
}

/// `SO_BUSY_POLL`: the waiting thread polls the stack instead of sleeping, and while
/// it does, ksoftirqd is left asleep (as busy polling keeps the NIC's interrupt
/// masked); when the poll ends it is woken only if work or an earlier timer was
/// raised meanwhile, not once per poll.
#[test]
fn busy_polling_leaves_ksoftirqd_asleep() {
    let n = 2000;
    let r = request_response(10, 7301, 200, n);
    assert!(
        r.wakeups < n / 4,
        "ksoftirqd woken {} times in {n} busy-polled exchanges",
        r.wakeups
    );
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_sockets_in_real_time() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use usnet::socket::tokio_api::{TcpListener, TcpStream};
    let h = RealTwoHosts::start(44);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let (a, b) = (h.a.clone(), h.b.clone());
    let got = rt.block_on(async move {
        let l = TcpListener::bind(&b, addr(2, 7000)).unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).await.unwrap();
            s.write_all(&(buf.len() as u64).to_be_bytes())
                .await
                .unwrap();
            s.shutdown().await.unwrap();
            buf
        });
        let mut c = TcpStream::connect(&a, addr(2, 7000)).await.unwrap();
        let data = vec![0x5au8; 1_000_000];
        c.write_all(&data).await.unwrap();
        // Then 8 MB handed over uncopied, more than the send buffer's 4 MiB ceiling:
        // some calls take part and the next waits for room.
        let page = bytes::Bytes::from(vec![0xa5u8; 8_000_000]);
        let (mut off, mut calls) = (0, 0);
        while off < page.len() {
            off += c.send_pages(&[page.slice(off..)]).await.unwrap();
            calls += 1;
        }
        assert!(calls > 1, "{calls} calls");
        c.shutdown().await.unwrap();
        let mut len = [0u8; 8];
        c.read_exact(&mut len).await.unwrap();
        assert_eq!(u64::from_be_bytes(len), 9_000_000);
        let refused = TcpStream::connect(&a, addr(2, 7001)).await;
        assert_eq!(
            refused.err().and_then(|e| e.raw_os_error()),
            Some(errno::ECONNREFUSED)
        );
        server.await.unwrap()
    });
    assert_eq!(got.len(), 9_000_000);
    assert!(got[..1_000_000].iter().all(|b| *b == 0x5a));
    assert!(got[1_000_000..].iter().all(|b| *b == 0xa5));
}

mod common;

#[test]
fn segments_arriving_while_the_application_holds_the_lock_wait_in_the_backlog() {
    let k = common::Conn::new(45, |_| {});
    k.c.set_opt(usnet::tcp::SockOpt::NoDelay(true)).unwrap();
    let guard = k.s.lock_sock().unwrap();
    for part in [&b"first "[..], b"second ", b"third"] {
        k.c.send(part).unwrap();
        k.h.sim.run_for(Duration::from_millis(5));
    }
    // Softirq found the socket owned (sock_owned_by_user): the segments wait in order.
    assert!(k.s.backlog_len() >= 3, "{}", k.s.backlog_len());
    assert_eq!(guard.rx_readable(), 0, "not processed yet");
    drop(guard); // release_sock processes the backlog
    assert_eq!(k.s.backlog_len(), 0);
    let mut buf = [0u8; 64];
    let n = k.s.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"first second third");
}

/// The backlog holds what a busy owner's buffers allow — `sk_rcvbuf + sk_sndbuf +
/// 64 KiB`, as `tcp_add_backlog` — so a window's worth of data arriving while the
/// application holds the lock is kept, not dropped (a fixed 1 MiB bound lost whole
/// 64 KiB GSO packets from a TAP and made Linux retransmit them).
#[test]
fn the_backlog_holds_a_large_window_while_the_owner_is_busy() {
    use usnet::tcp::{SockOpt, TcpExt};
    // A wire that holds a large window in flight (netem's default limit is 1000)
    // (and RX rings deep enough for a line-rate burst of it, as `ethtool -G rx 4096`).
    let k = common::Conn::with_nic(
        47,
        |c| c.rx_ring = 4096,
        |h| {
            for port in 0..2 {
                h.wire.set_netem(
                    port,
                    usnet::link::Netem {
                        delay: common::D,
                        limit: 100_000,
                        ..Default::default()
                    },
                );
            }
        },
    );
    // Reno's slow start (no HyStart) opens cwnd within the warm-up; receive-buffer
    // autotuning opens the window.
    k.c.set_opt(SockOpt::Congestion("reno".into())).unwrap();
    common::bulk_with(&k, 16 << 20, Duration::from_secs(60), || {});
    let guard = k.s.lock_sock().unwrap();
    let chunk = vec![7u8; 1 << 20];
    let mut queued = 0;
    while queued < 3 << 20 {
        match k.c.send(&chunk) {
            Ok(n) => queued += n,
            Err(_) => break,
        }
    }
    k.h.sim.run_for(Duration::from_millis(200));
    let held = k.s.backlog_bytes();
    let drops = k.h.b.tcp.mib.get(TcpExt::TCPBacklogDrop);
    drop(guard);
    assert!(
        held > 700,
        "well over 1 MiB waited in the backlog: {held} skbs"
    );
    assert_eq!(drops, 0, "nothing dropped");
    let mut got = 0;
    let mut buf = vec![0u8; 1 << 16];
    k.h.sim.run_while(
        || {
            while let Ok(n) = k.s.recv(&mut buf) {
                if n == 0 {
                    break;
                }
                got += n;
            }
            got < queued
        },
        Duration::from_secs(10),
    );
    assert_eq!(got, queued);
}

#[test]
fn a_full_send_buffer_blocks_eagains_or_times_out() {
    // Non-blocking: EAGAIN once the send buffer is full (the receiver does not read).
    let k = common::Conn::new(46, |_| {});
    let chunk = vec![1u8; 65536];
    let mut queued = 0;
    let e = loop {
        match k.c.send(&chunk) {
            Ok(n) => queued += n,
            Err(e) => break e,
        }
        k.h.sim.run_for(Duration::from_millis(1));
    };
    assert_eq!(e.raw_os_error(), Some(errno::EAGAIN));
    // tcp_sndbuf_expand at establishment: 2 × IW10 × the truesize of an MSS skb
    // (about 87 KB), less the per-skb overhead of the small TSO skbs a 10 ms path's
    // pacing rate gives (tcp_tso_autosize).
    assert!(queued > 65_536, "{queued} bytes queued before EAGAIN");

    // Blocking, in real time: the writer sleeps until the reader's ACKs free space.
    let h = RealTwoHosts::start(47);
    let l = std_api::TcpListener::bind(&h.b, addr(2, 6000)).unwrap();
    let a = h.a.clone();
    let writer = std::thread::spawn(move || {
        let mut c = std_api::TcpStream::connect(&a, addr(2, 6000)).unwrap();
        let t0 = std::time::Instant::now();
        c.write_all(&vec![9u8; 8 << 20]).unwrap();
        let blocked = t0.elapsed();
        // SO_SNDTIMEO: with the reader gone quiet, a write gives up with EAGAIN.
        c.set_write_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let t1 = std::time::Instant::now();
        let e = c.write_all(&vec![9u8; 16 << 20]).unwrap_err();
        (blocked, e.kind(), t1.elapsed())
    });
    let (mut s, _) = l.accept().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    while got < 8 << 20 {
        got += s.read(&mut buf).unwrap();
    }
    let (blocked, kind, timed_out_after) = writer.join().unwrap();
    assert!(
        blocked >= Duration::from_millis(250),
        "the writer slept: {blocked:?}"
    );
    assert_eq!(kind, std::io::ErrorKind::WouldBlock);
    assert!(
        timed_out_after >= Duration::from_millis(100),
        "{timed_out_after:?}"
    );
}

#[test]
fn udp_and_tcp_echo_with_nonblocking_poll_in_real_time() {
    let h = RealTwoHosts::start(48);
    let (sa, sb) = (Sys::new(&h.a), Sys::new(&h.b));
    // Echo servers on b: one UDP, one TCP, served by a poll loop in a thread.
    let u = sb.socket(SockType::Dgram).unwrap();
    sb.bind(u, addr(2, 7)).unwrap();
    let l = sb.socket(SockType::Stream).unwrap();
    sb.bind(l, addr(2, 7)).unwrap();
    sb.listen(l, 8).unwrap();
    for fd in [u, l] {
        sb.fcntl(fd, Fcntl::SetNonblock(true)).unwrap();
    }
    let server = {
        let sb = sb.clone();
        std::thread::spawn(move || {
            let mut conn = None;
            let mut served = 0;
            while served < 2 {
                let mut fds = vec![(u, POLLIN), (l, POLLIN)];
                if let Some(c) = conn {
                    fds.push((c, POLLIN));
                }
                for (fd, _) in sb.poll(&fds, Some(Duration::from_secs(5))).unwrap() {
                    let mut buf = [0u8; 64];
                    if fd == u {
                        let (n, from) = sb.recvfrom(u, &mut buf, 0).unwrap();
                        sb.sendto(u, &buf[..n], 0, from.unwrap()).unwrap();
                        served += 1;
                    } else if fd == l {
                        let (c, _) = sb.accept(l).unwrap();
                        sb.fcntl(c, Fcntl::SetNonblock(true)).unwrap();
                        conn = Some(c);
                    } else {
                        let n = sb.read(fd, &mut buf).unwrap();
                        sb.write(fd, &buf[..n]).unwrap();
                        served += 1;
                    }
                }
            }
        })
    };
    let cu = sa.socket(SockType::Dgram).unwrap();
    sa.sendto(cu, b"udp echo", 0, addr(2, 7)).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(
        sa.poll(&[(cu, POLLIN)], Some(Duration::from_secs(5)))
            .unwrap()
            .len(),
        1
    );
    let (n, _) = sa.recvfrom(cu, &mut buf, 0).unwrap();
    assert_eq!(&buf[..n], b"udp echo");
    let ct = sa.socket(SockType::Stream).unwrap();
    sa.connect(ct, addr(2, 7)).unwrap();
    sa.write(ct, b"tcp echo").unwrap();
    // MSG_WAITALL: exactly the 8 bytes asked for.
    assert_eq!(sa.recv(ct, &mut buf[..8], msg::WAITALL).unwrap(), 8);
    assert_eq!(&buf[..8], b"tcp echo");
    server.join().unwrap();
}

#[cfg(feature = "tokio")]
#[test]
fn udp_echo_with_tokio_tasks() {
    use usnet::socket::tokio_api::UdpSocket;
    let h = RealTwoHosts::start(49);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let (a, b) = (h.a.clone(), h.b.clone());
    rt.block_on(async move {
        let server = UdpSocket::bind(&b, addr(2, 7)).unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let (n, from) = server.recv_from(&mut buf).await.unwrap();
            server.send_to(&buf[..n], from).await.unwrap();
        });
        let c = UdpSocket::bind(&a, addr(1, 0)).unwrap();
        c.send_to(b"async udp", addr(2, 7)).await.unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = c.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"async udp");
        assert_eq!(from, addr(2, 7));
    });
}

/// The handshake's last ACK and the first data right behind it both reach the
/// listener's backlog while the application holds the listener (in `accept`): at
/// release the ACK creates the connection and the data goes to it — not to the
/// listener, which would answer it with a RST (Linux finds the new socket by lookup).
#[test]
fn data_behind_the_last_handshake_ack_on_a_busy_listener_reaches_the_new_socket() {
    use usnet::tcp::{TcpSock, TcpState};
    let h = TwoHosts::new(50, |_| {}).with_ip();
    for port in 0..2 {
        h.wire.set_netem(
            port,
            usnet::link::Netem {
                delay: Duration::from_millis(5),
                ..Default::default()
            },
        );
    }
    let l = TcpSock::new(&h.b);
    l.set_nonblocking(true);
    l.bind(addr(2, 81)).unwrap();
    l.listen(16).unwrap();
    let c = TcpSock::new(&h.a);
    c.set_nonblocking(true);
    let _ = c.connect(addr(2, 81));
    h.sim.run_while(
        || c.state() != TcpState::Established,
        Duration::from_secs(2),
    );
    // The ACK is on the wire; the application takes the listener, the data follows.
    let guard = l.lock_sock().unwrap();
    c.send(b"first bytes").unwrap();
    h.sim.run_for(Duration::from_millis(20));
    assert!(l.backlog_len() >= 2, "ACK and data wait on the listener");
    drop(guard);
    h.sim.run_for(Duration::from_millis(20));
    let s = l.accept().expect("the connection");
    // Non-blocking: without the data the call fails instead of sleeping forever
    // (nothing else steps the simulator).
    s.set_nonblocking(true);
    let mut buf = [0u8; 32];
    let n = s.recv(&mut buf).expect("the data reached it");
    assert_eq!(&buf[..n], b"first bytes");
    assert_eq!(c.state(), TcpState::Established, "no RST");
    assert_eq!(h.b.tcp.snmp.get(usnet::tcp::Tcp::OutRsts), 0);
}

/// A socket call reads the clock once and works with that reading (as TCP's
/// `tcp_mstamp`), but a call that slept sees the time that passed meanwhile.
#[test]
fn a_locked_socket_uses_one_reading_until_it_waits() {
    let h = RealTwoHosts::start(11);
    let s = usnet::tcp::TcpSock::new(&h.a);
    let mut g = s.lock_sock().unwrap();
    let t0 = h.a.now();
    std::thread::sleep(Duration::from_millis(2));
    assert_eq!(h.a.now(), t0, "one reading while the socket is held");
    let woke = g.wait(Some(Duration::from_millis(20)), |_| false);
    assert!(!woke);
    assert!(
        h.a.now() >= t0 + Duration::from_millis(20),
        "the wait refreshed the reading: {:?} after {:?}",
        h.a.now(),
        t0
    );
    drop(g);
    let t1 = h.a.now();
    std::thread::sleep(Duration::from_millis(1));
    assert!(
        h.a.now() > t1,
        "outside a socket call the clock is read afresh"
    );
}
