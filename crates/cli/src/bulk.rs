//! `usnet send` and `usnet recv`: bulk TCP over a usnet stack on a real link, printing
//! the rate (as `iperf3` would) and the SHA-256 of the bytes, so either end can be a
//! Linux program and the transfer checked. On `--link vnic` the other end is the
//! in-process peer: its discard service reports what it took in, and for `recv` it
//! sends `--peer-send` bytes of the same pattern `send` writes.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use clap::Args;
use sha2::{Digest, Sha256};
use usnet::socket::pages::PageRing;
use usnet::socket::std_api::{TcpListener, TcpStream};
use usnet::Stack;

use crate::up::{bring_up, LinkArgs};

/// Options of `usnet send`.
#[derive(Args, Debug)]
#[command(after_help = "EXAMPLES:\n  \
    sudo usnet send 10.0.0.1:5001 --bytes 1G --link tap:usnet0 --addr 10.0.0.2/24\n  \
    (a Linux receiver: `python3 -c ...` or `nc -l 5001 > /dev/null` on 10.0.0.1)\n  \
    usnet send 10.0.0.1:9 --bytes 1G --link vnic\n  \
    (no root: into the discard service of the in-process peer 10.0.0.1, which reports\n   the bytes and SHA-256 it took in)\n  \
    usnet send 10.0.0.1:9 --bytes 10M --link vnic --loss 1% --delay 1ms --rate 1gbit\n  \
    usnet send 10.0.0.1:9 --bytes 1G --link vnic --splice\n  \
    (the buffers go to the stack uncopied, as with sendfile)")]
pub struct SendArgs {
    /// Where to connect: `ADDRESS:PORT`.
    to: SocketAddrV4,
    /// How much to send: a number with an optional K, M or G suffix (powers of 1024).
    #[arg(long, default_value = "100M")]
    bytes: String,
    /// Hand the buffers to the stack uncopied (`send_pages`, Linux's
    /// `MSG_SPLICE_PAGES` as `sendfile` uses), reusing each once the socket lets it go.
    #[arg(long)]
    splice: bool,
    #[command(flatten)]
    link: LinkArgs,
}

/// Options of `usnet recv`.
#[derive(Args, Debug)]
#[command(after_help = "EXAMPLES:\n  \
    sudo usnet recv --listen 5001 --link tap:usnet0 --addr 10.0.0.2/24\n  \
    (then from Linux: `head -c 1G /dev/zero | nc 10.0.0.2 5001`)\n  \
    usnet recv --listen 5001 --link vnic --peer-send 1G\n  \
    (no root: the in-process peer 10.0.0.1 connects and sends 1 GiB of `usnet send`'s pattern)")]
pub struct RecvArgs {
    /// Port to listen on.
    #[arg(long)]
    listen: u16,
    /// Connections to receive before exiting.
    #[arg(long, default_value_t = 1)]
    count: u32,
    /// With --link vnic: the peer connects --count times and sends this much each time
    /// (`1G`, `100M`, `64K`, `12345`), the bytes `usnet send` writes [default: 100M].
    #[arg(long, help_heading = "In-process link (--link vnic, no root)")]
    peer_send: Option<String>,
    #[command(flatten)]
    link: LinkArgs,
}

/// `1G`, `100M`, `64K`, `12345`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{s:?}: expected a size such as 1G, 100M, 64K or 12345"))
}

/// The bytes `send` writes: position-dependent, so a reordering or a lost chunk
/// changes the digest.
fn pattern(off: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        let p = off + i as u64;
        *b = (p.wrapping_mul(31) ^ (p >> 11)) as u8;
    }
}

/// `N bytes in S s (R Gbit/s) sha256 HEX`.
fn rate_line(n: u64, secs: f64, digest: &[u8]) -> String {
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{n} bytes in {secs:.2} s ({:.2} Gbit/s) sha256 {hex}",
        n as f64 * 8.0 / secs.max(1e-9) / 1e9
    )
}

/// Connect from `stack` to `to`, send `bytes` of [`pattern`], and wait for the receiver
/// to close; returns the seconds and the SHA-256. With `splice`, each 1 MiB buffer goes
/// to the stack uncopied and is refilled once the socket has let it go (all its bytes
/// acknowledged). With `progress`, a line on stderr every second.
fn send_pattern(
    stack: &Stack,
    to: SocketAddrV4,
    bytes: u64,
    splice: bool,
    progress: bool,
) -> std::io::Result<(f64, Vec<u8>)> {
    const CHUNK: usize = 1 << 20;
    const LENT_MAX: usize = 16;
    let mut s = TcpStream::connect(stack, to)?;
    let mut buf = vec![0u8; CHUNK];
    // Spliced buffers, refilled once the stack lets them go.
    let mut ring = PageRing::new(LENT_MAX);
    let mut spliced = 0u64;
    let mut h = Sha256::new();
    let t0 = Instant::now();
    let mut sent = 0u64;
    let mut last = Instant::now();
    let mut shown = false;
    while sent < bytes {
        let n = ((bytes - sent) as usize).min(CHUNK);
        if splice {
            let mut page = ring.take(n);
            spliced += 1;
            pattern(sent, &mut page);
            h.update(&page);
            let page = page.freeze();
            s.send_all_pages(&page)?;
            ring.lend(page);
        } else {
            pattern(sent, &mut buf[..n]);
            s.write_all(&buf[..n])?;
            h.update(&buf[..n]);
        }
        sent += n as u64;
        if progress && last.elapsed().as_secs() >= 1 {
            last = Instant::now();
            shown = true;
            eprint!("\rusnet send: {sent} of {bytes} bytes ");
        }
    }
    if shown {
        eprintln!();
    }
    if splice && progress {
        eprintln!(
            "usnet send: spliced {spliced} buffers with send_pages, {} of them \
             refilled after the stack let them go",
            ring.refilled()
        );
    }
    s.shutdown(std::net::Shutdown::Write)?;
    // Wait for the receiver to close: everything was delivered.
    let _ = s.read(&mut [0u8; 1]);
    Ok((t0.elapsed().as_secs_f64(), h.finalize().to_vec()))
}

/// Run `usnet send`; returns the exit status.
pub fn run_send(a: SendArgs) -> i32 {
    let bytes = match parse_size(&a.bytes) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("usnet send: --bytes {e}");
            return 2;
        }
    };
    let host = match bring_up(&a.link) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("usnet send: {e}");
            return 1;
        }
    };
    let r = send_pattern(&host.stack, a.to, bytes, a.splice, true);
    host.report_wire("send");
    host.stop();
    match r {
        Ok((secs, d)) => {
            println!("usnet send: {}", rate_line(bytes, secs, &d));
            0
        }
        Err(e) => {
            eprintln!("usnet send: {}: {e}", a.to);
            1
        }
    }
}

/// Run `usnet recv`; returns the exit status.
pub fn run_recv(a: RecvArgs) -> i32 {
    let peer_send = match (&a.peer_send, a.link.is_vnic()) {
        (Some(_), false) => {
            eprintln!("usnet recv: --peer-send applies to --link vnic only");
            return 2;
        }
        (Some(b), true) => match parse_size(b) {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("usnet recv: --peer-send {e}");
                return 2;
            }
        },
        (None, true) => Some(100 << 20),
        (None, false) => None,
    };
    let host = match bring_up(&a.link) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("usnet recv: {e}");
            return 1;
        }
    };
    let (stack, addr) = (&host.stack, host.addr);
    let mut sender = None;
    let r = (|| -> std::io::Result<()> {
        let l = TcpListener::bind(stack, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, a.listen))?;
        println!("usnet recv: listening on {addr}:{}", a.listen);
        let _ = std::io::stdout().flush();
        if let (Some(peer), Some(bytes)) = (&host.peer, peer_send) {
            let (ps, who, to) = (
                peer.stack.clone(),
                peer.addr,
                SocketAddrV4::new(addr, a.listen),
            );
            let count = a.count;
            sender = Some(std::thread::spawn(move || {
                for _ in 0..count {
                    match send_pattern(&ps, to, bytes, false, false) {
                        Ok((secs, d)) => {
                            eprintln!("peer {who}: sent {}", rate_line(bytes, secs, &d))
                        }
                        Err(e) => {
                            eprintln!("peer {who}: sending to {to}: {e}");
                            return;
                        }
                    }
                }
            }));
        }
        let mut buf = vec![0u8; 1 << 20];
        for _ in 0..a.count {
            let (mut c, peer) = l.accept()?;
            let mut h = Sha256::new();
            let mut n = 0u64;
            let mut t0 = None;
            loop {
                let k = c.read(&mut buf)?;
                if k == 0 {
                    break;
                }
                t0.get_or_insert_with(Instant::now);
                h.update(&buf[..k]);
                n += k as u64;
            }
            let secs = t0.map_or(0.0, |t| t.elapsed().as_secs_f64());
            drop(c);
            println!(
                "usnet recv: {} from {peer}",
                rate_line(n, secs, &h.finalize())
            );
            let _ = std::io::stdout().flush();
        }
        Ok(())
    })();
    // The peer's sender finishes once it has seen our close.
    if let Some(t) = sender {
        if r.is_ok() {
            let _ = t.join();
        }
    }
    host.report_wire("recv");
    host.stop();
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("usnet recv: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes_and_refuse_nonsense() {
        assert_eq!(parse_size("12345"), Ok(12345));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("100m"), Ok(100 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert!(parse_size("G").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999G").is_err());
    }
}
