//! usnet and the Linux kernel on one TAP link: each test makes its own network
//! namespace (`usnt-…`) holding the TAP interface with the kernel's address
//! 10.77.N.1/24, runs usnet at 10.77.N.2 on the descriptor, and removes the namespace.
//! Traffic stays inside that namespace. Needs root (CAP_NET_ADMIN); skipped with a
//! message otherwise, except under `CI=true`, where it must run.

use std::io::{Read, Write};
use std::net::SocketAddrV4;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use usnet::drivers::tap::Tap;
use usnet::socket::std_api::{TcpListener, TcpStream, UdpSocket};
use usnet::testutil::ip;
use usnet::Stack;
use usnet_wire::EthernetAddress;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A namespace with a TAP in it, and a started usnet stack on the TAP.
struct Lab {
    ns: String,
    stack: Stack,
    n: u8,
}

fn sh(args: &[&str]) -> std::process::Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn must(args: &[&str]) {
    let o = sh(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

impl Lab {
    fn new() -> Option<Lab> {
        let n =
            (NEXT.fetch_add(1, Ordering::Relaxed) + std::process::id() % 50 * 4) as u8 % 250 + 1;
        let ns = format!("usnt-{}-{n}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &ns])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ok {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but cannot create a network namespace (need root / CAP_NET_ADMIN)"
            );
            eprintln!(
                "skipping: cannot create a network namespace (run as root for the TAP tests)"
            );
            return None;
        }
        let tap = Tap::open_in_netns(
            "usnt0",
            std::path::Path::new(&format!("/var/run/netns/{ns}")),
        )
        .expect("TAP in the namespace");
        must(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        must(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("10.77.{n}.1/24"),
            "dev",
            "usnt0",
        ]);
        must(&["ip", "-n", &ns, "link", "set", "usnt0", "up"]);
        let stack = Stack::builder().name("usnet").build();
        let dev = Tap::create(
            &stack,
            &tap,
            "eth0",
            EthernetAddress([0x02, 0x75, 0x73, 0x6e, 0x65, n]),
        )
        .expect("register");
        usnet::ipv4::addr::addr_add(&stack, &dev, ip(10, 77, n, 2), 24).expect("address");
        stack.start();
        Some(Lab { ns, stack, n })
    }

    fn kernel(&self) -> std::net::Ipv4Addr {
        ip(10, 77, self.n, 1)
    }

    fn us(&self) -> std::net::Ipv4Addr {
        ip(10, 77, self.n, 2)
    }

    /// Run a Python snippet inside the namespace.
    fn python(&self, code: &str) -> std::process::Child {
        Command::new("ip")
            .args(["netns", "exec", &self.ns, "python3", "-c", code])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("python3")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stack.stop();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

fn wait_output(child: std::process::Child) -> String {
    let out = child.wait_with_output().expect("child");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn udp_both_ways_with_the_kernel() {
    let Some(lab) = Lab::new() else { return };
    let u = UdpSocket::bind(&lab.stack, SocketAddrV4::new(lab.us(), 9000)).unwrap();
    u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Kernel → usnet, then usnet answers to the kernel's socket.
    let py = lab.python(&format!(
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.settimeout(5)\ns.bind(('{k}',9001))\ns.sendto(b'from linux',('{u}',9000))\nprint(s.recvfrom(100)[0].decode())",
        k = lab.kernel(),
        u = lab.us()
    ));
    let mut buf = [0u8; 64];
    let (n, from) = u.recv_from(&mut buf).expect("datagram from the kernel");
    assert_eq!(&buf[..n], b"from linux");
    assert_eq!(from, SocketAddrV4::new(lab.kernel(), 9001));
    u.send_to(b"from usnet", from).unwrap();
    assert_eq!(wait_output(py).trim(), "from usnet");
}

#[test]
fn usnet_connects_to_a_kernel_tcp_server() {
    let Some(lab) = Lab::new() else { return };
    let py = lab.python(&format!(
        "import socket\nl=socket.socket()\nl.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\nl.bind(('{k}',8000))\nl.listen()\nprint('ready',flush=True)\nc,_=l.accept()\nd=b''\nwhile True:\n  x=c.recv(65536)\n  if not x: break\n  d+=x\nimport hashlib\nc.sendall(hashlib.sha256(d).hexdigest().encode())\nc.close()",
        k = lab.kernel()
    ));
    // Wait for the server to listen.
    std::thread::sleep(Duration::from_millis(300));
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 13 + i / 7) as u8).collect();
    let mut s = TcpStream::connect(&lab.stack, SocketAddrV4::new(lab.kernel(), 8000))
        .expect("connect to Linux");
    s.write_all(&data).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut digest = String::new();
    s.read_to_string(&mut digest).unwrap();
    use sha2::Digest;
    let want: String = sha2::Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(digest, want, "Linux received the bytes intact");
    assert!(wait_output(py).contains("ready"));
}

#[test]
fn a_kernel_tcp_client_talks_to_a_usnet_server() {
    let Some(lab) = Lab::new() else { return };
    let l = TcpListener::bind(&lab.stack, SocketAddrV4::new(lab.us(), 8001)).unwrap();
    let py = lab.python(&format!(
        "import socket,hashlib\nd=bytes((i*7)%251 for i in range(2000000))\ns=socket.create_connection(('{u}',8001),timeout=10)\ns.sendall(d)\ns.shutdown(socket.SHUT_WR)\nr=b''\nwhile True:\n  x=s.recv(100)\n  if not x: break\n  r+=x\nprint(r.decode()==hashlib.sha256(d).hexdigest())",
        u = lab.us()
    ));
    let (mut c, peer) = l.accept().expect("accept the kernel's connection");
    assert_eq!(*peer.ip(), lab.kernel());
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), 2_000_000);
    use sha2::Digest;
    let hex: String = sha2::Sha256::digest(&got)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    c.write_all(hex.as_bytes()).unwrap();
    drop(c);
    assert_eq!(wait_output(py).trim(), "True");
}

#[test]
fn the_kernel_pings_usnet_and_usnet_pings_the_kernel() {
    let Some(lab) = Lab::new() else { return };
    let py = lab.python(&format!(
        "import socket,struct\ndef ck(b):\n  s=sum(struct.unpack('!%dH'%(len(b)//2),b))\n  s=(s>>16)+(s&0xffff)\n  s+=s>>16\n  return (~s)&0xffff\ns=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_ICMP)\ns.settimeout(5)\nok=0\nfor i in range(3):\n  h=struct.pack('!BBHHH',8,0,0,77,i)+b'pingpong'\n  h=h[:2]+struct.pack('!H',ck(h))+h[4:]\n  s.sendto(h,('{u}',0))\n  while True:\n    d,a=s.recvfrom(200)\n    if a[0]=='{u}' and d[20]==0: break\n  ok+=1\nprint(ok)",
        u = lab.us()
    ));
    assert_eq!(wait_output(py).trim(), "3", "three echo replies from usnet");
    let p = usnet::ipv4::ping::PingSocket::new(&lab.stack).unwrap();
    p.send_echo(lab.kernel(), 1, b"hello linux").unwrap();
    let reply = p
        .recv(Some(Duration::from_secs(5)))
        .expect("echo reply from Linux");
    assert_eq!(reply.from, lab.kernel());
}

#[test]
fn tcpdump_on_the_kernel_side_finds_nothing_wrong_with_usnet_packets() {
    let Some(lab) = Lab::new() else { return };
    let dump = Command::new("ip")
        .args([
            "netns", "exec", &lab.ns, "timeout", "10", "tcpdump", "-i", "usnt0", "-n", "-vv", "-c",
            "12", "tcp",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tcpdump");
    std::thread::sleep(Duration::from_millis(700));
    let py = lab.python(&format!(
        "import socket\nl=socket.socket()\nl.bind(('{k}',8002))\nl.listen()\nc,_=l.accept()\nwhile c.recv(65536): pass\nc.close()",
        k = lab.kernel()
    ));
    std::thread::sleep(Duration::from_millis(300));
    let mut s = TcpStream::connect(&lab.stack, SocketAddrV4::new(lab.kernel(), 8002)).unwrap();
    s.write_all(&[0x42; 20_000]).unwrap();
    drop(s);
    wait_output(py);
    let out = dump.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{}.", lab.us())),
        "usnet's packets captured:\n{text}"
    );
    for bad in ["bad cksum", "incorrect", "truncated", "malformed", "[|tcp]"] {
        assert!(!text.contains(bad), "tcpdump says {bad:?}:\n{text}");
    }
    assert!(
        text.contains("cksum") && text.contains("(correct)"),
        "checksums verified:\n{text}"
    );
}
