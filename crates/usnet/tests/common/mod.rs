//! Shared harness for TCP scenario tests: two hosts with a 5 ms one-way delay, an
//! established connection a → b, and a segment log on a's NIC.
#![allow(dead_code)]

use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::Duration;

use usnet::link::Netem;
use usnet::tcp::{TcpSock, TcpState};
use usnet::testutil::{ip, SegLog, TwoHosts};

/// One-way delay on the wire: the RTT is twice this.
pub const D: Duration = Duration::from_millis(5);
pub const RTT: Duration = Duration::from_millis(10);

pub struct Conn {
    pub h: TwoHosts,
    pub c: Arc<TcpSock>,
    pub s: Arc<TcpSock>,
    /// Segments host a sends and receives.
    pub log: Arc<SegLog>,
}

impl Conn {
    pub fn new(seed: u64, setup: impl Fn(&TwoHosts)) -> Conn {
        let h = TwoHosts::new(seed, |_| {}).with_ip();
        let delayed = Netem {
            delay: D,
            ..Netem::default()
        };
        h.wire.set_netem(0, delayed);
        h.wire.set_netem(1, delayed);
        setup(&h);
        let l = TcpSock::new(&h.b);
        l.set_nonblocking(true);
        l.bind(SocketAddrV4::new(ip(10, 0, 0, 2), 80)).unwrap();
        l.listen(16).unwrap();
        let c = TcpSock::new(&h.a);
        c.set_nonblocking(true);
        let _ = c.connect(SocketAddrV4::new(ip(10, 0, 0, 2), 80));
        let mut s = None;
        h.sim.run_while(
            || {
                s = s.take().or_else(|| l.accept().ok());
                s.is_none() || c.state() != TcpState::Established
            },
            Duration::from_secs(5),
        );
        let s = s.expect("accepted");
        s.set_nonblocking(true);
        // Let the handshake's last ACK settle.
        h.sim.run_for(Duration::from_millis(50));
        let log = SegLog::attach(&h.da);
        Conn { h, c, s, log }
    }

    pub fn drain(&self) -> usize {
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0;
        while let Ok(k) = self.s.recv(&mut buf) {
            if k == 0 {
                break;
            }
            n += k;
        }
        n
    }

    /// Run for `d`, with the receiving application reading all the time.
    pub fn run_reading(&self, d: Duration) -> usize {
        let mut got = 0;
        self.h.sim.run_while(
            || {
                got += self.drain();
                true
            },
            d,
        );
        got
    }
}
