//! `usnet up`: a stack on a real link, kept running, with built-in services for testing
//! against real clients; and `usnet get`, an HTTP client over usnet. Every link command
//! also runs on `--link vnic`, an in-process peer stack on an emulated wire (`vnic.rs`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use sha2::{Digest, Sha256};
use usnet::dev::NetDevice;
use usnet::drivers::afpacket::AfPacket;
use usnet::drivers::tap::Tap;
use usnet::ipv4::route::FibRoute;
use usnet::socket::std_api::{TcpListener, TcpStream, UdpSocket};
use usnet::Stack;
use usnet_wire::EthernetAddress;

/// Where and how to attach a stack.
#[derive(Args, Debug, Clone)]
pub struct LinkArgs {
    /// The link: `tap:NAME` (a TAP interface, created if needed), `afpacket:IFACE`
    /// (AF_PACKET rings on an existing interface, such as a veth end without an
    /// address; the other side must not send GSO frames: `ethtool -K PEER tso off gso off`),
    /// or `vnic[:PEER_ADDRESS]` (no root needed: an emulated NIC on an in-memory wire to a
    /// second usnet stack in this process, the peer, at PEER_ADDRESS — by default the first
    /// host address of --addr's subnet, 10.0.0.1 — running the --peer-serve services).
    #[arg(long)]
    link: String,
    /// Open the link inside this network namespace (`/var/run/netns/NAME`).
    #[arg(long)]
    netns: Option<PathBuf>,
    /// Our address and prefix, e.g. `10.0.0.2/24` (required for tap: and afpacket:;
    /// with vnic the default is 10.0.0.2/24).
    #[arg(long)]
    addr: Option<String>,
    /// Default gateway.
    #[arg(long)]
    gw: Option<Ipv4Addr>,
    /// MAC address (default: a locally administered one derived from the address).
    #[arg(long)]
    mac: Option<String>,
    /// TAP queues (`IFF_MULTI_QUEUE`): one descriptor and reader thread each; with vnic,
    /// the NICs' queue pairs.
    #[arg(long, default_value_t = 1)]
    queues: usize,
    /// Open the TAP without offloads (no virtio header: usnet segments and checksums
    /// every frame itself, and so does the kernel); with vnic, NICs without checksum
    /// offload and TSO.
    #[arg(long)]
    no_offload: bool,
    /// The peer's services, comma separated, as --serve takes them, or `none`
    /// [default: echo:7,discard:9,chargen:19,http:80 (files from the current directory)].
    #[arg(long, value_delimiter = ',', help_heading = LINK_VNIC)]
    peer_serve: Vec<String>,
    /// Random loss on the wire, both directions, in percent (`1` or `1%`).
    #[arg(long, value_parser = usnet::util::parse_percent, help_heading = LINK_VNIC)]
    loss: Option<f64>,
    /// One-way delay on the wire (`5ms`): the RTT is twice this.
    #[arg(long, value_parser = usnet::util::parse_time, help_heading = LINK_VNIC)]
    delay: Option<Duration>,
    /// NIC line rate (`1gbit`, `100mbit`) [default: as fast as the CPUs go].
    #[arg(long, value_parser = usnet::util::parse_rate, help_heading = LINK_VNIC)]
    rate: Option<u64>,
}

/// The help heading of the options that only `--link vnic` takes.
const LINK_VNIC: &str = "In-process link (--link vnic, no root)";

/// A stack brought up on a link: ours, and with `--link vnic` the peer at the wire's
/// other end.
pub struct Host {
    /// Our stack (softirq thread started).
    pub stack: Stack,
    /// Our address.
    pub addr: Ipv4Addr,
    /// Our prefix length.
    pub plen: u8,
    /// The in-process peer of a `--link vnic`, its services started.
    pub peer: Option<crate::vnic::Peer>,
    /// What the peer serves, as the services describe themselves.
    pub peer_services: Vec<String>,
}

impl Host {
    /// With `--link vnic`, print what the wire carried (frames, losses) on stderr as
    /// `usnet CMD: wire: ...`.
    pub fn report_wire(&self, cmd: &str) {
        if let Some(p) = &self.peer {
            eprintln!("usnet {cmd}: {}", p.wire_summary());
        }
    }

    /// Stop the softirq threads of our stack and the peer's.
    pub fn stop(&self) {
        self.stack.stop();
        if let Some(p) = &self.peer {
            p.stack.stop();
        }
    }

    /// `tap:usnet0`, or `vnic (peer 10.0.0.1 serving echo:7, ...; impairments: loss 1%)`.
    pub fn describe_link(&self, l: &LinkArgs) -> String {
        match &self.peer {
            None => l.link.clone(),
            Some(p) => format!(
                "vnic (peer {} serving {}; impairments: {})",
                p.addr,
                if self.peer_services.is_empty() {
                    "nothing".to_string()
                } else {
                    self.peer_services.join(", ")
                },
                crate::vnic::describe(&l.vnic_opts(None))
            ),
        }
    }
}

impl LinkArgs {
    fn vnic_opts(&self, peer: Option<Ipv4Addr>) -> crate::vnic::VnicOpts {
        crate::vnic::VnicOpts {
            peer,
            loss: self.loss,
            delay: self.delay,
            rate: self.rate,
            queues: self.queues,
            offload: !self.no_offload,
        }
    }

    /// Whether this is a `--link vnic`.
    pub fn is_vnic(&self) -> bool {
        crate::vnic::parse_link(&self.link).is_some()
    }
}

/// Options of `usnet up`.
#[derive(Args, Debug)]
#[command(after_help = "EXAMPLES:\n  \
    sudo usnet up --link tap:usnet0 --addr 10.0.0.2/24 --serve echo:7,discard:9,chargen:19,http:80:/srv/www,iperf3:5201\n  \
    (then, after `ip addr add 10.0.0.1/24 dev usnet0; ip link set usnet0 up`:\n   curl http://10.0.0.2/file ; ping 10.0.0.2)\n  \
    usnet up --link vnic --serve echo:7,discard:9,chargen:19,http:80 --self-test\n  \
    (no root: the in-process peer 10.0.0.1 uses each service once over an emulated NIC)\n  \
    usnet up --link vnic --loss 1% --delay 5ms --serve http:80 --ctl /tmp/usnet.sock --for 60\n  \
    (then: usnet ss --ctl /tmp/usnet.sock -tl)")]
pub struct UpArgs {
    #[command(flatten)]
    link: LinkArgs,
    /// Services, comma separated: `echo:PORT`, `discard:PORT`, `chargen:PORT`,
    /// `http:PORT[:DIR]` (static files from DIR, default the current directory),
    /// `iperf3:PORT` (a server the stock `iperf3 -c` client measures, TCP, also `-R`).
    #[arg(long, value_delimiter = ',')]
    serve: Vec<String>,
    /// Stop after this many seconds (default: run until killed).
    #[arg(long = "for")]
    duration: Option<u64>,
    /// Serve the inspection commands (usnet ss/netstat/route/...) on this Unix socket.
    #[arg(long)]
    ctl: Option<PathBuf>,
    /// With --link vnic: the peer connects to each --serve service once (echo, discard,
    /// chargen, http), checks the answer and prints a line each; then exit (0 if all
    /// answered correctly).
    #[arg(long, help_heading = LINK_VNIC)]
    self_test: bool,
}

/// Options of `usnet get`.
#[derive(Args, Debug)]
#[command(after_help = "EXAMPLES:\n  \
    sudo usnet get http://10.0.0.1:8000/file -o file --link tap:usnet0 --addr 10.0.0.2/24\n  \
    usnet get http://10.0.0.1/file -o copy --link vnic\n  \
    (no root: from the in-process peer 10.0.0.1, whose http:80 serves the current directory)\n  \
    usnet get http://10.0.0.1/file -o file --link vnic --peer-serve http:80:/srv/www --loss 1% --delay 1ms")]
pub struct GetArgs {
    /// `http://HOST[:PORT]/PATH` (HOST an IPv4 address).
    url: String,
    /// Write the body here (default: standard output).
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    link: LinkArgs,
}

fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (a, l) = s
        .split_once('/')
        .ok_or_else(|| format!("--addr {s:?}: expected ADDRESS/PREFIX, e.g. 10.0.0.2/24"))?;
    let a: Ipv4Addr = a.parse().map_err(|e| format!("--addr {s:?}: {e}"))?;
    let l: u8 = l
        .parse()
        .ok()
        .filter(|l| *l <= 32)
        .ok_or_else(|| format!("--addr {s:?}: prefix length must be 0..=32"))?;
    Ok((a, l))
}

fn parse_mac(s: &str) -> Result<EthernetAddress, String> {
    let b: Vec<u8> = s
        .split(':')
        .map(|x| u8::from_str_radix(x, 16))
        .collect::<Result<_, _>>()
        .map_err(|_| format!("--mac {s:?}: expected six hex bytes like 02:00:00:00:00:01"))?;
    <[u8; 6]>::try_from(b)
        .map(EthernetAddress)
        .map_err(|_| format!("--mac {s:?}: expected six bytes"))
}

/// Bring a stack up on the link (softirq thread started); with `--link vnic` also the
/// peer, with its `--peer-serve` services.
pub fn bring_up(l: &LinkArgs) -> Result<Host, String> {
    let vnic = match crate::vnic::parse_link(&l.link) {
        Some(r) => Some(r?),
        None if l.link.starts_with("tap:") || l.link.starts_with("afpacket:") => None,
        None => {
            return Err(format!(
                "--link {:?}: supported links are {}",
                l.link,
                crate::vnic::LINK_FORMS
            ))
        }
    };
    if vnic.is_none() {
        for (given, name) in [
            (!l.peer_serve.is_empty(), "--peer-serve"),
            (l.loss.is_some(), "--loss"),
            (l.delay.is_some(), "--delay"),
            (l.rate.is_some(), "--rate"),
        ] {
            if given {
                return Err(format!(
                    "{name} applies to --link vnic only (the in-process peer and its wire)"
                ));
            }
        }
    } else if l.netns.is_some() {
        return Err("--netns applies to tap: and afpacket: links, not vnic".into());
    }
    let cidr = match (&l.addr, vnic.is_some()) {
        (Some(a), _) => a.as_str(),
        (None, true) => crate::vnic::DEFAULT_ADDR,
        (None, false) => {
            return Err(format!(
                "--link {}: needs --addr ADDRESS/PREFIX, e.g. --addr 10.0.0.2/24",
                l.link
            ))
        }
    };
    let (addr, plen) = parse_cidr(cidr)?;
    let mac = match &l.mac {
        Some(m) => parse_mac(m)?,
        None => crate::vnic::mac_for(addr),
    };
    let (stack, dev, peer) = if let Some(peer_addr) = vnic {
        let (stack, dev, peer) =
            crate::vnic::build("usnet", addr, plen, mac, &l.vnic_opts(peer_addr))?;
        (stack, dev, Some(peer))
    } else {
        let (stack, dev) = open_real_link(l, mac)?;
        (stack, dev, None)
    };
    usnet::ipv4::addr::addr_add(&stack, &dev, addr, plen).map_err(|e| format!("address: {e}"))?;
    if let Some(gw) = l.gw {
        stack
            .ipv4
            .fib
            .add(FibRoute::unicast(
                Ipv4Addr::UNSPECIFIED,
                0,
                Some(gw),
                Some(dev.ifindex),
            ))
            .map_err(|e| format!("default route via {gw}: {e}"))?;
    }
    stack.start();
    let mut host = Host {
        stack,
        addr,
        plen,
        peer: None,
        peer_services: Vec::new(),
    };
    if let Some(peer) = peer {
        peer.stack.start();
        let specs: Vec<String> = if l.peer_serve.is_empty() {
            crate::vnic::DEFAULT_PEER_SERVE.map(String::from).to_vec()
        } else {
            l.peer_serve
                .iter()
                .filter(|s| *s != "none")
                .cloned()
                .collect()
        };
        let who = peer.addr;
        let report: Report = Arc::new(move |msg: &str| eprintln!("peer {who}: {msg}"));
        for spec in &specs {
            match start_service(&peer.stack, peer.addr, spec, Some(report.clone())) {
                Ok(d) => host.peer_services.push(d),
                Err(e) => {
                    host.stack.stop();
                    peer.stack.stop();
                    return Err(format!("--peer-serve {spec:?}: {e}"));
                }
            }
        }
        host.peer = Some(peer);
    }
    Ok(host)
}

/// Our stack on a TAP or AF_PACKET link, not yet started.
fn open_real_link(l: &LinkArgs, mac: EthernetAddress) -> Result<(Stack, Arc<NetDevice>), String> {
    enum Link {
        Tap(std::sync::Arc<Tap>),
        AfPacket(std::sync::Arc<AfPacket>),
    }
    let hint = |e: &std::io::Error| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            "\n  run it as root, or without root in a user and network namespace of its own:\n    unshare -rn usnet up --link tap:usnet0 --addr 10.0.0.2/24 ...\n  or use the in-process link, which needs no privileges: --link vnic"
        } else {
            ""
        }
    };
    let link = if let Some(name) = l.link.strip_prefix("tap:") {
        let offload = !l.no_offload;
        let tap = match &l.netns {
            Some(ns) => Tap::open_multiqueue_in_netns(name, l.queues, offload, ns),
            None => Tap::open_multiqueue(name, l.queues, offload),
        }
        .map_err(|e| format!("cannot open TAP {name}: {e}{}", hint(&e)))?;
        Link::Tap(tap)
    } else if let Some(name) = l.link.strip_prefix("afpacket:") {
        let afp = match &l.netns {
            Some(ns) => AfPacket::open_in_netns(name, ns),
            None => AfPacket::open(name),
        }
        .map_err(|e| format!("cannot open AF_PACKET rings on {name}: {e}{}", hint(&e)))?;
        Link::AfPacket(afp)
    } else {
        return Err(format!(
            "--link {:?}: supported links are {}",
            l.link,
            crate::vnic::LINK_FORMS
        ));
    };
    let stack = Stack::builder().name("usnet").build();
    let dev = match &link {
        Link::Tap(tap) => Tap::create(&stack, tap, "eth0", mac),
        Link::AfPacket(afp) => AfPacket::create(&stack, afp, "eth0", mac),
    }
    .map_err(|e| format!("register: {e}"))?;
    Ok((stack, dev))
}

/// Run `usnet up`; returns the exit status.
pub fn run_up(a: UpArgs) -> i32 {
    if a.self_test && !a.link.is_vnic() {
        eprintln!("usnet up: --self-test needs --link vnic (the peer is the client)");
        return 2;
    }
    let host = match bring_up(&a.link) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("usnet up: {e}");
            return 1;
        }
    };
    let (stack, addr, plen) = (&host.stack, host.addr, host.plen);
    if let Some(ctl) = &a.ctl {
        if let Err(e) = crate::views::serve(stack.clone(), ctl) {
            eprintln!("usnet up: --ctl {}: {e}", ctl.display());
            host.stop();
            return 1;
        }
    }
    let mut started = Vec::new();
    for spec in &a.serve {
        match start_service(stack, addr, spec, None) {
            Ok(d) => started.push(d),
            Err(e) => {
                eprintln!("usnet up: --serve {spec:?}: {e}");
                host.stop();
                return 2;
            }
        }
    }
    println!(
        "usnet up: {addr}/{plen} on {}{}; serving {}",
        host.describe_link(&a.link),
        a.link.gw.map(|g| format!(" via {g}")).unwrap_or_default(),
        if started.is_empty() {
            "nothing".to_string()
        } else {
            started.join(", ")
        }
    );
    let _ = std::io::stdout().flush();
    if let (true, Some(peer)) = (a.self_test, &host.peer) {
        let ok = crate::vnic::self_test(&peer.stack, addr, &a.serve);
        host.stop();
        return if ok { 0 } else { 1 };
    }
    match a.duration {
        Some(s) => std::thread::sleep(Duration::from_secs(s)),
        None => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
    }
    host.stop();
    0
}

/// Where a service tells about each connection it finished (the in-process peer of a
/// `--link vnic` prints it, so a client command can show what the other end saw).
pub type Report = Arc<dyn Fn(&str) + Send + Sync>;

/// Start the service `spec` (`KIND:PORT[:DIR]`) on `stack` at `addr`; returns how it
/// describes itself. With `report`, discard reports the bytes and SHA-256 of each
/// connection it took in.
pub fn start_service(
    stack: &Stack,
    addr: Ipv4Addr,
    spec: &str,
    report: Option<Report>,
) -> Result<String, String> {
    let mut parts = spec.splitn(3, ':');
    let kind = parts.next().unwrap_or_default();
    let port: u16 = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| "expected KIND:PORT, e.g. echo:7".to_string())?;
    let extra = parts.next().map(str::to_string);
    let at = SocketAddrV4::new(addr, port);
    let listener = TcpListener::bind(stack, at).map_err(|e| format!("bind {at}: {e}"))?;
    if kind == "iperf3" {
        std::thread::spawn(move || crate::iperf::serve(listener));
        return Ok(format!("iperf3:{port}"));
    }
    let kind_owned = kind.to_string();
    let root = PathBuf::from(extra.clone().unwrap_or_else(|| ".".into()));
    let handler: Arc<dyn Fn(TcpStream, SocketAddrV4) + Send + Sync> = match kind {
        "echo" => {
            let u = UdpSocket::bind(stack, at).map_err(|e| format!("bind udp {at}: {e}"))?;
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while let Ok((n, from)) = u.recv_from(&mut buf) {
                    let _ = u.send_to(&buf[..n], from);
                }
            });
            Arc::new(|mut s: TcpStream, _| {
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            })
        }
        "discard" => Arc::new(move |mut s: TcpStream, from| {
            let mut buf = vec![0u8; 65536];
            let Some(report) = &report else {
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                return;
            };
            let (mut n, mut h) = (0u64, Sha256::new());
            let end = loop {
                match s.read(&mut buf) {
                    Ok(0) => break "end of stream".to_string(),
                    Ok(k) => {
                        h.update(&buf[..k]);
                        n += k as u64;
                    }
                    Err(e) => break e.to_string(),
                }
            };
            let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
            report(&format!(
                "discard:{port} received {n} bytes from {from} ({end}) sha256 {hex}"
            ));
        }),
        "chargen" => Arc::new(|mut s: TcpStream, _| {
            // RFC 864: rotating 72-character lines of printable ASCII.
            let mut line = 0usize;
            loop {
                let mut block = Vec::with_capacity(74 * 64);
                for _ in 0..64 {
                    for i in 0..72 {
                        block.push(b' ' + ((line + i) % 95) as u8);
                    }
                    block.extend_from_slice(b"\r\n");
                    line += 1;
                }
                if s.write_all(&block).is_err() {
                    break;
                }
            }
        }),
        "http" => {
            let root = root.clone();
            Arc::new(move |s: TcpStream, _| serve_http(s, &root))
        }
        other => {
            return Err(format!(
                "unknown service {other:?} (echo, discard, chargen, http, iperf3)"
            ))
        }
    };
    std::thread::spawn(move || {
        while let Ok((s, from)) = listener.accept() {
            let h = handler.clone();
            std::thread::spawn(move || h(s, from));
        }
    });
    Ok(match (kind_owned.as_str(), extra) {
        ("http", Some(d)) => format!("http:{port} ({d})"),
        _ => format!("{kind_owned}:{port}"),
    })
}

/// HTTP/1.1 static files with keep-alive: GET and HEAD.
fn serve_http(s: TcpStream, root: &Path) {
    let mut reader = BufReader::new(&s);
    let mut out = &s;
    loop {
        let mut request = String::new();
        if reader.read_line(&mut request).unwrap_or(0) == 0 {
            return;
        }
        let mut close = false;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if h.to_ascii_lowercase().starts_with("connection:")
                && h.to_ascii_lowercase().contains("close")
            {
                close = true;
            }
        }
        let mut it = request.split_whitespace();
        let (method, path, version) = (
            it.next().unwrap_or(""),
            it.next().unwrap_or("/"),
            it.next().unwrap_or(""),
        );
        if version == "HTTP/1.0" {
            close = true;
        }
        let file = safe_path(root, path);
        let resp = match (
            method,
            file.as_ref().and_then(|p| std::fs::File::open(p).ok()),
        ) {
            ("GET" | "HEAD", Some(f)) if f.metadata().map(|m| m.is_file()).unwrap_or(false) => {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nContent-Type: application/octet-stream\r\nServer: usnet\r\n{}\r\n",
                    if close { "Connection: close\r\n" } else { "" }
                );
                if out.write_all(head.as_bytes()).is_err() {
                    return;
                }
                if method == "GET" {
                    // sendfile: read into buffers the stack sends uncopied.
                    let mut f = f;
                    if s.sendfile(&mut f, Some(len)).map_or(true, |n| n != len) {
                        return;
                    }
                }
                Ok(())
            }
            ("GET" | "HEAD", _) => Err("404 Not Found"),
            _ => Err("405 Method Not Allowed"),
        };
        if let Err(status) = resp {
            let body = format!("{status}\n");
            let msg = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
                body.len()
            );
            if out.write_all(msg.as_bytes()).is_err() {
                return;
            }
        }
        if close {
            let _ = s.shutdown(std::net::Shutdown::Write);
            return;
        }
    }
}

/// The file under `root` a URL path names; `None` for paths escaping it.
fn safe_path(root: &Path, url: &str) -> Option<PathBuf> {
    let path = url.split(['?', '#']).next().unwrap_or("/");
    let rel = Path::new(path.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(root.join(rel))
}

/// Run `usnet get`; returns the exit status.
pub fn run_get(a: GetArgs) -> i32 {
    let Some(rest) = a.url.strip_prefix("http://") else {
        eprintln!("usnet get: only http:// URLs are supported");
        return 2;
    };
    let (hostport, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let (host, port) = hostport
        .split_once(':')
        .map_or((hostport, 80u16), |(h, p)| (h, p.parse().unwrap_or(80)));
    let Ok(ip) = host.parse::<Ipv4Addr>() else {
        eprintln!("usnet get: {host:?} is not an IPv4 address (usnet has no DNS resolver)");
        return 2;
    };
    let host = match bring_up(&a.link) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("usnet get: {e}");
            return 1;
        }
    };
    let stack = &host.stack;
    let t0 = Instant::now();
    let r = (|| -> std::io::Result<u64> {
        let s = TcpStream::connect(stack, SocketAddrV4::new(ip, port))?;
        let mut w = &s;
        write!(w, "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\nUser-Agent: usnet\r\n\r\n")?;
        let mut reader = BufReader::with_capacity(1 << 16, &s);
        let mut status = String::new();
        reader.read_line(&mut status)?;
        if status.split_whitespace().nth(1).is_none_or(|c| c != "200") {
            return Err(std::io::Error::other(format!(
                "server said {}",
                status.trim_end()
            )));
        }
        let mut len = None;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse::<u64>().ok();
            }
        }
        let mut sink: Box<dyn Write> = match &a.output {
            Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p)?)),
            None => Box::new(std::io::stdout()),
        };
        let n = match len {
            Some(l) => std::io::copy(&mut reader.take(l), &mut sink)?,
            None => std::io::copy(&mut reader, &mut sink)?,
        };
        sink.flush()?;
        if len.is_some_and(|l| l != n) {
            return Err(std::io::Error::other(format!(
                "short body: {n} of {len:?} bytes"
            )));
        }
        Ok(n)
    })();
    host.stop();
    let code = match r {
        Ok(n) => {
            let s = t0.elapsed().as_secs_f64();
            eprintln!(
                "usnet get: {n} bytes in {s:.2} s ({:.2} Gbit/s)",
                n as f64 * 8.0 / s / 1e9
            );
            0
        }
        Err(e) => {
            eprintln!("usnet get: {e}");
            1
        }
    };
    host.report_wire("get");
    code
}
