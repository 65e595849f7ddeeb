//! Rule matching (`ipt_do_table` / `ip_packet_match`, libxt_tcp / libxt_udp): source
//! and destination CIDRs and their negation, protocols by name and number, port ranges,
//! fragments and truncated headers (hot drop), interfaces with `+` wildcards, and
//! malformed packets.

use std::net::Ipv4Addr;

use super::*;

#[test]
fn source_cidr_and_negation() {
    let nf = nf_with(&[
        "-A INPUT -s 10.0.0.0/8 -j DROP",
        "-A INPUT ! -s 192.168.0.0/16 -j REJECT",
    ]);
    let v = |src: [u8; 4]| nf.nf_hook(&inp(&icmp(src, [1, 2, 3, 4]), "eth0"));
    assert_eq!(v([10, 0, 0, 1]), Verdict::Drop);
    assert_eq!(v([10, 255, 255, 255]), Verdict::Drop);
    assert_eq!(v([11, 0, 0, 0]), REJECT_PORT);
    assert_eq!(v([9, 255, 255, 255]), REJECT_PORT);
    assert_eq!(v([192, 168, 7, 7]), Verdict::Accept);
    assert_eq!(v([192, 169, 0, 0]), REJECT_PORT);
}

#[test]
fn destination_cidr_host_route_and_negation() {
    let nf = nf_with(&[
        "-A OUTPUT -d 8.8.8.8 -j DROP",
        "-A OUTPUT ! -d 172.16.0.0/12 -j RETURN",
        "-A OUTPUT -j REJECT",
    ]);
    let v = |dst: [u8; 4]| nf.nf_hook(&outp(&udp([1, 1, 1, 1], dst, 1, 53), "eth0"));
    assert_eq!(v([8, 8, 8, 8]), Verdict::Drop);
    assert_eq!(v([8, 8, 8, 9]), Verdict::Accept); // RETURN → policy ACCEPT
    assert_eq!(v([172, 31, 255, 255]), REJECT_PORT);
    assert_eq!(v([172, 32, 0, 0]), Verdict::Accept);
}

#[test]
fn addresses_are_masked_and_zero_prefix_means_any() {
    let r = Rule::builder()
        .src(Ipv4Addr::new(10, 1, 2, 3), 8)
        .dst(Ipv4Addr::new(9, 9, 9, 9), 0)
        .target(Target::Accept)
        .build()
        .unwrap();
    assert_eq!(r.src(), Some((Ipv4Addr::new(10, 0, 0, 0), 8)));
    assert_eq!(r.dst(), None);
    assert_eq!(r, rule("-A INPUT -s 10.0.0.0/8 -j ACCEPT"));
    // "! -s 0.0.0.0/0" is kept: it never matches.
    let never = rule("-A INPUT ! -s 0/0 -j DROP");
    assert_eq!(never.src(), Some((Ipv4Addr::UNSPECIFIED, 0)));
    assert!(never.src_neg());
    let nf = Netfilter::new();
    nf.filter().append(Chain::Input, never);
    let p = icmp([1, 2, 3, 4], [5, 6, 7, 8]);
    assert_eq!(nf.nf_hook(&inp(&p, "eth0")), Verdict::Accept);
    assert_eq!(
        Rule::builder()
            .src(Ipv4Addr::LOCALHOST, 33)
            .target(Target::Drop)
            .build(),
        Err(RuleError::InvalidPrefix(33))
    );
}

#[test]
fn protocol_by_name_number_and_negation() {
    let nf = nf_with(&[
        "-A INPUT -p icmp -j DROP",
        "-A INPUT -p 17 -j REJECT",
        "-A INPUT ! -p tcp -j DROP",
        "-A INPUT -p all -j RETURN",
    ]);
    let a = [1, 1, 1, 1];
    let b = [2, 2, 2, 2];
    assert_eq!(nf.nf_hook(&inp(&icmp(a, b), "e")), Verdict::Drop);
    assert_eq!(nf.nf_hook(&inp(&udp(a, b, 1, 2), "e")), REJECT_PORT);
    assert_eq!(
        nf.nf_hook(&inp(&ipv4(a, b, 47, 0, &[0; 8]), "e")),
        Verdict::Drop
    );
    assert_eq!(nf.nf_hook(&inp(&tcp(a, b, 1, 2), "e")), Verdict::Accept);
    let rules = nf.filter().rules(Chain::Input);
    assert_eq!(rules[0].proto(), Some(ICMP));
    assert_eq!(rules[2].proto(), Some(TCP));
    assert!(rules[2].proto_neg());
    assert_eq!(rules[3].proto(), None);
    assert_eq!(rules[3].counters(), (1, 40));
}

#[test]
fn port_ranges_single_open_and_negated() {
    let nf = nf_with(&[
        "-A INPUT -p tcp --dport 80 -j ACCEPT",
        "-A INPUT -p tcp --sport 1000:2000 -j DROP",
        "-A INPUT -p tcp --dport :10 -j REJECT --reject-with tcp-reset",
        "-A INPUT -p udp --dport 60000: -j DROP",
        "-A INPUT -p udp ! --sport 53 -j REJECT",
    ]);
    let a = [1, 1, 1, 1];
    let b = [2, 2, 2, 2];
    let t = |s, d| nf.nf_hook(&inp(&tcp(a, b, s, d), "e"));
    let u = |s, d| nf.nf_hook(&inp(&udp(a, b, s, d), "e"));
    assert_eq!(t(5000, 80), Verdict::Accept);
    assert_eq!(t(1000, 81), Verdict::Drop);
    assert_eq!(t(2000, 81), Verdict::Drop);
    assert_eq!(t(2001, 81), Verdict::Accept);
    assert_eq!(t(999, 0), Verdict::Reject(RejectWith::TcpReset));
    assert_eq!(t(999, 10), Verdict::Reject(RejectWith::TcpReset));
    assert_eq!(t(999, 11), Verdict::Accept);
    assert_eq!(u(53, 60000), Verdict::Drop);
    assert_eq!(u(53, 65535), Verdict::Drop);
    assert_eq!(u(53, 59999), Verdict::Accept);
    assert_eq!(u(54, 59999), REJECT_PORT);
    // A TCP rule's ports say nothing about UDP and the other way round.
    assert_eq!(u(1500, 80), REJECT_PORT);
    let r = &nf.filter().rules(Chain::Input)[4];
    assert_eq!(
        (r.sport(), r.sport_neg(), r.dport()),
        (Some((53, 53)), true, None)
    );
}

#[test]
fn ports_never_match_non_first_fragments() {
    let nf = nf_with(&[
        "-A INPUT -p udp --dport 53 -j DROP",
        "-A INPUT -p udp -j REJECT",
    ]);
    let a = [1, 1, 1, 1];
    let b = [2, 2, 2, 2];
    // First fragment (MF set, offset 0): the port rule applies.
    let first = ipv4(a, b, UDP, 0x2000, &udp_hdr(1, 53));
    assert_eq!(nf.nf_hook(&inp(&first, "e")), Verdict::Drop);
    // A later fragment whose payload happens to look like port 53: no port match, but
    // the protocol-only rule still matches.
    let later = ipv4(a, b, UDP, 0x2000 | 185, &udp_hdr(1, 53));
    assert_eq!(nf.nf_hook(&inp(&later, "e")), REJECT_PORT);
    let last = ipv4(a, b, UDP, 3, &udp_hdr(1, 53));
    assert_eq!(nf.nf_hook(&inp(&last, "e")), REJECT_PORT);
    let rules = nf.filter().rules(Chain::Input);
    assert_eq!(rules[0].counters().0, 1);
    assert_eq!(rules[1].counters().0, 2);
}

#[test]
fn tcp_offset_one_fragment_and_truncated_headers_are_hot_dropped() {
    let nf = nf_with(&[
        "-A INPUT -p tcp --dport 80 -j ACCEPT",
        "-A INPUT -p udp --dport 53 -j ACCEPT",
        "-A INPUT -p icmp -j ACCEPT",
    ]);
    let a = [1, 1, 1, 1];
    let b = [2, 2, 2, 2];
    // tcp_mt: a TCP fragment at offset 1 could overwrite the flags → drop.
    let evil = ipv4(a, b, TCP, 1, &tcp_hdr(1, 80));
    assert_eq!(nf.nf_hook(&inp(&evil, "e")), Verdict::Drop);
    // A first TCP fragment with only 8 bytes of TCP header: cannot be examined → drop.
    let short_tcp = ipv4(a, b, TCP, 0x2000, &tcp_hdr(1, 80)[..8]);
    assert_eq!(nf.nf_hook(&inp(&short_tcp, "e")), Verdict::Drop);
    // ... though `len` decides: the header is in the packet, just not in `data`.
    let p = tcp(a, b, 1, 80);
    assert_eq!(nf.nf_hook(&inp(&p[..28], "e")), Verdict::Drop);
    assert_eq!(
        nf.nf_hook(&with_len(inp(&p[..28], "e"), 1500)),
        Verdict::Accept
    );
    // Ports not readable at all.
    assert_eq!(
        nf.nf_hook(&with_len(inp(&p[..22], "e"), 1500)),
        Verdict::Drop
    );
    // UDP needs its 8 bytes.
    let u = udp(a, b, 1, 53);
    assert_eq!(nf.nf_hook(&inp(&u[..27], "e")), Verdict::Drop);
    assert_eq!(nf.nf_hook(&inp(&u, "e")), Verdict::Accept);
    // Hot drops move no counter; an ICMP packet never looks at ports.
    let rules = nf.filter().rules(Chain::Input);
    assert_eq!(rules[0].counters(), (1, 1500));
    assert_eq!(rules[1].counters(), (1, 28));
    assert_eq!(nf.filter().chain_counters(Chain::Input), (0, 0));
    let i = ipv4(a, b, ICMP, 0, &[8, 0]);
    assert_eq!(nf.nf_hook(&inp(&i, "e")), Verdict::Accept);
}

#[test]
fn interfaces_exact_wildcard_negated_and_missing() {
    let nf = nf_with(&[
        "-A INPUT -i eth0 -j DROP",
        "-A INPUT -i veth+ -j REJECT",
        "-A INPUT ! -i lo -j RETURN",
        "-A INPUT -i + -j DROP",
        "-A OUTPUT -o wg+ -j DROP",
        "-A OUTPUT ! -o eth1 -j REJECT",
        "-A FORWARD -i eth0 -o eth1 -j DROP",
    ]);
    let p = icmp([1, 1, 1, 1], [2, 2, 2, 2]);
    let i = |dev| nf.nf_hook(&inp(&p, dev));
    assert_eq!(i("eth0"), Verdict::Drop);
    assert_eq!(i("eth00"), Verdict::Accept); // exact: no prefix match; RETURN
    assert_eq!(i("eth"), Verdict::Accept);
    assert_eq!(i("veth"), REJECT_PORT); // the wildcard covers the bare prefix too
    assert_eq!(i("veth1234"), REJECT_PORT);
    assert_eq!(i("lo"), Verdict::Drop); // "-i +" matches any name
    let o = |dev| nf.nf_hook(&outp(&p, dev));
    assert_eq!(o("wg0"), Verdict::Drop);
    assert_eq!(o("eth1"), Verdict::Accept);
    assert_eq!(o("eth0"), REJECT_PORT);
    // No output device compares as the empty name: "! -o eth1" matches it.
    let no_dev = NfPacket {
        out_dev: None,
        ..outp(&p, "x")
    };
    assert_eq!(nf.nf_hook(&no_dev), REJECT_PORT);
    let fwd = |i, o| {
        nf.nf_hook(&NfPacket {
            hook: NfHook::Forward,
            data: &p,
            len: p.len(),
            in_dev: Some(i),
            out_dev: Some(o),
        })
    };
    assert_eq!(fwd("eth0", "eth1"), Verdict::Drop);
    assert_eq!(fwd("eth1", "eth0"), Verdict::Accept);
    let r = &nf.filter().rules(Chain::Input)[1];
    assert_eq!((r.in_iface(), r.in_neg()), (Some("veth+"), false));
}

#[test]
fn malformed_packets_match_only_rules_that_need_no_header() {
    let nf = nf_with(&[
        "-A INPUT -s 10.0.0.0/8 -j DROP",
        "-A INPUT ! -s 10.0.0.0/8 -j DROP",
        "-A INPUT ! -p tcp -j DROP",
        "-A INPUT -i eth1 -j REJECT",
    ]);
    let good = icmp([10, 0, 0, 1], [2, 2, 2, 2]);
    let mut bad_ihl = good.clone();
    bad_ihl[0] = 0x44;
    let mut long_ihl = good.clone();
    long_ihl[0] = 0x4f; // 60 bytes of header, 28 given
    let mut v6 = good.clone();
    v6[0] = 0x65;
    for data in [
        &good[..0],
        &good[..1],
        &good[..19],
        &bad_ihl[..],
        &long_ihl[..],
        &v6[..],
    ] {
        assert_eq!(nf.nf_hook(&inp(data, "eth0")), Verdict::Accept, "{data:?}");
        assert_eq!(nf.nf_hook(&inp(data, "eth1")), REJECT_PORT, "{data:?}");
    }
    let rules = nf.filter().rules(Chain::Input);
    assert_eq!(rules[0].counters(), (0, 0));
    assert_eq!(rules[1].counters(), (0, 0));
    assert_eq!(rules[2].counters(), (0, 0));
    assert_eq!(rules[3].counters().0, 6);
    assert_eq!(nf.filter().chain_counters(Chain::Input).0, 6);
    // The well-formed packet does hit the address rule.
    assert_eq!(nf.nf_hook(&inp(&good, "eth0")), Verdict::Drop);
}
