//! Helpers for tests, examples and benchmarks: raw Ethernet frames, a counting packet
//! sink, a fake driver with scriptable back-pressure, and two hosts on a wire.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use usnet_wire::EthernetAddress;

use crate::dev::rx::PacketHandler;
use crate::dev::{NetDevice, NetDeviceConfig, NetDeviceOps, NetdevQueue, NetdevTx};
use crate::drivers::vnic::{Vnic, VnicConfig};
use crate::link::Wire;
use crate::sim::Sim;
use crate::skb::Skb;
use crate::Stack;

/// A local experimental EtherType (IEEE 802 "local experimental 1").
pub const ETH_P_TEST: u16 = 0x88b5;

/// A MAC address `02:00:00:00:00:n` (locally administered).
pub fn mac(n: u8) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 0, 0, n])
}

/// An Ethernet frame of `len` bytes (header included, at least 18) with EtherType
/// [`ETH_P_TEST`] and `seq` in the first four payload bytes.
pub fn test_frame(src: EthernetAddress, dst: EthernetAddress, len: usize, seq: u32) -> Skb {
    let len = len.max(18);
    let mut skb = Skb::alloc(len, 64);
    let d = skb.put(len);
    d[0..6].copy_from_slice(&dst.0);
    d[6..12].copy_from_slice(&src.0);
    d[12..14].copy_from_slice(&ETH_P_TEST.to_be_bytes());
    d[14..18].copy_from_slice(&seq.to_be_bytes());
    skb.protocol = ETH_P_TEST;
    skb
}

/// A packet handler that counts what it receives and remembers the sequence numbers.
#[derive(Default)]
pub struct Sink {
    /// Packets received.
    pub packets: AtomicU64,
    /// Bytes received (network-layer length), counted when recording.
    pub bytes: AtomicU64,
    /// Whether to record sequence numbers.
    pub record: AtomicBool,
    /// Recorded sequence numbers, in arrival order.
    pub seqs: Mutex<Vec<u32>>,
}

impl Sink {
    /// A sink registered for [`ETH_P_TEST`] on `stack`.
    pub fn install(stack: &Stack, record: bool) -> Arc<Sink> {
        let s = Arc::new(Sink::default());
        s.record.store(record, Ordering::Relaxed);
        // A second sink on the same stack keeps the first one's registration.
        let _ = stack.dev_add_pack(ETH_P_TEST, s.clone());
        s
    }

    /// Packets received so far.
    pub fn count(&self) -> u64 {
        self.packets.load(Ordering::Relaxed)
    }
}

impl PacketHandler for Sink {
    fn rcv(&self, _stack: &Stack, _dev: &Arc<NetDevice>, skb: Skb) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        if self.record.load(Ordering::Relaxed) {
            self.bytes.fetch_add(skb.len() as u64, Ordering::Relaxed);
            let mut b = [0u8; 4];
            if skb.copy_bits(0, &mut b) {
                self.seqs.lock().push(u32::from_be_bytes(b));
            }
        }
    }
}

/// A driver that records what it is asked to send and answers BUSY on demand.
#[derive(Default)]
pub struct FakeDriver {
    /// Packets accepted, in order.
    pub sent: Mutex<Vec<Skb>>,
    /// Answer BUSY to this many calls, then accept again.
    pub busy_next: AtomicUsize,
    /// Stop the queue after accepting this many more packets (0: never).
    pub stop_after: AtomicUsize,
    /// Times the driver was called.
    pub calls: AtomicU64,
    /// `xmit_more` hints seen, in order.
    pub more_hints: Mutex<VecDeque<bool>>,
}

impl FakeDriver {
    /// Register a fake Ethernet device on `stack` and open it.
    pub fn create(
        stack: &Stack,
        name: &str,
        tx_queue_len: u32,
        queues: usize,
    ) -> io::Result<(Arc<FakeDriver>, Arc<NetDevice>)> {
        let drv = Arc::new(FakeDriver::default());
        let mut cfg = NetDeviceConfig::ethernet(name, mac(0xfe));
        cfg.tx_queue_len = tx_queue_len;
        cfg.num_tx_queues = queues;
        let dev = stack.devs.register(stack, cfg, drv.clone())?;
        crate::dev::dev_open(stack, &dev)?;
        Ok((drv, dev))
    }

    /// Sequence numbers of the sent test frames, in order.
    pub fn sent_seqs(&self) -> Vec<u32> {
        self.sent
            .lock()
            .iter()
            .map(|s| {
                let d = s.data();
                u32::from_be_bytes([d[14], d[15], d[16], d[17]])
            })
            .collect()
    }
}

impl NetDeviceOps for FakeDriver {
    fn open(&self, _stack: &Stack, dev: &Arc<NetDevice>) -> io::Result<()> {
        for q in dev.txqs.iter() {
            q.start();
        }
        dev.carrier_on();
        Ok(())
    }

    fn stop(&self, _stack: &Stack, _dev: &Arc<NetDevice>) {}

    fn start_xmit(&self, skb: Skb, _dev: &NetDevice, txq: &NetdevQueue) -> NetdevTx {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if self
            .busy_next
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
        {
            return NetdevTx::Busy(skb);
        }
        self.more_hints.lock().push_back(skb.xmit_more);
        self.sent.lock().push(skb);
        if let Ok(1) = self
            .stop_after
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        {
            txq.stop();
        }
        NetdevTx::Ok
    }

    fn driver_name(&self) -> &'static str {
        "fake"
    }
}

/// `a.b.c.d` shorthand.
pub fn ip(a: u8, b: u8, c: u8, d: u8) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::new(a, b, c, d)
}

/// Two hosts `a` and `b`, each with a vnic `eth0`, on one wire, under a simulator.
pub struct TwoHosts {
    /// The simulator.
    pub sim: Sim,
    /// Host a.
    pub a: Stack,
    /// Host b.
    pub b: Stack,
    /// a's NIC device.
    pub da: Arc<NetDevice>,
    /// b's NIC device.
    pub db: Arc<NetDevice>,
    /// a's driver.
    pub va: Vnic,
    /// b's driver.
    pub vb: Vnic,
    /// The wire (a is port 0, b is port 1).
    pub wire: Wire,
}

impl TwoHosts {
    /// Lift byte queue limits on both NICs (a minimum limit of 64 MiB), for tests about
    /// the ring rather than BQL.
    pub fn without_bql(self) -> TwoHosts {
        for d in [&self.da, &self.db] {
            for q in d.txqs.iter() {
                q.dql.set_bounds(64 << 20, crate::dev::bql::DQL_MAX_LIMIT);
            }
        }
        self
    }

    /// Give a 10.0.0.1/24 and b 10.0.0.2/24.
    pub fn with_ip(self) -> TwoHosts {
        crate::ipv4::addr::addr_add(&self.a, &self.da, ip(10, 0, 0, 1), 24).expect("addr a");
        crate::ipv4::addr::addr_add(&self.b, &self.db, ip(10, 0, 0, 2), 24).expect("addr b");
        self
    }

    /// An established TCP connection from a to b's `port` (addresses from
    /// [`TwoHosts::with_ip`]), both ends non-blocking with `TCP_NODELAY`: (client on a,
    /// server on b).
    pub fn tcp_pair(
        &self,
        port: u16,
    ) -> (
        std::sync::Arc<crate::tcp::TcpSock>,
        std::sync::Arc<crate::tcp::TcpSock>,
    ) {
        use crate::tcp::{SockOpt, TcpSock};
        let addr = std::net::SocketAddrV4::new(ip(10, 0, 0, 2), port);
        let l = TcpSock::new(&self.b);
        l.set_nonblocking(true);
        l.bind(addr).expect("bind");
        l.listen(8).expect("listen");
        let c = TcpSock::new(&self.a);
        c.set_nonblocking(true);
        let _ = c.connect(addr);
        self.sim.run_for(std::time::Duration::from_millis(10));
        let s = l.accept().expect("accept");
        s.set_nonblocking(true);
        for k in [&c, &s] {
            k.set_opt(SockOpt::NoDelay(true)).expect("TCP_NODELAY");
        }
        (c, s)
    }

    /// Build with `cfg` applied to both NICs' configurations.
    pub fn new(seed: u64, cfg: impl Fn(&mut VnicConfig)) -> TwoHosts {
        let mut sim = Sim::new(seed);
        let a = sim.add_host("a");
        let b = sim.add_host("b");
        let wire = sim.wire();
        let mut ca = VnicConfig::new("eth0", mac(1));
        let mut cb = VnicConfig::new("eth0", mac(2));
        cfg(&mut ca);
        cfg(&mut cb);
        let va = Vnic::new(ca);
        let vb = Vnic::new(cb);
        va.attach(&wire);
        vb.attach(&wire);
        let da = a
            .devs
            .register(&a, va.netdev_config(), Arc::new(va.clone()))
            .expect("register a");
        let db = b
            .devs
            .register(&b, vb.netdev_config(), Arc::new(vb.clone()))
            .expect("register b");
        crate::dev::dev_open(&a, &da).expect("open a");
        crate::dev::dev_open(&b, &db).expect("open b");
        TwoHosts {
            sim,
            a,
            b,
            da,
            db,
            va,
            vb,
            wire,
        }
    }
}

/// Three hosts in a line, `a — r — b`: a (10.0.1.1/24) and r's eth0 (10.0.1.254/24) on
/// one wire, r's eth1 (10.0.2.254/24) and b (10.0.2.1/24) on another; a and b route
/// everything via r, which forwards.
pub struct Routed {
    /// The simulator.
    pub sim: Sim,
    /// Host a.
    pub a: Stack,
    /// The router.
    pub r: Stack,
    /// Host b.
    pub b: Stack,
    /// a's NIC.
    pub da: Arc<NetDevice>,
    /// r's NIC towards a.
    pub r0: Arc<NetDevice>,
    /// r's NIC towards b.
    pub r1: Arc<NetDevice>,
    /// b's NIC.
    pub db: Arc<NetDevice>,
    /// The a–r wire (a is port 0).
    pub wire_a: Wire,
    /// The r–b wire (r is port 0).
    pub wire_b: Wire,
}

impl Routed {
    /// Build the three hosts with `cfg` applied to every NIC.
    pub fn new(seed: u64, cfg: impl Fn(&mut VnicConfig)) -> Routed {
        use crate::ipv4::addr::addr_add;
        use crate::ipv4::route::FibRoute;
        let mut sim = Sim::new(seed);
        let a = sim.add_host("a");
        let r = sim.add_host("r");
        let b = sim.add_host("b");
        let wire_a = sim.wire();
        let wire_b = sim.wire();
        let mk = |h: &Stack, name: &str, m: u8, w: &Wire| {
            let mut c = VnicConfig::new(name, mac(m));
            cfg(&mut c);
            Vnic::create(h, c, w).expect("vnic")
        };
        let da = mk(&a, "eth0", 1, &wire_a);
        let r0 = mk(&r, "eth0", 0x11, &wire_a);
        let r1 = mk(&r, "eth1", 0x12, &wire_b);
        let db = mk(&b, "eth0", 2, &wire_b);
        addr_add(&a, &da, ip(10, 0, 1, 1), 24).expect("addr");
        addr_add(&r, &r0, ip(10, 0, 1, 254), 24).expect("addr");
        addr_add(&r, &r1, ip(10, 0, 2, 254), 24).expect("addr");
        addr_add(&b, &db, ip(10, 0, 2, 1), 24).expect("addr");
        a.ipv4
            .fib
            .add(FibRoute::unicast(
                ip(0, 0, 0, 0),
                0,
                Some(ip(10, 0, 1, 254)),
                Some(da.ifindex),
            ))
            .expect("route");
        b.ipv4
            .fib
            .add(FibRoute::unicast(
                ip(0, 0, 0, 0),
                0,
                Some(ip(10, 0, 2, 254)),
                Some(db.ifindex),
            ))
            .expect("route");
        r.sysctl.set("net.ipv4.ip_forward", 1).expect("sysctl");
        Routed {
            sim,
            a,
            r,
            b,
            da,
            r0,
            r1,
            db,
            wire_a,
            wire_b,
        }
    }
}

/// One TCP segment seen by a [`SegLog`] (a TSO skb is one entry with its full length).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegRecord {
    /// When it went by.
    pub at: crate::time::Instant,
    /// Sent (true) or received (false) by the device.
    pub outgoing: bool,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (0 without ACK).
    pub ack: u32,
    /// TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10).
    pub flags: u8,
    /// Payload bytes.
    pub len: u32,
    /// Raw window field.
    pub window: u16,
    /// `gso_size` of the skb (0: not a GSO skb).
    pub gso_size: u16,
}

/// The TCP header fields of an Ethernet/IPv4/TCP frame on the wire: (seq, payload
/// length, flags). `None` for anything else. For [`crate::link::Wire::set_drop_filter`].
pub fn tcp_segment(frame: &Skb) -> Option<(u32, u32, u8)> {
    let mut hdr = [0u8; 14 + 60 + 20];
    let avail = frame.len().min(hdr.len());
    if avail < 14 + 40 || !frame.copy_bits(0, &mut hdr[..avail]) {
        return None;
    }
    let ip = &hdr[14..avail];
    if hdr[12..14] != [0x08, 0x00] || ip[9] != 6 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let tot = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let t = ip.get(ihl..ihl + 20)?;
    let doff = usize::from(t[12] >> 4) * 4;
    let seq = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
    Some((seq, tot.saturating_sub(ihl + doff) as u32, t[13]))
}

/// A packet tap that records the TCP segments a device sends and receives, for tests
/// about when and what TCP sends (like `tcpdump -i dev tcp`).
#[derive(Default)]
pub struct SegLog {
    /// Everything recorded, in order.
    pub segs: Mutex<Vec<SegRecord>>,
}

impl SegLog {
    /// Attach a new log to `dev`.
    pub fn attach(dev: &NetDevice) -> Arc<SegLog> {
        let log = Arc::new(SegLog::default());
        dev.add_tap(log.clone());
        log
    }

    /// Outgoing segments carrying data.
    pub fn data_out(&self) -> Vec<SegRecord> {
        self.segs
            .lock()
            .iter()
            .filter(|s| s.outgoing && s.len > 0)
            .copied()
            .collect()
    }

    /// Every segment, both ways, in order.
    pub fn all(&self) -> Vec<SegRecord> {
        self.segs.lock().clone()
    }

    /// Every outgoing segment.
    pub fn out(&self) -> Vec<SegRecord> {
        self.segs
            .lock()
            .iter()
            .filter(|s| s.outgoing)
            .copied()
            .collect()
    }

    /// Forget what was recorded.
    pub fn clear(&self) {
        self.segs.lock().clear();
    }
}

impl crate::dev::rx::PacketTap for SegLog {
    fn tap(
        &self,
        _dev: &NetDevice,
        frame: &Skb,
        mac: usize,
        dir: crate::dev::rx::TapDir,
        now: crate::time::Instant,
    ) {
        // `mac` is an offset in the head buffer: the frame is head[mac..linear end]
        // followed by the page fragments.
        let mut hdr = [0u8; 14 + 60 + 20];
        let lin_end = frame.data_offset() + frame.headlen();
        let lin = frame.head_buf().get(mac..lin_end).unwrap_or(&[]);
        let mut avail = 0;
        for part in std::iter::once(lin).chain(frame.frags().iter().map(|f| &f[..])) {
            let n = part.len().min(hdr.len() - avail);
            hdr[avail..avail + n].copy_from_slice(&part[..n]);
            avail += n;
        }
        if avail < 14 + 40 {
            return;
        }
        let frame_len = lin.len() + frame.data_len();
        let ip = &hdr[14..avail];
        if hdr[12..14] != [0x08, 0x00] || ip[9] != 6 {
            return;
        }
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let tot = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let Some(t) = ip.get(ihl..ihl + 20) else {
            return;
        };
        let doff = usize::from(t[12] >> 4) * 4;
        // A GSO skb's IP total length covers only the first segment: use the skb.
        let l4_len = if frame.gso_size > 0 {
            frame_len.saturating_sub(14 + ihl)
        } else {
            tot.saturating_sub(ihl)
        };
        self.segs.lock().push(SegRecord {
            at: now,
            outgoing: matches!(dir, crate::dev::rx::TapDir::Outgoing),
            seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
            ack: u32::from_be_bytes([t[8], t[9], t[10], t[11]]),
            flags: t[13],
            len: l4_len.saturating_sub(doff) as u32,
            window: u16::from_be_bytes([t[14], t[15]]),
            gso_size: frame.gso_size,
        });
    }
}

/// Two hosts on a wire in real time: each stack runs its own softirq thread
/// (ksoftirqd), so applications use blocking calls from their own threads, as on
/// Linux. a is 10.0.0.1/24, b is 10.0.0.2/24. Stops the threads when dropped.
pub struct RealTwoHosts {
    /// Host a.
    pub a: Stack,
    /// Host b.
    pub b: Stack,
    /// The wire.
    pub wire: Wire,
}

impl RealTwoHosts {
    /// Build and start both hosts.
    pub fn start(seed: u64) -> RealTwoHosts {
        let clock: Arc<dyn crate::time::Clock> = crate::time::RealClock::new();
        let a = Stack::builder()
            .name("a")
            .clock(clock.clone())
            .seed(seed)
            .build();
        let b = Stack::builder()
            .name("b")
            .clock(clock.clone())
            .seed(seed ^ 0x5555)
            .build();
        let wire = Wire::new(clock, seed);
        let da = Vnic::create(&a, VnicConfig::new("eth0", mac(1)), &wire).expect("vnic a");
        let db = Vnic::create(&b, VnicConfig::new("eth0", mac(2)), &wire).expect("vnic b");
        crate::ipv4::addr::addr_add(&a, &da, ip(10, 0, 0, 1), 24).expect("addr a");
        crate::ipv4::addr::addr_add(&b, &db, ip(10, 0, 0, 2), 24).expect("addr b");
        a.start();
        b.start();
        RealTwoHosts { a, b, wire }
    }
}

impl Drop for RealTwoHosts {
    fn drop(&mut self) {
        self.a.stop();
        self.b.stop();
    }
}
