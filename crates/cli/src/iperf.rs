//! An iperf3-compatible TCP server (`usnet up --serve iperf3:5201`), so the stock
//! `iperf3 -c` client measures usnet as it would measure any host.
//!
//! The iperf3 protocol, as its client expects it: a control connection that opens with
//! the client's 37-byte cookie and then carries one-byte states — the server asks for
//! the parameters (`PARAM_EXCHANGE`, a 4-byte length and a JSON object back), asks for
//! the data streams (`CREATE_STREAMS`: each connects to the same port and sends the
//! cookie), starts the test (`TEST_START`, `TEST_RUNNING`); the client says
//! `TEST_END` when its time is up; the server asks for results (`EXCHANGE_RESULTS`:
//! the client's JSON, then ours), says `DISPLAY_RESULTS`, and the client ends with
//! `IPERF_DONE`. Data flows client → server, or server → client with `-R`. One test at a
//! time; TCP only (a UDP or bidirectional request is refused with `ACCESS_DENIED`).

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use usnet::socket::std_api::{TcpListener, TcpStream};

const COOKIE_SIZE: usize = 37;
const TEST_START: u8 = 1;
const TEST_RUNNING: u8 = 2;
const TEST_END: u8 = 4;
const PARAM_EXCHANGE: u8 = 9;
const CREATE_STREAMS: u8 = 10;
const CLIENT_TERMINATE: u8 = 12;
const EXCHANGE_RESULTS: u8 = 13;
const DISPLAY_RESULTS: u8 = 14;
const IPERF_DONE: u8 = 16;
/// `ACCESS_DENIED` (-1 as a signed char).
const ACCESS_DENIED: u8 = 0xff;
/// Largest JSON message accepted from a client.
const MAX_JSON: usize = 1 << 20;

/// Serve iperf3 tests on `listener` until it fails; one test at a time. Problems with
/// a test are reported on stderr and the server goes on.
pub fn serve(listener: TcpListener) {
    while let Ok((ctrl, peer)) = listener.accept() {
        if let Err(e) = run_test(&listener, ctrl) {
            eprintln!("usnet iperf3: test from {peer}: {e}");
        }
    }
}

fn read_cookie(s: &mut TcpStream) -> std::io::Result<[u8; COOKIE_SIZE]> {
    let mut c = [0u8; COOKIE_SIZE];
    s.read_exact(&mut c)?;
    Ok(c)
}

fn json_read(s: &mut TcpStream) -> Result<Value, String> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)
        .map_err(|e| format!("JSON length: {e}"))?;
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_JSON {
        return Err(format!("JSON of {n} bytes refused"));
    }
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).map_err(|e| format!("JSON: {e}"))?;
    serde_json::from_slice(&buf).map_err(|e| format!("JSON: {e}"))
}

fn json_write(s: &mut TcpStream, v: &Value) -> std::io::Result<()> {
    let text = v.to_string();
    s.write_all(&(text.len() as u32).to_be_bytes())?;
    s.write_all(text.as_bytes())
}

fn state(s: &mut TcpStream, st: u8) -> Result<(), String> {
    s.write_all(&[st]).map_err(|e| format!("state {st}: {e}"))
}

/// One stream's side of the test: count what arrives, or send blocks until `stop`.
fn run_stream(
    mut s: TcpStream,
    reverse: bool,
    blksize: usize,
    bytes: &AtomicU64,
    stop: &AtomicBool,
) {
    let mut buf = vec![0u8; blksize];
    if reverse {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
        while !stop.load(Ordering::Relaxed) {
            match s.write(&buf) {
                Ok(n) => {
                    bytes.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
    } else {
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

fn run_test(listener: &TcpListener, mut ctrl: TcpStream) -> Result<(), String> {
    ctrl.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let cookie = read_cookie(&mut ctrl).map_err(|e| format!("cookie: {e}"))?;
    state(&mut ctrl, PARAM_EXCHANGE)?;
    let params = json_read(&mut ctrl)?;
    let flag = |k: &str| params.get(k).is_some_and(|v| v.as_bool().unwrap_or(true));
    if flag("udp") || flag("sctp") || flag("bidirectional") {
        let _ = state(&mut ctrl, ACCESS_DENIED);
        return Err("only TCP, one direction, is served".into());
    }
    let reverse = flag("reverse");
    let parallel = params
        .get("parallel")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .clamp(1, 128) as usize;
    let blksize = params
        .get("len")
        .and_then(Value::as_u64)
        .unwrap_or(128 * 1024)
        .clamp(1, 1 << 20) as usize;
    state(&mut ctrl, CREATE_STREAMS)?;
    let mut streams = Vec::with_capacity(parallel);
    while streams.len() < parallel {
        let (mut s, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        match read_cookie(&mut s) {
            Ok(c) if c == cookie => {
                let _ = s.set_read_timeout(None);
                streams.push(s);
            }
            // Another client while a test runs.
            _ => {
                let _ = s.write_all(&[ACCESS_DENIED]);
            }
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let counts: Vec<Arc<AtomicU64>> = (0..parallel).map(|_| Arc::default()).collect();
    for (s, bytes) in streams.into_iter().zip(&counts) {
        let (bytes, stop) = (bytes.clone(), stop.clone());
        std::thread::spawn(move || run_stream(s, reverse, blksize, &bytes, &stop));
    }
    state(&mut ctrl, TEST_START)?;
    state(&mut ctrl, TEST_RUNNING)?;
    let t0 = Instant::now();
    // The test runs until the client says it is over (no read timeout meanwhile).
    ctrl.set_read_timeout(None).map_err(|e| e.to_string())?;
    let mut st = [0u8; 1];
    loop {
        ctrl.read_exact(&mut st)
            .map_err(|e| format!("waiting for TEST_END: {e}"))?;
        match st[0] {
            TEST_END => break,
            CLIENT_TERMINATE => {
                stop.store(true, Ordering::Relaxed);
                return Err("the client terminated the test".into());
            }
            _ => {}
        }
    }
    stop.store(true, Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    // Let the readers take in what was still in flight when the client stopped.
    let total = || {
        counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    let mut last = total();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(10));
        let now = total();
        if now == last {
            break;
        }
        last = now;
    }
    ctrl.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    state(&mut ctrl, EXCHANGE_RESULTS)?;
    let _client = json_read(&mut ctrl)?;
    // Stream ids as the client numbers them: 1, then 3, 4, ...
    let ids = std::iter::once(1).chain(3..);
    let results = json!({
        "cpu_util_total": 0.0,
        "cpu_util_user": 0.0,
        "cpu_util_system": 0.0,
        "sender_has_retransmits": 0,
        "congestion_used": "cubic",
        "streams": counts.iter().zip(ids).map(|(c, id)| json!({
            "id": id,
            "bytes": c.load(Ordering::Relaxed),
            "retransmits": -1,
            "jitter": 0,
            "errors": 0,
            "omitted_errors": 0,
            "packets": 0,
            "omitted_packets": 0,
            "start_time": 0,
            "end_time": secs,
        })).collect::<Vec<_>>(),
    });
    json_write(&mut ctrl, &results).map_err(|e| format!("results: {e}"))?;
    state(&mut ctrl, DISPLAY_RESULTS)?;
    match ctrl.read_exact(&mut st) {
        Ok(()) if st[0] == IPERF_DONE => Ok(()),
        Ok(()) => Err(format!("expected IPERF_DONE, got state {}", st[0])),
        Err(e) => Err(format!("expected IPERF_DONE: {e}")),
    }
}
