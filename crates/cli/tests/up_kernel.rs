//! `usnet up`, `usnet get`, `usnet send` and `usnet recv` against real programs: curl
//! fetches a 100 MB file from usnet's HTTP server, usnet fetches from Python's
//! http.server, and bulk TCP goes both ways with the kernel, each across a TAP
//! link into a private network namespace the test creates and removes. Needs root;
//! skipped with a message otherwise, required under `CI=true`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sha2::{Digest, Sha256};

struct Ns {
    name: String,
    dir: std::path::PathBuf,
    children: Vec<Child>,
}

impl Ns {
    /// A namespace with a persistent TAP `dev` at `kernel_addr`.
    fn new(tag: &str, dev: &str, kernel_addr: &str) -> Option<Ns> {
        let ns = Ns::empty(tag)?;
        ns.ip(&["tuntap", "add", "dev", dev, "mode", "tap"]);
        ns.ip(&["addr", "add", kernel_addr, "dev", dev]);
        ns.ip(&["link", "set", dev, "up"]);
        ns.ip(&["link", "set", "lo", "up"]);
        Some(ns)
    }

    /// An empty namespace (skips the test without root, as [`Ns::new`]).
    fn empty(tag: &str) -> Option<Ns> {
        let name = format!("usnt-{tag}-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but cannot create a network namespace (need root)"
            );
            eprintln!("skipping: cannot create a network namespace (run as root)");
            return None;
        }
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        Some(Ns {
            name,
            dir,
            children: Vec::new(),
        })
    }

    fn ip(&self, args: &[&str]) {
        let out = Command::new("ip")
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn exec(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(args);
        c
    }

    fn netns_path(&self) -> String {
        format!("/var/run/netns/{}", self.name)
    }

    /// Start `usnet ARGS --netns <this namespace>` (kept until the namespace goes) and
    /// return the first line it prints.
    fn spawn_usnet(&mut self, args: &[&str]) -> String {
        let mut child = Command::new(env!("CARGO_BIN_EXE_usnet"))
            .args(args)
            .args(["--netns", &self.netns_path()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("usnet");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        self.children.push(child);
        line
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sha_file(p: &std::path::Path) -> String {
    let data = std::fs::read(p).unwrap();
    Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn write_pattern(p: &std::path::Path, len: usize) {
    let mut v = vec![0u8; len];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for c in v.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
    }
    std::fs::write(p, v).unwrap();
}

#[test]
fn curl_fetches_100_mb_from_usnet_http() {
    let Some(mut ns) = Ns::new("up", "usnt1", "10.79.0.1/24") else {
        return;
    };
    let www = ns.dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let file = www.join("big.bin");
    write_pattern(&file, 100 << 20);
    let ctl = ns.dir.join("ctl.sock");
    let serve = format!("http:80:{},echo:7", www.display());
    let line = ns.spawn_usnet(&[
        "up",
        "--link",
        "tap:usnt1",
        "--addr",
        "10.79.0.2/24",
        "--serve",
        &serve,
        "--ctl",
        ctl.to_str().unwrap(),
        "--for",
        "120",
    ]);
    assert!(line.starts_with("usnet up: 10.79.0.2/24"), "{line}");
    let out = ns.dir.join("got.bin");
    let st = ns
        .exec(&["curl", "-sS", "--max-time", "120", "-o"])
        .arg(&out)
        .arg("http://10.79.0.2/big.bin")
        .status()
        .unwrap();
    assert!(st.success(), "curl failed");
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 100 << 20);
    assert_eq!(sha_file(&out), sha_file(&file), "byte-identical");
    // A missing file is a 404, and the path cannot escape the directory.
    let code = ns
        .exec(&[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://10.79.0.2/../etc/passwd",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&code.stdout), "404");
    // The running instance answers the inspection commands on its control socket.
    let view = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_usnet"))
            .args(&args[..1])
            .arg("--ctl")
            .arg(&ctl)
            .args(&args[1..])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let ss = view(&["ss", "-tl"]);
    assert!(ss.contains("LISTEN") && ss.contains("10.79.0.2:80"), "{ss}");
    let ns_out = view(&["netstat", "-s"]);
    assert!(ns_out.contains("PassiveOpens: 2"), "{ns_out}");
    assert!(view(&["route", "get", "10.79.0.1"]).contains("dev eth0"));
    assert!(view(&["neigh"]).contains("10.79.0.1 dev eth0"));
    assert_eq!(
        view(&["sysctl", "net.core.busy_read"]).trim(),
        "net.core.busy_read = 0"
    );
    assert!(view(&["ethtool", "-S", "eth0"]).contains("tx_frames"));
}

#[test]
fn usnet_get_fetches_from_python_http_server() {
    let Some(mut ns) = Ns::new("get", "usnt2", "10.79.1.1/24") else {
        return;
    };
    let file = ns.dir.join("data.bin");
    write_pattern(&file, 5 << 20);
    let server = ns
        .exec(&[
            "python3",
            "-m",
            "http.server",
            "8000",
            "--bind",
            "10.79.1.1",
            "--directory",
        ])
        .arg(&ns.dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    ns.children.push(server);
    // Wait for the server to listen.
    for _ in 0..50 {
        let ok = ns
            .exec(&[
                "python3",
                "-c",
                "import socket;socket.create_connection(('10.79.1.1',8000),1)",
            ])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = ns.dir.join("fetched.bin");
    let st = Command::new(env!("CARGO_BIN_EXE_usnet"))
        .args(["get", "http://10.79.1.1:8000/data.bin", "-o"])
        .arg(&out)
        .args([
            "--link",
            "tap:usnt2",
            "--netns",
            &ns.netns_path(),
            "--addr",
            "10.79.1.2/24",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(sha_file(&out), sha_file(&file));
}

/// The `sha256 HEX` a `usnet send|recv` line ends with.
fn sha_of_line(line: &str) -> String {
    line.split_whitespace()
        .skip_while(|w| *w != "sha256")
        .nth(1)
        .unwrap_or_else(|| panic!("no sha256 in {line:?}"))
        .to_string()
}

#[test]
fn usnet_send_into_a_linux_receiver() {
    let Some(mut ns) = Ns::new("send", "usnt3", "10.79.2.1/24") else {
        return;
    };
    let mut rx = ns
        .exec(&[
            "python3",
            "-c",
            "import socket,hashlib\nl=socket.socket()\nl.bind(('10.79.2.1',5001))\nl.listen()\nprint('ready',flush=True)\nc,_=l.accept()\nh=hashlib.sha256()\nn=0\nwhile True:\n  x=c.recv(1<<20)\n  if not x: break\n  h.update(x)\n  n+=len(x)\nc.close()\nprint(n,h.hexdigest())",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(rx.stdout.take().unwrap());
    ns.children.push(rx);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let send = Command::new(env!("CARGO_BIN_EXE_usnet"))
        .args(["send", "10.79.2.1:5001", "--bytes", "20M"])
        .args([
            "--link",
            "tap:usnt3",
            "--netns",
            &ns.netns_path(),
            "--addr",
            "10.79.2.2/24",
        ])
        .output()
        .unwrap();
    assert!(
        send.status.success(),
        "{}",
        String::from_utf8_lossy(&send.stderr)
    );
    let said = String::from_utf8_lossy(&send.stdout).to_string();
    assert!(said.contains("Gbit/s"), "{said}");
    line.clear();
    out.read_line(&mut line).unwrap();
    let (n, hex) = line.trim().split_once(' ').unwrap();
    assert_eq!(n, (20u64 << 20).to_string(), "Linux got every byte");
    assert_eq!(hex, sha_of_line(&said), "and the same bytes usnet sent");
}

#[test]
fn usnet_recv_from_a_linux_sender() {
    let Some(mut ns) = Ns::new("recv", "usnt4", "10.79.3.1/24") else {
        return;
    };
    let mut recv = Command::new(env!("CARGO_BIN_EXE_usnet"))
        .args(["recv", "--listen", "5002"])
        .args([
            "--link",
            "tap:usnt4",
            "--netns",
            &ns.netns_path(),
            "--addr",
            "10.79.3.2/24",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(recv.stdout.take().unwrap());
    ns.children.push(recv);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains("listening on 10.79.3.2:5002"), "{line}");
    let tx = ns
        .exec(&[
            "python3",
            "-c",
            "import socket,hashlib,os\nd=os.urandom(12<<20)\ns=socket.create_connection(('10.79.3.2',5002),timeout=10)\ns.sendall(d)\ns.close()\nprint(hashlib.sha256(d).hexdigest())",
        ])
        .output()
        .unwrap();
    assert!(
        tx.status.success(),
        "{}",
        String::from_utf8_lossy(&tx.stderr)
    );
    line.clear();
    out.read_line(&mut line).unwrap();
    assert!(line.contains(&format!("{} bytes", 12 << 20)), "{line}");
    assert!(line.contains("from 10.79.3.1:"), "{line}");
    assert_eq!(
        sha_of_line(&line),
        String::from_utf8_lossy(&tx.stdout).trim(),
        "usnet got the bytes Linux sent"
    );
    let st = ns.children[0].wait().unwrap();
    assert!(st.success(), "recv exits after --count 1 connection");
}

/// The stock iperf3 client measures usnet's `--serve iperf3` both ways: the figures it
/// prints come from our server's results and its own counts.
#[test]
fn iperf3_client_measures_usnet_both_ways() {
    let have = Command::new("iperf3").arg("--version").output().is_ok();
    if !have {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but iperf3 is not installed (.ci/run installs it)"
        );
        eprintln!("skipping: iperf3 not installed (apt-get install iperf3)");
        return;
    }
    let Some(mut ns) = Ns::new("iperf", "usnt5", "10.79.4.1/24") else {
        return;
    };
    let line = ns.spawn_usnet(&[
        "up",
        "--link",
        "tap:usnt5",
        "--addr",
        "10.79.4.2/24",
        "--serve",
        "iperf3:5201",
        "--for",
        "60",
    ]);
    assert!(line.contains("serving iperf3:5201"), "{line}");
    for reverse in [false, true] {
        let mut cmd = ns.exec(&["iperf3", "-c", "10.79.4.2", "-t", "2", "--json"]);
        if reverse {
            cmd.arg("-R");
        }
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "iperf3 -R={reverse}: {text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let sent = v["end"]["sum_sent"]["bytes"].as_u64().unwrap();
        let got = v["end"]["sum_received"]["bytes"].as_u64().unwrap();
        let bps = v["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .unwrap();
        assert!(got > 1 << 20, "-R={reverse}: moved {got} bytes");
        assert!(bps > 1e8, "-R={reverse}: {bps} bit/s");
        // The receiver counts what the sender wrote, less at most what was still in
        // flight when the clock stopped.
        assert!(
            got <= sent && got * 10 >= sent * 9,
            "-R={reverse}: {got} of {sent}"
        );
    }
}

/// `usnet up --link afpacket:IFACE`: usnet on AF_PACKET rings on a veth end (no
/// address of its own) serves echo to the kernel on the other end.
#[test]
fn up_on_afpacket_rings_serves_the_kernel() {
    let Some(a) = Ns::empty("afa") else { return };
    let Some(mut b) = Ns::empty("afb") else {
        return;
    };
    a.ip(&[
        "link", "add", "vk0", "type", "veth", "peer", "name", "vu0", "netns", &b.name,
    ]);
    a.ip(&["addr", "add", "10.79.6.1/24", "dev", "vk0"]);
    a.ip(&["link", "set", "vk0", "up"]);
    b.ip(&["link", "set", "vu0", "up"]);
    // The kernel must send MTU-sized frames with their checksums done.
    let ok = a
        .exec(&[
            "ethtool", "-K", "vk0", "tso", "off", "gso", "off", "tx", "off",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but ethtool is missing (.ci/run installs it)"
        );
        eprintln!("skipping: ethtool not installed");
        return;
    }
    let line = b.spawn_usnet(&[
        "up",
        "--link",
        "afpacket:vu0",
        "--addr",
        "10.79.6.2/24",
        "--serve",
        "echo:7",
        "--for",
        "60",
    ]);
    assert!(line.contains("on afpacket:vu0"), "{line}");
    let out = a
        .exec(&[
            "python3",
            "-c",
            "import socket,os,threading\nd=os.urandom(1<<20)\ns=socket.create_connection(('10.79.6.2',7),timeout=10)\nt=threading.Thread(target=lambda: (s.sendall(d), s.shutdown(socket.SHUT_WR)))\nt.start()\nr=b''\nwhile True:\n  x=s.recv(65536)\n  if not x: break\n  r+=x\nt.join()\nprint(r==d, len(r))",
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        said.trim(),
        format!("True {}", 1 << 20),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Without CAP_NET_ADMIN, `usnet up` says what is missing and how to run it in a
/// namespace of its own (run here as user `nobody`, which needs root to arrange).
#[test]
fn up_without_cap_net_admin_names_the_fix() {
    let root = is_root();
    if !root {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but not root: cannot run usnet as another user"
        );
        eprintln!("skipping: needs root to run usnet as user nobody");
        return;
    }
    // The binary must be reachable by `nobody`: copy it somewhere world-readable.
    let bin = std::env::temp_dir().join(format!("usnet-nobody-{}", std::process::id()));
    std::fs::copy(env!("CARGO_BIN_EXE_usnet"), &bin).unwrap();
    let out = std::process::Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(&bin)
        .args([
            "up",
            "--link",
            "tap:usnoperm0",
            "--addr",
            "10.9.9.2/24",
            "--for",
            "1",
        ])
        .output()
        .expect("runuser");
    let _ = std::fs::remove_file(&bin);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("CAP_NET_ADMIN"), "{err}");
    assert!(err.contains("unshare -rn"), "{err}");
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
