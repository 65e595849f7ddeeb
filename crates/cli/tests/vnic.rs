//! `usnet get`, `send`, `recv` and `up` over `--link vnic`: the real-link commands
//! against an in-process peer stack on an emulated NIC and in-memory wire, so they run
//! without root. Every run is bounded: a command still running after its deadline is
//! killed and the test fails.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Run `usnet ARGS`, killed after `secs`.
fn usnet(args: &[&str], secs: u64) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_usnet"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run usnet");
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "usnet {args:?} still running after {secs} s\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn ok(out: &Output) -> (String, String) {
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "status {}\nstdout: {o}\nstderr: {e}",
        out.status
    );
    (o, e)
}

/// A fresh directory under the system's temporary one.
fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("usnet-vnic-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// `n` pseudo-random bytes (xorshift64, seeded from the clock).
fn random_bytes(n: usize) -> Vec<u8> {
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

/// The SHA-256 of the first `n` bytes `usnet send` writes (its position-dependent
/// pattern), computed here independently.
fn pattern_sha256(n: u64) -> String {
    let mut h = Sha256::new();
    let mut buf = Vec::with_capacity(1 << 16);
    let mut p = 0u64;
    while p < n {
        buf.clear();
        let end = (p + (1 << 16)).min(n);
        buf.extend((p..end).map(|q| (q.wrapping_mul(31) ^ (q >> 11)) as u8));
        h.update(&buf);
        p = end;
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The hex digest after "sha256 " on the first line containing `needle`.
fn sha_on_line(text: &str, needle: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"));
    let hex = line
        .split("sha256 ")
        .nth(1)
        .unwrap_or_else(|| panic!("no sha256 on {line:?}"));
    hex.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Fetch `len` random bytes from the peer; returns stderr.
fn get_file_over_vnic(tag: &str, len: usize, impair: &[&str]) -> String {
    let dir = temp_dir(tag);
    let data = random_bytes(len);
    std::fs::write(dir.join("data.bin"), &data).expect("write");
    let out_path = dir.join("copy.bin");
    let serve = format!("http:80:{}", dir.display());
    let mut args = vec![
        "get",
        "http://10.0.0.1/data.bin",
        "-o",
        out_path.to_str().expect("utf-8 path"),
        "--link",
        "vnic",
        "--peer-serve",
        &serve,
    ];
    args.extend_from_slice(impair);
    let (_, err) = ok(&usnet(&args, 120));
    assert!(err.contains(&format!("usnet get: {len} bytes in")), "{err}");
    let got = std::fs::read(&out_path).expect("read the copy");
    assert!(
        got == data,
        "the copy differs ({} of {len} bytes)",
        got.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
    err
}

/// The frames lost on the wire, both directions, from `usnet CMD: wire: ...`.
fn wire_lost(err: &str) -> u64 {
    let line = err
        .lines()
        .find(|l| l.contains(": wire: "))
        .unwrap_or_else(|| panic!("no wire line in:\n{err}"));
    line.split('(')
        .skip(1)
        .map(|p| {
            p.split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("bad wire line {line:?}"))
        })
        .sum()
}

#[test]
fn get_fetches_a_file_byte_identical_from_the_peers_http_server() {
    let err = get_file_over_vnic("get", 4 << 20, &[]);
    assert_eq!(wire_lost(&err), 0, "{err}");
}

#[test]
fn get_completes_intact_through_one_percent_loss() {
    let err = get_file_over_vnic("loss", 2 << 20, &["--loss", "1%", "--delay", "1ms"]);
    assert!(wire_lost(&err) > 0, "the wire lost nothing: {err}");
}

/// `usnet send` (with `extra` options) into the peer's discard service: the count and
/// the digest match at both ends. Returns stderr.
fn send_into_discard(extra: &[&str]) -> String {
    let n = 5u64 << 20;
    let mut args = vec!["send", "10.0.0.1:9", "--bytes", "5M", "--link", "vnic"];
    args.extend(extra);
    let (out, err) = ok(&usnet(&args, 120));
    assert!(out.contains(&format!("usnet send: {n} bytes in")), "{out}");
    assert!(
        err.contains(&format!("discard:9 received {n} bytes from 10.0.0.2:")),
        "{err}"
    );
    let want = pattern_sha256(n);
    assert_eq!(sha_on_line(&out, "usnet send:"), want);
    assert_eq!(sha_on_line(&err, "discard:9 received"), want);
    err
}

#[test]
fn send_into_the_peers_discard_reports_the_exact_count_at_both_ends() {
    let err = send_into_discard(&[]);
    assert!(!err.contains("spliced"), "{err}");
}

/// `--splice`: buffers handed over uncopied and reused once let go (five 1 MiB
/// buffers, with loss so some wait for retransmissions) — the same bytes arrive.
#[test]
fn send_splice_delivers_the_same_bytes() {
    let err = send_into_discard(&["--splice", "--loss", "1%", "--delay", "1ms"]);
    assert!(
        err.contains("usnet send: spliced 5 buffers with send_pages"),
        "{err}"
    );
    assert!(wire_lost(&err) > 0, "the wire lost nothing: {err}");
}

#[test]
fn recv_takes_the_peers_connections_with_matching_sha256() {
    let n = 3u64 << 20;
    let out = usnet(
        &[
            "recv",
            "--listen",
            "5001",
            "--count",
            "2",
            "--link",
            "vnic",
            "--peer-send",
            "3M",
        ],
        120,
    );
    let (out, err) = ok(&out);
    let want = pattern_sha256(n);
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(" from 10.0.0.1:"))
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    for l in lines {
        assert!(l.starts_with(&format!("usnet recv: {n} bytes in")), "{l}");
        assert_eq!(sha_on_line(l, ""), want);
    }
    assert_eq!(sha_on_line(&err, "peer 10.0.0.1: sent"), want, "{err}");
}

#[test]
fn up_serves_the_peer_which_checks_every_service() {
    let dir = temp_dir("up");
    let serve = format!("echo:7,discard:9,chargen:19,http:80:{}", dir.display());
    let (out, _) = ok(&usnet(
        &["up", "--link", "vnic", "--serve", &serve, "--self-test"],
        60,
    ));
    for s in ["echo:7", "discard:9", "chargen:19", "http:80"] {
        assert!(out.contains(&format!("self-test: {s} ok")), "{out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn up_on_vnic_answers_the_control_socket() {
    let dir = temp_dir("ctl");
    let ctl = dir.join("ctl.sock");
    let ctl_s = ctl.to_str().expect("utf-8 path");
    let mut child = Command::new(env!("CARGO_BIN_EXE_usnet"))
        .args([
            "up",
            "--link",
            "vnic",
            "--serve",
            "discard:9",
            "--ctl",
            ctl_s,
            "--for",
            "30",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run usnet up");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("read");
    let out = usnet(&["ss", "--ctl", ctl_s, "-tl"], 20);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(first.contains("on vnic (peer 10.0.0.1"), "{first}");
    let (ss, _) = ok(&out);
    assert!(ss.contains("10.0.0.2:9"), "{ss}");
}

#[test]
fn a_bad_link_names_the_valid_forms() {
    let out = usnet(&["get", "http://10.0.0.1/x", "--link", "vnik"], 20);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for form in ["tap:NAME", "afpacket:IFACE", "vnic"] {
        assert!(err.contains(form), "{err}");
    }
    let out = usnet(&["send", "10.0.0.1:9", "--link", "vnic:nope"], 20);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("vnic:PEER_ADDRESS"));
    let out = usnet(
        &[
            "recv",
            "--listen",
            "1",
            "--link",
            "vnic",
            "--addr",
            "10.0.0.2/31",
        ],
        20,
    );
    assert!(!out.status.success());
}

#[test]
fn help_of_every_link_command_mentions_vnic() {
    for cmd in ["up", "get", "send", "recv"] {
        let (out, _) = ok(&usnet(&[cmd, "--help"], 20));
        assert!(out.contains("--link vnic"), "usnet {cmd} --help:\n{out}");
        let example = out.lines().any(|l| {
            l.trim_start().starts_with(&format!("usnet {cmd} ")) && l.contains("--link vnic")
        });
        assert!(
            example,
            "no --link vnic example in usnet {cmd} --help:\n{out}"
        );
    }
}
