//! Shared by the tests that put usnet beside the Linux kernel on a real link (TAP,
//! AF_PACKET): namespace handling, Python peers inside the kernel's namespace, and the
//! exchanges every link must carry (TCP both ways checked by SHA-256, ping both ways).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::{Child, Command, Output};
use std::time::Duration;

use usnet::socket::std_api::{TcpListener, TcpStream};
use usnet::Stack;

/// Run a command; panics only if it cannot be started.
pub fn sh(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Run a command that must succeed.
pub fn must(args: &[&str]) {
    let o = sh(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Under `CI=true` the kernel tests must run, not skip.
pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// `ip netns add NS`; false (with a message, and a failure under CI) without root.
pub fn ns_add(ns: &str) -> bool {
    let ok = Command::new("ip")
        .args(["netns", "add", ns])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            !in_ci(),
            "CI=true but cannot create a network namespace (need root / CAP_NET_ADMIN)"
        );
        eprintln!("skipping: cannot create a network namespace (run as root for the kernel tests)");
    }
    ok
}

/// `/var/run/netns/NS`.
pub fn netns_path(ns: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/var/run/netns/{ns}"))
}

/// Wait for a Python peer; its standard output.
pub fn wait_output(child: Child) -> String {
    let out = child.wait_with_output().expect("child");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// SHA-256 in hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A usnet stack on a real link with the kernel at the other end.
pub trait KernelLab {
    /// usnet's stack (started).
    fn stack(&self) -> &Stack;
    /// The kernel's address.
    fn kernel(&self) -> Ipv4Addr;
    /// usnet's address.
    fn us(&self) -> Ipv4Addr;
    /// The kernel's network namespace.
    fn ns(&self) -> &str;

    /// Run a Python snippet inside the kernel's namespace, for at most a minute.
    fn python(&self, code: &str) -> Child {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                self.ns(),
                "timeout",
                "60",
                "python3",
                "-c",
                code,
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("python3")
    }
}

/// Connect from `stack` to a server in the kernel that may not listen yet: until it
/// does the kernel refuses (Python can take a while to start on a busy machine), so
/// retry for up to 10 s.
pub fn connect_when_listening(stack: &Stack, to: SocketAddrV4) -> TcpStream {
    let mut tries = 0;
    loop {
        match TcpStream::connect(stack, to) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            r => return r.expect("connect to Linux"),
        }
    }
}

/// usnet sends `bytes` to a Python server in the kernel's namespace on `port`, which
/// answers with the SHA-256 of what it got.
pub fn usnet_sends_to_the_kernel(lab: &impl KernelLab, port: u16, bytes: u32) {
    usnet_sends_to_the_kernel_with(lab, port, bytes, |s, data| s.write_all(data).unwrap());
}

/// As [`usnet_sends_to_the_kernel`], the bytes handed over uncopied with `send_pages`
/// in pages of uneven sizes.
pub fn usnet_splices_to_the_kernel(lab: &impl KernelLab, port: u16, bytes: u32) {
    usnet_sends_to_the_kernel_with(lab, port, bytes, |s, data| {
        let all = bytes::Bytes::copy_from_slice(data);
        let mut off = 0;
        let mut size = 1000;
        while off < all.len() {
            let end = (off + size).min(all.len());
            s.send_all_pages(&all.slice(off..end)).unwrap();
            off = end;
            size = size * 3 % 700_001;
        }
    });
}

/// usnet sends `bytes` with `send` to a Python server that answers with their SHA-256.
fn usnet_sends_to_the_kernel_with(
    lab: &impl KernelLab,
    port: u16,
    bytes: u32,
    send: impl FnOnce(&mut TcpStream, &[u8]),
) {
    let py = lab.python(&format!(
        "import socket\nl=socket.socket()\nl.settimeout(30)\nl.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\nl.bind(('{k}',{port}))\nl.listen()\nprint('ready',flush=True)\nc,_=l.accept()\nc.settimeout(30)\nd=b''\nwhile True:\n  x=c.recv(65536)\n  if not x: break\n  d+=x\nimport hashlib\nc.sendall(hashlib.sha256(d).hexdigest().encode())\nc.close()",
        k = lab.kernel()
    ));
    let data: Vec<u8> = (0..bytes).map(|i| (i * 13 + i / 7) as u8).collect();
    let mut s = connect_when_listening(lab.stack(), SocketAddrV4::new(lab.kernel(), port));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    send(&mut s, &data);
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut digest = String::new();
    s.read_to_string(&mut digest).unwrap();
    assert_eq!(digest, sha256_hex(&data), "Linux received the bytes intact");
    assert!(wait_output(py).contains("ready"));
}

/// A Python client in the kernel's namespace sends `bytes` to a usnet server on
/// `port` and checks the SHA-256 usnet answers with.
pub fn the_kernel_sends_to_usnet(lab: &impl KernelLab, port: u16, bytes: u32) {
    let l = TcpListener::bind(lab.stack(), SocketAddrV4::new(lab.us(), port)).unwrap();
    l.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let py = lab.python(&format!(
        "import socket,hashlib\nd=bytes((i*7)%251 for i in range({bytes}))\ns=socket.create_connection(('{u}',{port}),timeout=20)\ns.sendall(d)\ns.shutdown(socket.SHUT_WR)\nr=b''\nwhile True:\n  x=s.recv(100)\n  if not x: break\n  r+=x\nprint(r.decode()==hashlib.sha256(d).hexdigest())",
        u = lab.us()
    ));
    let (mut c, peer) = l.accept().expect("accept the kernel's connection");
    assert_eq!(*peer.ip(), lab.kernel());
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), bytes as usize);
    c.write_all(sha256_hex(&got).as_bytes()).unwrap();
    drop(c);
    assert_eq!(wait_output(py).trim(), "True");
}

/// Linux pings usnet three times (raw ICMP from Python), then usnet pings Linux three
/// times (`PingSocket`).
pub fn ping_both_ways(lab: &impl KernelLab) {
    let py = lab.python(&format!(
        "import socket,struct\ndef ck(b):\n  s=sum(struct.unpack('!%dH'%(len(b)//2),b))\n  s=(s>>16)+(s&0xffff)\n  s+=s>>16\n  return (~s)&0xffff\ns=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_ICMP)\ns.settimeout(5)\nok=0\nfor i in range(3):\n  h=struct.pack('!BBHHH',8,0,0,77,i)+b'pingpong'\n  h=h[:2]+struct.pack('!H',ck(h))+h[4:]\n  s.sendto(h,('{u}',0))\n  while True:\n    d,a=s.recvfrom(200)\n    if a[0]=='{u}' and d[20]==0: break\n  ok+=1\nprint(ok)",
        u = lab.us()
    ));
    assert_eq!(wait_output(py).trim(), "3", "three echo replies from usnet");
    let p = usnet::ipv4::ping::PingSocket::new(lab.stack()).unwrap();
    for seq in 1..=3u16 {
        p.send_echo(lab.kernel(), seq, b"hello linux").unwrap();
        loop {
            let reply = p
                .recv(Some(Duration::from_secs(5)))
                .expect("echo reply from Linux");
            assert_eq!(reply.from, lab.kernel());
            if reply.seq == seq {
                break;
            }
        }
    }
}
