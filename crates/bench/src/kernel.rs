//! The Linux kernel's side: TCP over a veth pair between two network namespaces this
//! process makes (root needed; removed afterwards), across usnet's userspace relay
//! between two TAPs when the path must be impaired (this kernel has no netem), and over
//! loopback. The peers are this binary again (`usnet bench-peer`), run inside the
//! namespaces with `ip netns exec`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use usnet::drivers::relay::Relay;
use usnet::drivers::tap::Tap;
use usnet::link::Netem;

/// Two namespaces with the kernel at 10.77.0.1 and 10.77.0.2, joined by a veth pair
/// or by the relay; deleted on drop.
pub struct Veth {
    a: String,
    b: String,
    relay: Option<Relay>,
    /// Congestion control the source sets on its socket (`TCP_CONGESTION`).
    cc: Option<String>,
}

/// Run `ip ARGS`; its error output on failure.
pub(crate) fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e} (install iproute2)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Veth {
    /// Make the namespaces and the link with `mtu`; an error (not root, no `ip`) says
    /// why.
    pub fn new(mtu: u32) -> Result<Veth, String> {
        Veth::tagged(mtu, "")
    }

    /// As [`Veth::new`], the namespaces' names marked with `tag` so that several
    /// pairs of one MTU can exist at once.
    fn tagged(mtu: u32, tag: &str) -> Result<Veth, String> {
        let id = std::process::id();
        let v = Veth {
            a: format!("usbench-a{mtu}{tag}-{id}"),
            b: format!("usbench-b{mtu}{tag}-{id}"),
            relay: None,
            cc: None,
        };
        ip(&["netns", "add", &v.a])?;
        ip(&["netns", "add", &v.b])?;
        let mtu = mtu.to_string();
        for (ns, other, addr) in [(&v.a, &v.b, "10.77.0.1/24"), (&v.b, &v.a, "10.77.0.2/24")] {
            if ns == &v.a {
                ip(&[
                    "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
                    "netns", other,
                ])?;
            }
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "link", "set", "eth0", "mtu", &mtu, "up"])?;
            ip(&["-n", ns, "addr", "add", addr, "dev", "eth0"])?;
        }
        Ok(v)
    }

    /// Two namespaces whose TAPs (MTU 1500, no offloads: the kernel sends MTU-sized
    /// frames) are joined by usnet's relay applying `imp` both ways; the sender uses
    /// congestion control `cc` (set per socket: a namespace's default may only be one
    /// of `tcp_allowed_congestion_control`).
    pub fn relayed(imp: Netem, cc: &str) -> Result<Veth, String> {
        // Named by the congestion control too: one pair per lossy case exists at once.
        let id = std::process::id();
        let mut v = Veth {
            a: format!("usbench-ra-{cc}-{id}"),
            b: format!("usbench-rb-{cc}-{id}"),
            relay: None,
            cc: Some(cc.to_string()),
        };
        ip(&["netns", "add", &v.a])?;
        ip(&["netns", "add", &v.b])?;
        let mut taps = Vec::new();
        for (ns, addr) in [(&v.a, "10.77.0.1/24"), (&v.b, "10.77.0.2/24")] {
            let path = format!("/var/run/netns/{ns}");
            taps.push(Tap::open_in_netns("eth0", Path::new(&path)).map_err(|e| e.to_string())?);
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", ns, "addr", "add", addr, "dev", "eth0"])?;
        }
        let b = taps.pop().ok_or("tap")?;
        let a = taps.pop().ok_or("tap")?;
        v.relay = Some(Relay::start(a, b, imp, imp, u64::from(id)).map_err(|e| e.to_string())?);
        Ok(v)
    }

    /// As [`Veth::new`], with BIG TCP on both ends: `gso_ipv4_max_size` and
    /// `gro_ipv4_max_size` set to `size` (by the peer's `big-tcp` mode inside each
    /// namespace: iproute2 before 6.3 does not know the words).
    pub fn with_big_tcp(mtu: u32, exe: &Path, size: u32) -> Result<Veth, String> {
        let v = Veth::tagged(mtu, "big")?;
        let (exe, size) = (exe.to_string_lossy(), size.to_string());
        for ns in [&v.a, &v.b] {
            ip(&[
                "netns",
                "exec",
                ns,
                &exe,
                "bench-peer",
                "big-tcp",
                "eth0",
                &size,
            ])?;
        }
        Ok(v)
    }

    /// `bytes` from a to b through the kernels' TCP; returns the receiver's seconds
    /// from the first byte to the end.
    pub fn bulk(&self, exe: &Path, bytes: u64) -> Result<f64, String> {
        let sink = Sink::start(&self.b, exe, "10.77.0.2:5201")?;
        source(&self.a, exe, "10.77.0.2:5201", bytes, self.cc.as_deref())?;
        sink.finish(bytes)
    }

    /// [`Veth::bulk`] with the sender using `sendfile` (no copy on its side).
    pub fn bulk_sendfile(&self, exe: &Path, bytes: u64) -> Result<f64, String> {
        let sink = Sink::start(&self.b, exe, "10.77.0.2:5201")?;
        let n = bytes.to_string();
        run_peer(&self.a, exe, &["source-sendfile", "10.77.0.2:5201", &n])?;
        sink.finish(bytes)
    }
}

impl Veth {
    /// `n` one-byte request/response exchanges from a to b (TCP_NODELAY, each side a
    /// process in its namespace); transactions per second as the client measured.
    /// With `busy_us` > 0 both sockets set `SO_BUSY_POLL` and the veth ends run NAPI
    /// (GRO on), which busy polling needs; GRO is set back off afterwards.
    pub fn rr(&self, exe: &Path, n: u32, busy_us: u32) -> Result<f64, String> {
        if busy_us > 0 {
            self.set_gro(true)?;
        }
        let busy = busy_us.to_string();
        let r = (|| {
            let (mut server, _) =
                spawn_ready(&self.b, exe, &["rr-server", "10.77.0.2:5202", &busy])?;
            let client = Command::new("ip")
                .args(["netns", "exec", &self.a])
                .arg(exe)
                .args([
                    "bench-peer",
                    "rr-client",
                    "10.77.0.2:5202",
                    &n.to_string(),
                    &busy,
                ])
                .output()
                .map_err(|e| format!("rr-client: {e}"))?;
            let _ = server.wait();
            Ok::<_, String>(client)
        })();
        if busy_us > 0 {
            self.set_gro(false)?;
        }
        let client = r?;
        String::from_utf8_lossy(&client.stdout)
            .trim()
            .parse()
            .map_err(|_| {
                format!(
                    "rr-client said {:?}",
                    String::from_utf8_lossy(&client.stdout)
                )
            })
    }
}

impl Veth {
    /// `ethtool -K eth0 gro on|off` in both namespaces (veth polls with NAPI while GRO
    /// is on).
    fn set_gro(&self, on: bool) -> Result<(), String> {
        for ns in [&self.a, &self.b] {
            let out = Command::new("ip")
                .args(["netns", "exec", ns, "ethtool", "-K", "eth0", "gro"])
                .arg(if on { "on" } else { "off" })
                .output()
                .map_err(|e| format!("ethtool: {e} (install ethtool)"))?;
            if !out.status.success() {
                return Err(format!(
                    "ethtool -K eth0 gro: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        Ok(())
    }
}

/// Start `bench-peer ARGS` in namespace `ns` and wait for its `ready` line.
fn spawn_ready(
    ns: &str,
    exe: &Path,
    args: &[&str],
) -> Result<(std::process::Child, BufReader<std::process::ChildStdout>), String> {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(exe)
        .arg("bench-peer")
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("bench-peer {}: {e}", args[0]))?;
    let mut out = BufReader::new(child.stdout.take().ok_or("peer stdout")?);
    let mut line = String::new();
    out.read_line(&mut line).map_err(|e| e.to_string())?;
    if line.trim() != "ready" {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("bench-peer {} said {line:?}", args[0]));
    }
    Ok((child, out))
}

/// A `bench-peer sink` running in a namespace, listening.
pub struct Sink {
    child: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Sink {
    /// Start a sink in namespace `ns` listening on `addr`; returns once it listens.
    pub fn start(ns: &str, exe: &Path, addr: &str) -> Result<Sink, String> {
        let (child, out) = spawn_ready(ns, exe, &["sink", addr])?;
        Ok(Sink { child, out })
    }

    /// Wait for the sink's report; checks it got `bytes` and returns its seconds from
    /// the first byte to the end.
    pub fn finish(mut self, bytes: u64) -> Result<f64, String> {
        let mut line = String::new();
        self.out.read_line(&mut line).map_err(|e| e.to_string())?;
        let _ = self.child.wait();
        let mut it = line.split_whitespace();
        let got: u64 = it
            .next()
            .and_then(|x| x.parse().ok())
            .ok_or("sink report")?;
        let secs: f64 = it
            .next()
            .and_then(|x| x.parse().ok())
            .ok_or("sink report")?;
        if got != bytes {
            return Err(format!("sink got {got} of {bytes} bytes"));
        }
        Ok(secs)
    }
}

/// Run a `bench-peer source` in namespace `ns`: `bytes` to `addr` (with congestion
/// control `cc`), to the end.
pub fn source(
    ns: &str,
    exe: &Path,
    addr: &str,
    bytes: u64,
    cc: Option<&str>,
) -> Result<(), String> {
    let n = bytes.to_string();
    let mut args = vec!["source", addr, &n];
    args.extend(cc);
    run_peer(ns, exe, &args)
}

/// Run `bench-peer ARGS` in namespace `ns` to its end.
fn run_peer(ns: &str, exe: &Path, args: &[&str]) -> Result<(), String> {
    let status = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(exe)
        .arg("bench-peer")
        .args(args)
        .status()
        .map_err(|e| format!("bench-peer {}: {e}", args[0]))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("bench-peer {} failed", args[0]))
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        drop(self.relay.take());
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
    }
}

/// The peer processes: `sink ADDR` (prints `ready`, accepts one connection, reads to
/// EOF, prints `bytes seconds`), `source ADDR BYTES [CC]` (writes BYTES with
/// congestion control CC, closes), `source-sendfile ADDR BYTES` (the same with
/// `sendfile` from a 1 MiB file, no copy on the sending side), `rr-server ADDR [BUSY_US]` (prints `ready`, echoes
/// one connection's bytes) and `rr-client ADDR N [BUSY_US]` (N one-byte exchanges,
/// prints the rate); BUSY_US sets `SO_BUSY_POLL`. `big-tcp DEV SIZE` sets DEV's
/// `gso_ipv4_max_size` and `gro_ipv4_max_size` in this namespace.
pub fn peer_main(args: &[String]) -> i32 {
    let run = || -> std::io::Result<()> {
        match args {
            [mode, addr] if mode == "sink" => {
                let addr: SocketAddr = addr.parse().map_err(std::io::Error::other)?;
                let l = TcpListener::bind(addr)?;
                println!("ready");
                std::io::stdout().flush()?;
                let (mut s, _) = l.accept()?;
                let mut buf = vec![0u8; 1 << 20];
                let mut got = 0u64;
                let mut t0 = None;
                loop {
                    let n = s.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    t0.get_or_insert_with(Instant::now);
                    got += n as u64;
                }
                let secs = t0.map_or(0.0, |t| t.elapsed().as_secs_f64());
                println!("{got} {secs}");
                Ok(())
            }
            [mode, addr, bytes, cc @ ..] if mode == "source" && cc.len() <= 1 => {
                let addr: SocketAddr = addr.parse().map_err(std::io::Error::other)?;
                let bytes: u64 = bytes.parse().map_err(std::io::Error::other)?;
                let mut s = TcpStream::connect(addr)?;
                if let Some(cc) = cc.first() {
                    set_congestion(&s, cc)?;
                }
                let buf = vec![0x5au8; 1 << 20];
                let mut sent = 0u64;
                while sent < bytes {
                    let n = ((bytes - sent) as usize).min(buf.len());
                    s.write_all(&buf[..n])?;
                    sent += n as u64;
                }
                s.shutdown(std::net::Shutdown::Write)?;
                let _ = s.read(&mut [0u8; 1]);
                Ok(())
            }
            [mode, addr, bytes] if mode == "source-sendfile" => {
                let addr: SocketAddr = addr.parse().map_err(std::io::Error::other)?;
                let bytes: u64 = bytes.parse().map_err(std::io::Error::other)?;
                let mut s = TcpStream::connect(addr)?;
                sendfile_loop(&mut s, bytes)?;
                s.shutdown(std::net::Shutdown::Write)?;
                let _ = s.read(&mut [0u8; 1]);
                Ok(())
            }
            [mode, addr, busy @ ..] if mode == "rr-server" && busy.len() <= 1 => {
                let addr: SocketAddr = addr.parse().map_err(std::io::Error::other)?;
                let busy = busy_arg(busy)?;
                let l = TcpListener::bind(addr)?;
                println!("ready");
                std::io::stdout().flush()?;
                let s = l.accept()?.0;
                set_busy_poll(&s, busy)?;
                echo_one_byte(s)
            }
            [mode, addr, n, busy @ ..] if mode == "rr-client" && busy.len() <= 1 => {
                let addr: SocketAddr = addr.parse().map_err(std::io::Error::other)?;
                let n: u32 = n.parse().map_err(std::io::Error::other)?;
                let busy = busy_arg(busy)?;
                let c = TcpStream::connect(addr)?;
                c.set_nodelay(true)?;
                set_busy_poll(&c, busy)?;
                println!("{}", crate::rr_client(&c, n)?);
                Ok(())
            }
            [mode, dev, size] if mode == "big-tcp" => {
                let size: u32 = size.parse().map_err(std::io::Error::other)?;
                set_big_tcp(dev, size)
            }
            _ => Err(std::io::Error::other(
                "usage: usnet bench-peer sink ADDR | source ADDR BYTES [CC] | source-sendfile ADDR BYTES | rr-server ADDR [BUSY_US] | rr-client ADDR N [BUSY_US] | big-tcp DEV SIZE",
            )),
        }
    };
    match run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("usnet bench-peer: {e}");
            1
        }
    }
}

/// Send `bytes` to `s` with `sendfile(2)` from a 1 MiB file in `/dev/shm`: the
/// kernel attaches the file's page-cache pages to its skbs instead of copying
/// (`MSG_SPLICE_PAGES`).
#[allow(unsafe_code)]
fn sendfile_loop(s: &mut TcpStream, bytes: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    const CHUNK: u64 = 1 << 20;
    let path = format!("/dev/shm/usnet-bench-sendfile-{}", std::process::id());
    let mut f = std::fs::File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    let _ = std::fs::remove_file(&path);
    f.write_all(&vec![0x5au8; CHUNK as usize])?;
    let mut sent = 0u64;
    let mut off: libc::off_t = 0;
    while sent < bytes {
        if off as u64 >= CHUNK {
            off = 0;
        }
        let n = (bytes - sent).min(CHUNK - off as u64) as usize;
        // SAFETY: both descriptors are open for the call and `off` is a live off_t
        // the kernel advances by the bytes sent.
        let r = unsafe { libc::sendfile(s.as_raw_fd(), f.as_raw_fd(), &mut off, n) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            return Err(std::io::Error::other("sendfile: end of file"));
        }
        sent += r as u64;
    }
    Ok(())
}

/// The request/response server: echo each byte back at once (TCP_NODELAY).
fn echo_one_byte(mut s: TcpStream) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    let mut b = [0u8; 1];
    while s.read(&mut b)? == 1 {
        s.write_all(&b)?;
    }
    Ok(())
}

fn busy_arg(a: &[String]) -> std::io::Result<u32> {
    a.first()
        .map_or(Ok(0), |b| b.parse().map_err(std::io::Error::other))
}

/// `setsockopt(SO_BUSY_POLL, us)` (0 leaves the socket as it is); raising it needs
/// CAP_NET_ADMIN.
#[allow(unsafe_code)]
fn set_busy_poll(s: &TcpStream, us: u32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    if us == 0 {
        return Ok(());
    }
    let v = libc::c_int::try_from(us).unwrap_or(libc::c_int::MAX);
    // SAFETY: the option value points at `v`, alive across the call, with its size;
    // the descriptor is the stream's own.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BUSY_POLL,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return Err(std::io::Error::new(
            e.kind(),
            format!("SO_BUSY_POLL {us}: {e}"),
        ));
    }
    Ok(())
}

/// `IFLA_GSO_IPV4_MAX_SIZE` and `IFLA_GRO_IPV4_MAX_SIZE` (Linux 6.3).
const IFLA_GSO_IPV4_MAX_SIZE: u16 = 63;
const IFLA_GRO_IPV4_MAX_SIZE: u16 = 64;

/// `ip link set DEV gso_ipv4_max_size SIZE gro_ipv4_max_size SIZE`, as one
/// RTM_NEWLINK request over rtnetlink, then read back with RTM_GETLINK: a kernel before
/// 6.3 acknowledges attributes it does not know and ignores them.
fn set_big_tcp(dev: &str, size: u32) -> std::io::Result<()> {
    let index = if_index(dev)?;
    let attrs = [
        (IFLA_GSO_IPV4_MAX_SIZE, size),
        (IFLA_GRO_IPV4_MAX_SIZE, size),
    ];
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    let ack = rtnl_request(&link_msg(libc::RTM_NEWLINK, flags, index, &attrs))?;
    // The answer is an NLMSG_ERROR message whose error field is 0 or -errno.
    if ack.len() < 20 || u16::from_ne_bytes([ack[4], ack[5]]) != libc::NLMSG_ERROR as u16 {
        return Err(std::io::Error::other("rtnetlink: no acknowledgement"));
    }
    let e = i32::from_ne_bytes([ack[16], ack[17], ack[18], ack[19]]);
    if e != 0 {
        let os = std::io::Error::from_raw_os_error(-e);
        return Err(std::io::Error::new(
            os.kind(),
            format!(
                "{dev}: gso_ipv4_max_size/gro_ipv4_max_size {size}: {os} (above its tso_max_size?)"
            ),
        ));
    }
    let reply = rtnl_request(&link_msg(
        libc::RTM_GETLINK,
        libc::NLM_F_REQUEST as u16,
        index,
        &[],
    ))?;
    for (attr, name) in [
        (IFLA_GSO_IPV4_MAX_SIZE, "gso_ipv4_max_size"),
        (IFLA_GRO_IPV4_MAX_SIZE, "gro_ipv4_max_size"),
    ] {
        match link_attr_u32(&reply, attr) {
            Some(v) if v == size => {}
            Some(v) => {
                return Err(std::io::Error::other(format!(
                    "{dev}: {name} reads {v} after setting {size}"
                )))
            }
            None => {
                return Err(std::io::Error::other(format!(
                    "{dev}: the kernel reports no {name} (BIG TCP for IPv4 needs Linux 6.3)"
                )))
            }
        }
    }
    Ok(())
}

/// A link message: nlmsghdr, ifinfomsg for `index`, then u32 attributes.
fn link_msg(kind: u16, flags: u16, index: u32, attrs: &[(u16, u32)]) -> Vec<u8> {
    let mut m: Vec<u8> = Vec::with_capacity(32 + 8 * attrs.len());
    m.extend_from_slice(&0u32.to_ne_bytes()); // length, set below
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    m.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    m.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    m.extend_from_slice(&(index as i32).to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // flags
    m.extend_from_slice(&0u32.to_ne_bytes()); // change mask
    for &(t, v) in attrs {
        m.extend_from_slice(&8u16.to_ne_bytes());
        m.extend_from_slice(&t.to_ne_bytes());
        m.extend_from_slice(&v.to_ne_bytes());
    }
    let len = m.len() as u32;
    m[..4].copy_from_slice(&len.to_ne_bytes());
    m
}

/// The u32 attribute `attr` of the RTM_NEWLINK message at the start of `reply`.
fn link_attr_u32(reply: &[u8], attr: u16) -> Option<u32> {
    let total = (u32::from_ne_bytes(reply.get(..4)?.try_into().ok()?) as usize).min(reply.len());
    if u16::from_ne_bytes([*reply.get(4)?, *reply.get(5)?]) != libc::RTM_NEWLINK {
        return None;
    }
    let mut off = 32;
    while off + 4 <= total {
        let len = usize::from(u16::from_ne_bytes([reply[off], reply[off + 1]]));
        let kind = u16::from_ne_bytes([reply[off + 2], reply[off + 3]]) & 0x3fff;
        if len < 4 || off + len > total {
            return None;
        }
        if kind == attr && len >= 8 {
            return Some(u32::from_ne_bytes(reply[off + 4..off + 8].try_into().ok()?));
        }
        off += (len + 3) & !3;
    }
    None
}

#[allow(unsafe_code)]
fn if_index(dev: &str) -> std::io::Result<u32> {
    let name = std::ffi::CString::new(dev).map_err(std::io::Error::other)?;
    // SAFETY: `name` is a NUL-terminated string alive across the call.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(std::io::Error::last_os_error()),
        i => Ok(i),
    }
}

/// Send one rtnetlink request and return the first reply datagram.
#[allow(unsafe_code)]
fn rtnl_request(msg: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: a plain socket(2) call; the descriptor is owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: the buffer is valid for its length across the call.
    if unsafe { libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 16 << 10];
    // SAFETY: the buffer is valid and writable for its length across the call.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// `setsockopt(TCP_CONGESTION, cc)`; with CAP_NET_ADMIN any loaded algorithm.
#[allow(unsafe_code)]
fn set_congestion(s: &TcpStream, cc: &str) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the option value points at `cc`'s bytes for the length given, alive
    // across the call; the descriptor is the stream's own.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            cc.as_ptr().cast(),
            cc.len() as libc::socklen_t,
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return Err(std::io::Error::new(
            e.kind(),
            format!("TCP_CONGESTION {cc}: {e}"),
        ));
    }
    Ok(())
}

/// `n` one-byte request/response exchanges between two threads over loopback, with
/// TCP_NODELAY; returns transactions per second.
pub fn rr_loopback(n: u32) -> Result<f64, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = l.local_addr().map_err(|e| e.to_string())?;
    let server = std::thread::spawn(move || echo_one_byte(l.accept()?.0));
    let c = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    c.set_nodelay(true).map_err(|e| e.to_string())?;
    let rate = crate::rr_client(&c, n).map_err(|e| e.to_string())?;
    drop(c);
    let _ = server.join();
    Ok(rate)
}

/// Connections per second over loopback: connect, accept, close on both ends.
pub fn conn_rate_loopback(n: u32) -> Result<f64, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = l.local_addr().map_err(|e| e.to_string())?;
    let server = std::thread::spawn(move || {
        for _ in 0..n {
            match l.accept() {
                Ok((s, _)) => drop(s),
                Err(_) => break,
            }
        }
    });
    let t0 = Instant::now();
    for _ in 0..n {
        let c = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        drop(c);
    }
    let _ = server.join();
    Ok(f64::from(n) / t0.elapsed().as_secs_f64())
}

/// Bytes of all slab objects in use (`/proc/slabinfo`: active objects × object size).
fn slab_bytes() -> Result<u64, String> {
    let text = std::fs::read_to_string("/proc/slabinfo")
        .map_err(|e| format!("/proc/slabinfo: {e} (needs root)"))?;
    Ok(text
        .lines()
        .skip(2)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let active: u64 = f.get(1)?.parse().ok()?;
            let size: u64 = f.get(3)?.parse().ok()?;
            Some(active * size)
        })
        .sum())
}

/// Kernel memory per idle established TCP socket over loopback: the growth of slab
/// memory (tcp_sock, inode, dentry, file, ...) while `n` connections are open, over the
/// 2n sockets; socket buffers are not counted (nothing is queued).
pub fn idle_socket_bytes(n: usize) -> Result<f64, String> {
    // Two descriptors per connection: stay under the soft open-files limit.
    let n = n.min(open_files_limit().saturating_sub(256) / 2).max(1);
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = l.local_addr().map_err(|e| e.to_string())?;
    let before = slab_bytes()?;
    let mut keep = Vec::with_capacity(2 * n);
    for _ in 0..n {
        let c = TcpStream::connect(addr).map_err(|e| format!("connect: {e} (ulimit -n?)"))?;
        let (s, _) = l.accept().map_err(|e| e.to_string())?;
        keep.push(c);
        keep.push(s);
    }
    let after = slab_bytes()?;
    drop(keep);
    Ok(after.saturating_sub(before) as f64 / (2 * n) as f64)
}

/// The soft limit on open descriptors (`/proc/self/limits`, "Max open files").
fn open_files_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        })
        .unwrap_or(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_message_carries_its_attributes_and_they_read_back() {
        let m = link_msg(
            libc::RTM_NEWLINK,
            0,
            7,
            &[
                (IFLA_GSO_IPV4_MAX_SIZE, 185_000),
                (IFLA_GRO_IPV4_MAX_SIZE, 128_000),
            ],
        );
        assert_eq!(m.len(), 48);
        assert_eq!(u32::from_ne_bytes(m[..4].try_into().unwrap()), 48);
        assert_eq!(i32::from_ne_bytes(m[20..24].try_into().unwrap()), 7);
        assert_eq!(link_attr_u32(&m, IFLA_GSO_IPV4_MAX_SIZE), Some(185_000));
        assert_eq!(link_attr_u32(&m, IFLA_GRO_IPV4_MAX_SIZE), Some(128_000));
        assert_eq!(link_attr_u32(&m, 3), None, "absent: an old kernel's reply");
        // A truncated or malformed reply reads as absent, never panics.
        assert_eq!(link_attr_u32(&m[..40], IFLA_GRO_IPV4_MAX_SIZE), None);
        let mut bad = m.clone();
        bad[32] = 2; // attribute length below its header
        assert_eq!(link_attr_u32(&bad, IFLA_GSO_IPV4_MAX_SIZE), None);
        assert_eq!(link_attr_u32(&[], IFLA_GSO_IPV4_MAX_SIZE), None);
    }
}
