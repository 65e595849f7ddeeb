//! `send_pages` (`sendmsg(MSG_SPLICE_PAGES)`, what `sendfile` and `splice` do): the
//! application's pages become the skbs' fragments, uncopied, held by the socket until
//! their bytes are acknowledged.

mod common;

use std::net::SocketAddrV4;
use std::time::Duration;

use bytes::Bytes;
use common::Conn;
use usnet::link::{Loss, Netem};
use usnet::socket::{SockType, Sys};
use usnet::tcp::{SockOpt, TcpSock};
use usnet::testutil::ip;

/// Patterned bytes, different for each `tag`.
fn pattern(n: usize, tag: usize) -> Vec<u8> {
    (0..n)
        .map(|i| ((i * 7 + tag * 13 + i / 251) % 256) as u8)
        .collect()
}

/// Queue `page` whole with `send_pages` on the non-blocking `c`, running `k`'s hosts
/// (the receiver reading into `got`) while the send buffer is full.
fn splice_all(k: &Conn, page: &Bytes, got: &mut Vec<u8>) {
    let mut off = 0;
    let mut buf = vec![0u8; 1 << 16];
    let done = k.h.sim.run_while(
        || {
            while off < page.len() {
                match k.c.send_pages(&[page.slice(off..)], 0) {
                    Ok(n) => off += n,
                    Err(e) => {
                        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
                        break;
                    }
                }
            }
            while let Ok(n) = k.s.recv(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            off < page.len()
        },
        Duration::from_secs(60),
    );
    assert!(done, "queued {off} of {}", page.len());
}

#[test]
fn spliced_pages_between_copied_writes_arrive_in_order_through_loss() {
    let k = Conn::new(41, |h| {
        let lossy = Netem {
            delay: common::D,
            loss: Loss::Random(0.02),
            ..Netem::default()
        };
        h.wire.set_netem(0, lossy);
        h.wire.set_netem(1, lossy);
    });
    let mut want = Vec::new();
    let mut got = Vec::new();
    // Sizes around the edges: a byte, less than a segment, more than a TSO packet.
    for (i, size) in [1usize, 700, 1448, 5000, 70_000, 300_000, 3]
        .into_iter()
        .enumerate()
    {
        let copied = pattern(1000 + i, 2 * i);
        let mut off = 0;
        while off < copied.len() {
            match k.c.send(&copied[off..]) {
                Ok(n) => off += n,
                Err(_) => {
                    got.extend(k.read_all());
                    k.h.sim.run_for(Duration::from_millis(1));
                }
            }
        }
        want.extend_from_slice(&copied);
        let page = Bytes::from(pattern(size, 2 * i + 1));
        splice_all(&k, &page, &mut got);
        want.extend_from_slice(&page);
    }
    k.read_to(&mut got, want.len(), Duration::from_secs(60));
    assert_eq!(got.len(), want.len());
    assert!(got == want, "bytes arrived intact and in order");
    // More retransmitted than all the copied bytes together: spliced bytes were.
    let copied_total: usize = (0..7).map(|i| 1000 + i).sum();
    let retrans = k.c.info().bytes_retrans;
    assert!(
        retrans > copied_total as u64,
        "2% loss must have retransmitted spliced bytes: {retrans}"
    );
}

#[test]
fn the_socket_holds_the_page_until_its_bytes_are_acknowledged() {
    let k = Conn::new(42, |_| {});
    k.c.set_opt(SockOpt::SndBuf(1 << 20)).unwrap();
    let page = Bytes::from(pattern(100_000, 1));
    let n = k.c.send_pages(std::slice::from_ref(&page), 0).unwrap();
    assert_eq!(n, page.len());
    // Queued, not copied: the skbs refer to the application's page.
    assert!(!page.is_unique(), "the write queue references the page");
    k.h.sim.run_for(Duration::from_millis(2));
    assert!(k.c.info().unacked > 0);
    assert!(!page.is_unique(), "unacknowledged bytes keep the page");
    k.run_until_acked(Duration::from_secs(5));
    assert_eq!(k.c.info().unacked, 0);
    assert_eq!(k.c.info().notsent_bytes, 0);
    assert!(page.is_unique(), "acknowledged: the socket let the page go");
    // tcpi_bytes_acked counts the SYN, as Linux's does.
    assert_eq!(k.c.info().bytes_acked, 100_001);
}

#[test]
fn many_small_pages_spill_into_new_skbs_when_fragment_slots_run_out() {
    let k = Conn::new(43, |_| {});
    k.c.set_opt(SockOpt::SndBuf(1 << 20)).unwrap();
    // Separate allocations, one fragment each: more than MAX_SKB_FRAGS (17) per skb.
    let pages: Vec<Bytes> = (0..200).map(|i| Bytes::from(pattern(50, i))).collect();
    let n = k.c.send_pages(&pages, 0).unwrap();
    assert_eq!(n, 200 * 50, "every page queued in one call");
    let want: Vec<u8> = pages.iter().flat_map(|p| p.iter().copied()).collect();
    let mut got = Vec::new();
    k.read_to(&mut got, want.len(), Duration::from_secs(5));
    assert!(got == want, "{} of {} bytes intact", got.len(), want.len());
    // 17 fragments of 50 bytes per skb at most: at least 200 / 17 skbs, so at least
    // that many data segments (the skbs are not merged on the way out).
    let segs = k.log.data_out().len();
    assert!(segs >= 200 / 17, "{segs} data segments");
}

#[test]
fn a_full_send_buffer_takes_part_of_a_page_then_eagain() {
    let k = Conn::new(44, |_| {});
    k.c.set_opt(SockOpt::SndBuf(64 * 1024)).unwrap();
    let page = Bytes::from(pattern(4 << 20, 3));
    // The receiver does not read: its window and our send buffer fill.
    let mut queued = 0;
    let mut would_block = false;
    k.h.sim.run_while(
        || {
            match k.c.send_pages(&[page.slice(queued..)], 0) {
                Ok(n) => queued += n,
                Err(e) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
                    would_block = true;
                }
            }
            !would_block
        },
        Duration::from_secs(5),
    );
    assert!(would_block, "EAGAIN once the send buffer is full");
    assert!(queued > 0 && queued < page.len(), "queued {queued}");
    let info = k.c.info();
    // Linux's sndbuf doubles what is asked; the last skb may overshoot by one skb.
    assert!(
        (info.unacked as usize * info.snd_mss as usize) + info.notsent_bytes as usize
            <= info.sndbuf + 70_000,
        "{info:?}"
    );
    // Reading frees room; the rest goes and arrives intact.
    let mut got = Vec::new();
    k.h.sim.run_while(
        || {
            got.extend(k.read_all());
            false
        },
        Duration::from_millis(1),
    );
    let mut rest = Vec::new();
    splice_all(&k, &page.slice(queued..), &mut rest);
    got.extend(rest);
    k.read_to(&mut got, page.len(), Duration::from_secs(30));
    assert!(got == page, "{} of {} bytes intact", got.len(), page.len());
}

#[test]
fn send_pages_errors_are_linuxs() {
    let k = Conn::new(45, |_| {});
    let page = Bytes::from_static(b"late");
    k.c.shutdown(std::net::Shutdown::Write).unwrap();
    let e = k.c.send_pages(std::slice::from_ref(&page), 0).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(32), "EPIPE after shutdown");

    // A datagram socket with no peer: EDESTADDRREQ, as its sendmsg without one.
    let sys = Sys::new(&k.h.a);
    let fd = sys.socket(SockType::Dgram).unwrap();
    let e = sys.send_pages(fd, &[page], 0).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(89), "EDESTADDRREQ");

    // A stream socket that is not connected: EPIPE, as write.
    let fresh = TcpSock::new(&k.h.a);
    let e = fresh
        .send_pages(&[Bytes::from_static(b"x")], 0)
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(32));
}

/// UDP takes pages too (Linux's since 6.5, so `sendfile` to a UDP socket works): one
/// datagram of all of them, to the connected peer.
#[test]
fn send_pages_on_a_connected_udp_socket_sends_one_datagram() {
    let k = Conn::new(46, |_| {});
    let (sa, sb) = (Sys::new(&k.h.a), Sys::new(&k.h.b));
    let rx = sb.socket(SockType::Dgram).unwrap();
    sb.bind(rx, SocketAddrV4::new(ip(10, 0, 0, 2), 9000))
        .unwrap();
    let tx = sa.socket(SockType::Dgram).unwrap();
    sa.connect(tx, SocketAddrV4::new(ip(10, 0, 0, 2), 9000))
        .unwrap();
    let pages = [Bytes::from_static(b"hello, "), Bytes::from_static(b"pages")];
    assert_eq!(sa.send_pages(tx, &pages, 0).unwrap(), 12);
    k.h.sim.run_for(Duration::from_millis(20));
    let mut buf = [0u8; 64];
    let (n, from) = sb.recvfrom(rx, &mut buf, 0x40).unwrap();
    assert_eq!(&buf[..n], b"hello, pages");
    assert_eq!(from.map(|a| *a.ip()), Some(ip(10, 0, 0, 1)));
    // One page (the call's path without a gathered list).
    assert_eq!(
        sa.send_pages(tx, &[Bytes::from_static(b"one")], 0).unwrap(),
        3
    );
    k.h.sim.run_for(Duration::from_millis(20));
    let (n, _) = sb.recvfrom(rx, &mut buf, 0x40).unwrap();
    assert_eq!(&buf[..n], b"one");
}

/// Bytes written after pages that used up the tail skb's fragment slots go to a new
/// skb (Linux checks for a free slot before it copies), not into the tail by
/// linearizing it — which would copy the pages and let them go unsent.
#[test]
fn a_write_after_pages_filling_the_fragment_slots_starts_a_new_skb() {
    let k = Conn::new(47, |_| {});
    // MSG_MORE: corked, so the small skb stays on the write queue.
    let more = usnet::tcp::msg::MORE;
    // A copied write first: the socket's page fragment then has room, and the tail
    // skb one fragment of copied bytes; 16 pages fill its other slots.
    assert_eq!(k.c.send_flags(&[b"before"], more).unwrap(), 6);
    let pages: Vec<Bytes> = (0..16).map(|i| Bytes::from(pattern(10, i))).collect();
    assert_eq!(k.c.send_pages(&pages, more).unwrap(), 160);
    assert_eq!(k.c.send_flags(&[b"after"], more).unwrap(), 5);
    assert!(
        pages.iter().all(|p| !p.is_unique()),
        "the write queue still holds every page"
    );
    k.c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut want = b"before".to_vec();
    want.extend(pages.iter().flat_map(|p| p.iter().copied()));
    want.extend_from_slice(b"after");
    let mut got = Vec::new();
    k.read_to(&mut got, want.len(), Duration::from_secs(5));
    assert!(got == want, "{} of {} bytes intact", got.len(), want.len());
}
