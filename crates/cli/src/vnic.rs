//! `--link vnic`: the link commands (`up`, `get`, `send`, `recv`) without root. Our stack
//! gets an emulated NIC (`drivers/vnic`) on an in-memory wire whose other end is a
//! second usnet stack in the same process, the *peer*, running in real time like ours.
//! The peer runs the `--serve` services the real-link commands would find on another
//! host (`--peer-serve`, by default echo, discard, chargen and http), so
//! `usnet get http://10.0.0.1/FILE --link vnic` and `usnet send 10.0.0.1:9 --link vnic`
//! work as they do across a TAP, through every layer of both stacks. The wire applies
//! `--loss`, `--delay` and the NIC line rate `--rate`, as `usnet demo` does.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use usnet::dev::{Features, NetDevice};
use usnet::drivers::vnic::{Vnic, VnicConfig};
use usnet::link::{Loss, Netem, Wire};
use usnet::socket::std_api::TcpStream;
use usnet::time::{Clock, RealClock};
use usnet::Stack;
use usnet_wire::EthernetAddress;

/// Our address when `--addr` is not given with `--link vnic`.
pub const DEFAULT_ADDR: &str = "10.0.0.2/24";

/// The peer's services when `--peer-serve` is not given.
pub const DEFAULT_PEER_SERVE: [&str; 4] = ["echo:7", "discard:9", "chargen:19", "http:80"];

/// The forms `--link` takes, for error messages.
pub const LINK_FORMS: &str = "tap:NAME, afpacket:IFACE, vnic or vnic:PEER_ADDRESS";

/// How to build the in-memory link (from `--link vnic[:PEER]` and the impairment options).
#[derive(Debug, Clone, Default)]
pub struct VnicOpts {
    /// The peer's address (default: [`default_peer`]).
    pub peer: Option<Ipv4Addr>,
    /// Random loss on the wire, both directions, as a probability.
    pub loss: Option<f64>,
    /// One-way delay on the wire.
    pub delay: Option<Duration>,
    /// NIC line rate in bit/s (0 or `None`: as fast as the CPUs go).
    pub rate: Option<u64>,
    /// Queue pairs of both NICs.
    pub queues: usize,
    /// Hardware offloads (checksum, TSO) on both NICs.
    pub offload: bool,
}

/// The other stack of a `--link vnic`.
pub struct Peer {
    /// The peer's stack (softirq thread started).
    pub stack: Stack,
    /// The peer's address (same prefix length as ours).
    pub addr: Ipv4Addr,
    /// The wire between the two NICs (ours is port 0, the peer's port 1).
    pub wire: Wire,
}

impl Peer {
    /// What the wire carried, e.g. `wire: 557 frames to the peer (5 lost), 3660 back (31 lost)`.
    pub fn wire_summary(&self) -> String {
        let get = |port, name| {
            self.wire
                .stats(port)
                .into_iter()
                .find(|(n, _)| *n == name)
                .map_or(0, |(_, v)| v)
        };
        let dir = |port| {
            let (lost, full) = (get(port, "lost"), get(port, "dropped_limit"));
            let full = if full > 0 {
                format!(", {full} dropped at the queue limit")
            } else {
                String::new()
            };
            (get(port, "sent"), format!("({lost} lost{full})"))
        };
        let ((to, to_lost), (back, back_lost)) = (dir(1), dir(0));
        format!("wire: {to} frames to the peer {to_lost}, {back} back {back_lost}")
    }
}

/// `vnic` → no peer address given; `vnic:10.0.0.1` → that one. `None` when `link` is not
/// a vnic link at all.
pub fn parse_link(link: &str) -> Option<Result<Option<Ipv4Addr>, String>> {
    if link == "vnic" {
        return Some(Ok(None));
    }
    let rest = link.strip_prefix("vnic:")?;
    Some(rest.parse::<Ipv4Addr>().map(Some).map_err(|_| {
        format!("--link {link:?}: expected vnic or vnic:PEER_ADDRESS, e.g. vnic:10.0.0.1")
    }))
}

/// The first host address of `addr/plen` (`.1`), or the second when that is ours.
pub fn default_peer(addr: Ipv4Addr, plen: u8) -> Result<Ipv4Addr, String> {
    if plen > 30 {
        return Err(format!(
            "--link vnic: {addr}/{plen} leaves no room for a peer; use a prefix of /30 or shorter"
        ));
    }
    let mask = u32::MAX << (32 - plen);
    let net = u32::from(addr) & mask;
    let first = Ipv4Addr::from(net + 1);
    Ok(if first == addr {
        Ipv4Addr::from(net + 2)
    } else {
        first
    })
}

/// A locally administered MAC derived from an IPv4 address (as `usnet up` picks one).
pub fn mac_for(addr: Ipv4Addr) -> EthernetAddress {
    let o = addr.octets();
    EthernetAddress([0x02, 0x75, o[0], o[1], o[2], o[3]])
}

/// Build our stack `name` and the peer on one in-memory wire; neither is started. Returns
/// our stack, our NIC and the peer (its address already configured).
pub fn build(
    name: &str,
    addr: Ipv4Addr,
    plen: u8,
    mac: EthernetAddress,
    o: &VnicOpts,
) -> Result<(Stack, Arc<NetDevice>, Peer), String> {
    let peer_addr = match o.peer {
        Some(p) => p,
        None => default_peer(addr, plen)?,
    };
    let mask = u32::MAX.checked_shl(32 - u32::from(plen)).unwrap_or(0);
    if peer_addr == addr || u32::from(peer_addr) & mask != u32::from(addr) & mask {
        return Err(format!(
            "--link vnic:{peer_addr}: the peer needs another address inside {addr}/{plen}"
        ));
    }
    let peer_mac = mac_for(peer_addr);
    if peer_mac == mac {
        return Err(format!("--mac: {peer_addr} already uses that address"));
    }
    let clock: Arc<dyn Clock> = RealClock::new();
    let ours = Stack::builder().name(name).clock(clock.clone()).build();
    let peer = Stack::builder().name("peer").clock(clock.clone()).build();
    let wire = Wire::new(clock, 1);
    let netem = Netem {
        delay: o.delay.unwrap_or_default(),
        loss: o.loss.map(Loss::Random).unwrap_or_default(),
        limit: 100_000,
        ..Netem::default()
    };
    wire.set_netem(0, netem);
    wire.set_netem(1, netem);
    let cfg = |m| {
        let mut c = VnicConfig::new("eth0", m);
        c.queues = o.queues.max(1);
        c.line_rate_bps = o.rate.unwrap_or(0);
        if !o.offload {
            c.features = Features::NONE;
        }
        c
    };
    let dev = Vnic::create(&ours, cfg(mac), &wire).map_err(|e| format!("vnic: {e}"))?;
    let pdev = Vnic::create(&peer, cfg(peer_mac), &wire).map_err(|e| format!("peer vnic: {e}"))?;
    usnet::ipv4::addr::addr_add(&peer, &pdev, peer_addr, plen)
        .map_err(|e| format!("peer address: {e}"))?;
    Ok((
        ours,
        dev,
        Peer {
            stack: peer,
            addr: peer_addr,
            wire,
        },
    ))
}

/// The impairments, as `usnet demo` lists them.
pub fn describe(o: &VnicOpts) -> String {
    let netem = Netem {
        delay: o.delay.unwrap_or_default(),
        loss: o.loss.map(Loss::Random).unwrap_or_default(),
        ..Netem::default()
    };
    crate::demo::describe(&netem, o.rate.filter(|r| *r > 0))
}

/// `usnet up --link vnic --self-test`: the peer uses each of our services once, as a
/// client on another host would; prints one line per service, returns whether all
/// answered correctly.
pub fn self_test(peer: &Stack, ours: Ipv4Addr, services: &[String]) -> bool {
    let mut ok = true;
    for spec in services {
        let mut parts = spec.splitn(3, ':');
        let kind = parts.next().unwrap_or_default();
        let Some(port) = parts.next().and_then(|p| p.parse::<u16>().ok()) else {
            continue;
        };
        let at = SocketAddrV4::new(ours, port);
        let r = match kind {
            "echo" => check_echo(peer, at),
            "discard" => check_discard(peer, at),
            "chargen" => check_chargen(peer, at),
            "http" => check_http(peer, at),
            _ => {
                println!(
                    "self-test: {kind}:{port} not checked (use its own client, e.g. iperf3 -c)"
                );
                continue;
            }
        };
        match r {
            Ok(what) => println!("self-test: {kind}:{port} ok: {what}"),
            Err(e) => {
                println!("self-test: {kind}:{port} FAILED: {e}");
                ok = false;
            }
        }
    }
    ok
}

fn connect(peer: &Stack, at: SocketAddrV4) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect(peer, at)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    Ok(s)
}

fn check_echo(peer: &Stack, at: SocketAddrV4) -> std::io::Result<String> {
    let s = connect(peer, at)?;
    let sent: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut back = vec![0u8; sent.len()];
    std::thread::scope(|sc| {
        let mut w = &s;
        let writer = sc.spawn(move || w.write_all(&sent));
        let mut r = &s;
        let r = r.read_exact(&mut back);
        writer.join().unwrap_or(Ok(())).and(r)
    })?;
    if back.iter().enumerate().any(|(i, b)| *b != (i % 251) as u8) {
        return Err(std::io::Error::other("echoed bytes differ"));
    }
    Ok(format!("{} bytes echoed intact", back.len()))
}

fn check_discard(peer: &Stack, at: SocketAddrV4) -> std::io::Result<String> {
    let mut s = connect(peer, at)?;
    let n = 1 << 20;
    s.write_all(&vec![0x5a; n])?;
    s.shutdown(std::net::Shutdown::Write)?;
    match s.read(&mut [0u8; 1])? {
        0 => Ok(format!("{n} bytes taken, connection closed")),
        _ => Err(std::io::Error::other("discard sent data back")),
    }
}

fn check_chargen(peer: &Stack, at: SocketAddrV4) -> std::io::Result<String> {
    let mut s = connect(peer, at)?;
    let mut line = [0u8; 74];
    s.read_exact(&mut line)?;
    // RFC 864: the first line is the 72 characters from ' ', then CR LF.
    let want: Vec<u8> = (0..72u8).map(|i| b' ' + i).chain(*b"\r\n").collect();
    if line[..] != want[..] {
        return Err(std::io::Error::other("first line is not RFC 864's"));
    }
    Ok("first RFC 864 line received".into())
}

fn check_http(peer: &Stack, at: SocketAddrV4) -> std::io::Result<String> {
    let s = connect(peer, at)?;
    let mut w = &s;
    write!(
        w,
        "HEAD / HTTP/1.1\r\nHost: {at}\r\nConnection: close\r\n\r\n"
    )?;
    let mut status = String::new();
    BufReader::new(&s).read_line(&mut status)?;
    if !status.starts_with("HTTP/1.1 ") {
        return Err(std::io::Error::other(format!(
            "not an HTTP response: {:?}",
            status.trim_end()
        )));
    }
    Ok(format!("HEAD / answered {:?}", status.trim_end()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_forms_parse_and_bad_ones_say_what_is_expected() {
        assert_eq!(parse_link("vnic"), Some(Ok(None)));
        assert_eq!(
            parse_link("vnic:10.1.2.3"),
            Some(Ok(Some(Ipv4Addr::new(10, 1, 2, 3))))
        );
        assert!(parse_link("vnic:nope").is_some_and(|r| r.is_err()));
        assert_eq!(parse_link("tap:usnet0"), None);
        assert_eq!(parse_link("vnicx"), None);
    }

    #[test]
    fn the_default_peer_is_the_first_host_unless_that_is_us() {
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(default_peer(a("10.0.0.2"), 24), Ok(a("10.0.0.1")));
        assert_eq!(default_peer(a("10.0.0.1"), 24), Ok(a("10.0.0.2")));
        assert_eq!(default_peer(a("192.168.7.9"), 16), Ok(a("192.168.0.1")));
        assert!(default_peer(a("10.0.0.1"), 31).is_err());
    }

    #[test]
    fn a_peer_outside_our_subnet_or_on_our_address_is_refused() {
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let mac = mac_for(a("10.0.0.2"));
        for p in ["10.0.0.2", "10.0.1.1"] {
            let o = VnicOpts {
                peer: Some(a(p)),
                queues: 1,
                ..VnicOpts::default()
            };
            assert!(build("t", a("10.0.0.2"), 24, mac, &o).is_err(), "{p}");
        }
    }
}
