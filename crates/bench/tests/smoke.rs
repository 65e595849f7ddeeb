//! Each system's measurement works and moves the bytes it claims.

#[test]
fn smoltcp_pair_connects_and_moves_data() {
    let mut p = usnet_bench::smol::Pair::new(1500, 1 << 20);
    let secs = p.bulk(4 << 20).unwrap();
    assert!(secs > 0.0);
    assert!(p.rr(100) > 0.0);
    assert!(p.conn_rate(20).unwrap() > 0.0);
}

#[test]
fn usnet_pair_moves_data_and_sets_up_connections() {
    let p = usnet_bench::usn::Pair::new(9000);
    assert!(p.bulk(8 << 20) > 0.0);
    assert!(p.rr(100) > 0.0);
    assert!(usnet_bench::usn::conn_rate(50) > 0.0);
}

#[test]
fn the_kernel_peers_work_over_loopback() {
    assert!(usnet_bench::kernel::rr_loopback(100).unwrap() > 0.0);
    assert!(usnet_bench::kernel::conn_rate_loopback(50).unwrap() > 0.0);
}

#[test]
fn usnet_pair_with_big_tcp_moves_data() {
    let p = usnet_bench::usn::Pair::with_big_tcp(
        1500,
        usnet_bench::usn::BULK_LINE_RATE,
        usnet_bench::usn::BIG_TCP_SIZE,
    );
    assert!(p.bulk(16 << 20) > 0.0);
}

#[test]
fn the_big_tcp_peer_names_a_missing_device() {
    let args: Vec<String> = ["big-tcp", "usnet-none0", "185000"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(usnet_bench::kernel::peer_main(&args), 1);
}

/// `bench-peer source-sendfile` sends exactly the bytes asked for, past the end of its
/// 1 MiB file (the offset wraps), all of the file's pattern.
#[test]
fn the_sendfile_source_sends_exactly_its_bytes() {
    use std::io::Read;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got
    });
    let n = 3 * (1 << 20) + 12_345;
    let args: Vec<String> = ["source-sendfile", &addr, &n.to_string()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(usnet_bench::kernel::peer_main(&args), 0);
    let got = reader.join().unwrap();
    assert_eq!(got.len(), n);
    assert!(got.iter().all(|b| *b == 0x5a));
}
