//! usnet and the Linux kernel on one TAP link: a namespace this process makes holds the
//! TAP interface with the kernel at 10.77.1.1; usnet (10.77.1.2) runs on the descriptor,
//! its softirq thread and the application thread in real time, with TAP offloads (TSO
//! and checksums both ways). The kernel's end is `usnet bench-peer` inside the
//! namespace.

use std::io::{Read, Write};
use std::net::SocketAddrV4;
use std::path::Path;

use usnet::drivers::tap::Tap;
use usnet::socket::std_api::{TcpListener, TcpStream};
use usnet::testutil::ip;
use usnet::Stack;
use usnet_wire::EthernetAddress;

use crate::kernel::{ip as ip_cmd, source, Sink};

/// The namespace with the kernel's side of the TAP, and usnet's stack on it.
pub struct TapLab {
    ns: String,
    stack: Stack,
    port: u16,
}

/// Open the TAP `name` inside a fresh namespace `ns` and give the kernel's side
/// 10.77.1.1/24.
pub fn kernel_side(ns: &str, name: &str, offload: bool) -> Result<std::sync::Arc<Tap>, String> {
    ip_cmd(&["netns", "add", ns])?;
    let path = format!("/var/run/netns/{ns}");
    let tap = if offload {
        Tap::open_offload_in_netns(name, Path::new(&path))
    } else {
        Tap::open_in_netns(name, Path::new(&path))
    }
    .map_err(|e| e.to_string())?;
    ip_cmd(&["-n", ns, "link", "set", "lo", "up"])?;
    ip_cmd(&["-n", ns, "addr", "add", "10.77.1.1/24", "dev", name])?;
    ip_cmd(&["-n", ns, "link", "set", name, "up"])?;
    Ok(tap)
}

impl TapLab {
    /// Make the namespace and start usnet on the TAP (root needed).
    pub fn new() -> Result<TapLab, String> {
        let ns = format!("usbench-tap-{}", std::process::id());
        let tap = match kernel_side(&ns, "usnt0", true) {
            Ok(t) => t,
            Err(e) => {
                let _ = ip_cmd(&["netns", "del", &ns]);
                return Err(e);
            }
        };
        let stack = Stack::builder().name("usnet").build();
        let dev = Tap::create(
            &stack,
            &tap,
            "eth0",
            EthernetAddress([0x02, 0x75, 0x73, 0x6e, 0x65, 0x01]),
        )
        .map_err(|e| e.to_string())?;
        usnet::ipv4::addr::addr_add(&stack, &dev, ip(10, 77, 1, 2), 24)
            .map_err(|e| e.to_string())?;
        stack.start();
        Ok(TapLab {
            ns,
            stack,
            port: 6000,
        })
    }

    fn next_port(&mut self) -> u16 {
        self.port += 1;
        self.port
    }

    /// usnet sends `bytes` to a kernel sink, with `write` from a 1 MiB buffer or, with
    /// `splice`, handing that buffer's pages over uncopied (`send_pages`, as `sendfile`
    /// would); the sink's seconds.
    pub fn usnet_to_kernel(&mut self, exe: &Path, bytes: u64, splice: bool) -> Result<f64, String> {
        let port = self.next_port();
        let sink = Sink::start(&self.ns, exe, &format!("10.77.1.1:{port}"))?;
        let mut s = TcpStream::connect(&self.stack, SocketAddrV4::new(ip(10, 77, 1, 1), port))
            .map_err(|e| format!("usnet connect: {e}"))?;
        let buf = bytes::Bytes::from(vec![0x5au8; 1 << 20]);
        let mut sent = 0u64;
        while sent < bytes {
            let n = ((bytes - sent) as usize).min(buf.len());
            if splice {
                s.send_all_pages(&buf.slice(..n))
            } else {
                s.write_all(&buf[..n])
            }
            .map_err(|e| e.to_string())?;
            sent += n as u64;
        }
        s.shutdown(std::net::Shutdown::Write)
            .map_err(|e| e.to_string())?;
        let _ = s.read(&mut [0u8; 1]);
        sink.finish(bytes)
    }

    /// A kernel source sends `bytes` to usnet; usnet's seconds from the first byte to
    /// the end.
    pub fn kernel_to_usnet(&mut self, exe: &Path, bytes: u64) -> Result<f64, String> {
        let port = self.next_port();
        let l = TcpListener::bind(&self.stack, SocketAddrV4::new(ip(10, 77, 1, 2), port))
            .map_err(|e| format!("usnet bind: {e}"))?;
        let (ns, exe2) = (self.ns.clone(), exe.to_path_buf());
        let src = std::thread::spawn(move || {
            source(&ns, &exe2, &format!("10.77.1.2:{port}"), bytes, None)
        });
        let (mut c, _) = l.accept().map_err(|e| format!("usnet accept: {e}"))?;
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0u64;
        let mut t0 = None;
        loop {
            let n = c.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            t0.get_or_insert_with(std::time::Instant::now);
            got += n as u64;
        }
        let secs = t0.map_or(0.0, |t| t.elapsed().as_secs_f64());
        drop(c);
        src.join().map_err(|_| "source thread panicked")??;
        if got != bytes {
            return Err(format!("usnet got {got} of {bytes} bytes"));
        }
        Ok(secs)
    }
}

impl Drop for TapLab {
    fn drop(&mut self) {
        self.stack.stop();
        let _ = ip_cmd(&["netns", "del", &self.ns]);
    }
}

/// smoltcp on its own TAP (no offloads: smoltcp has none) in its own namespace, with
/// the kernel at 10.77.1.1 as for usnet.
pub struct SmolTapLab {
    ns: String,
    host: crate::smol::TapHost,
    port: u16,
}

impl SmolTapLab {
    /// Make the namespace and the TAP (root needed).
    pub fn new() -> Result<SmolTapLab, String> {
        let ns = format!("usbench-stap-{}", std::process::id());
        let tap = match kernel_side(&ns, "smolt0", false) {
            Ok(t) => t,
            Err(e) => {
                let _ = ip_cmd(&["netns", "del", &ns]);
                return Err(e);
            }
        };
        Ok(SmolTapLab {
            ns,
            host: crate::smol::TapHost::new(tap),
            port: 6500,
        })
    }

    /// smoltcp sends `bytes` to a kernel sink; the sink's seconds.
    pub fn smoltcp_to_kernel(&mut self, exe: &Path, bytes: u64) -> Result<f64, String> {
        self.port += 1;
        let sink = Sink::start(&self.ns, exe, &format!("10.77.1.1:{}", self.port))?;
        self.host.send(self.port, bytes)?;
        sink.finish(bytes)
    }

    /// A kernel source sends `bytes` to smoltcp; smoltcp's seconds.
    pub fn kernel_to_smoltcp(&mut self, exe: &Path, bytes: u64) -> Result<f64, String> {
        self.port += 1;
        let (ns, exe2, port) = (self.ns.clone(), exe.to_path_buf(), self.port);
        let src = std::thread::spawn(move || {
            source(&ns, &exe2, &format!("10.77.1.2:{port}"), bytes, None)
        });
        let secs = self.host.recv(port, bytes, || src.is_finished());
        src.join().map_err(|_| "source thread panicked")??;
        secs
    }
}

impl Drop for SmolTapLab {
    fn drop(&mut self) {
        let _ = ip_cmd(&["netns", "del", &self.ns]);
    }
}
