//! TCP between two hosts on the simulator: handshake, data both ways, close.

use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::Duration;

use usnet::tcp::{TcpSock, TcpState};
use usnet::testutil::{ip, TwoHosts};

fn pair(seed: u64) -> (TwoHosts, Arc<TcpSock>, Arc<TcpSock>) {
    // The wire here is infinitely fast: a window's worth of frames lands at once, so
    // the receiving NIC needs a ring that holds it.
    let h = TwoHosts::new(seed, |c| c.rx_ring = 4096).with_ip();
    let l = TcpSock::new(&h.b);
    l.set_nonblocking(true);
    l.bind(SocketAddrV4::new(ip(10, 0, 0, 2), 80)).unwrap();
    l.listen(16).unwrap();
    let c = TcpSock::new(&h.a);
    c.set_nonblocking(true);
    let e = c
        .connect(SocketAddrV4::new(ip(10, 0, 0, 2), 80))
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(115), "EINPROGRESS");
    h.sim.run_for(Duration::from_millis(10));
    assert_eq!(c.state(), TcpState::Established);
    let s = l.accept().expect("accepted");
    s.set_nonblocking(true);
    (h, c, s)
}

#[test]
fn handshake_data_and_close() {
    let (h, c, s) = pair(1);
    assert_eq!(s.state(), TcpState::Established);
    assert_eq!(c.send(b"hello, world").unwrap(), 12);
    h.sim.run_for(Duration::from_millis(10));
    let mut buf = [0u8; 64];
    let n = s.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello, world");
    assert_eq!(s.send(b"pong").unwrap(), 4);
    h.sim.run_for(Duration::from_millis(10));
    let n = c.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"pong");
    c.close();
    h.sim.run_for(Duration::from_millis(10));
    assert_eq!(s.state(), TcpState::CloseWait);
    assert_eq!(s.recv(&mut buf).unwrap(), 0, "EOF");
    s.close();
    h.sim.run_for(Duration::from_millis(300));
    assert_eq!(s.state(), TcpState::Close);
    eprintln!(
        "c state {:?} local {} tw {:?}",
        c.state(),
        c.local_addr(),
        h.a.tcp.tw.entries()
    );
    assert!(h
        .a
        .tcp
        .tw
        .contains(c.local_addr(), SocketAddrV4::new(ip(10, 0, 0, 2), 80)));
    h.sim.run_for(Duration::from_secs(61));
    assert!(h.a.tcp.tw.is_empty(), "TIME_WAIT lasts 60 s");
}

#[test]
fn bulk_transfer_is_intact() {
    let (h, c, s) = pair(2);
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i * 31 + 7) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    h.sim.run_while(
        || {
            while sent < data.len() {
                match c.send(&data[sent..(sent + 100_000).min(data.len())]) {
                    Ok(n) => sent += n,
                    Err(_) => break,
                }
            }
            while let Ok(n) = s.recv(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            got.len() < data.len()
        },
        Duration::from_secs(60),
    );
    assert_eq!(got.len(), data.len());
    assert!(got == data, "bytes differ");
    let info = c.info();
    assert_eq!(info.total_retrans, 0);
}
