//! SO_REUSEPORT: several listeners share one address and port, and incoming
//! connections are spread over them by a hash of their addresses (Linux's reuseport
//! groups); without the option on every socket, the second bind is EADDRINUSE.

use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::Duration;

use usnet::sock::errno;
use usnet::tcp::{SockOpt, TcpSock, TcpState};
use usnet::testutil::{ip, TwoHosts};

fn listener(h: &TwoHosts, reuseport: bool) -> std::io::Result<Arc<TcpSock>> {
    let l = TcpSock::new(&h.b);
    l.set_nonblocking(true);
    l.set_opt(SockOpt::ReusePort(reuseport))?;
    l.bind(SocketAddrV4::new(ip(10, 0, 0, 2), 80))?;
    l.listen(256)?;
    Ok(l)
}

#[test]
fn without_so_reuseport_on_both_the_second_bind_fails() {
    let h = TwoHosts::new(81, |_| {}).with_ip();
    let _a = listener(&h, false).unwrap();
    let e = listener(&h, true).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(errno::EADDRINUSE));
    let h = TwoHosts::new(82, |_| {}).with_ip();
    let _a = listener(&h, true).unwrap();
    let e = listener(&h, false).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(errno::EADDRINUSE));
}

#[test]
fn connections_are_spread_over_a_reuseport_group() {
    let h = TwoHosts::new(83, |_| {}).with_ip();
    let group = [listener(&h, true).unwrap(), listener(&h, true).unwrap()];
    let n = 200;
    let clients: Vec<Arc<TcpSock>> = (0..n)
        .map(|i| {
            let c = TcpSock::new(&h.a);
            c.set_nonblocking(true);
            let _ = c.connect(SocketAddrV4::new(ip(10, 0, 0, 2), 80));
            if i % 50 == 49 {
                h.sim.run_for(Duration::from_millis(1));
            }
            c
        })
        .collect();
    let mut accepted: [Vec<Arc<TcpSock>>; 2] = [Vec::new(), Vec::new()];
    h.sim.run_while(
        || {
            for (i, l) in group.iter().enumerate() {
                while let Ok(s) = l.accept() {
                    accepted[i].push(s);
                }
            }
            accepted[0].len() + accepted[1].len() < n
        },
        Duration::from_secs(10),
    );
    assert!(clients.iter().all(|c| c.state() == TcpState::Established));
    let (a, b) = (accepted[0].len(), accepted[1].len());
    assert_eq!(a + b, n, "every connection accepted once");
    assert!(a > n / 4 && b > n / 4, "spread: {a} and {b}");
    // Each accepted socket is the other end of a client: a byte from each arrives.
    for c in &clients {
        c.send(&[c.local_addr().port() as u8]).unwrap();
    }
    h.sim.run_for(Duration::from_millis(10));
    for s in accepted.iter().flatten() {
        let mut b = [0u8; 1];
        s.set_nonblocking(true);
        assert_eq!(s.recv(&mut b).unwrap(), 1);
        assert_eq!(b[0], s.peer_addr().unwrap().port() as u8);
    }
}
