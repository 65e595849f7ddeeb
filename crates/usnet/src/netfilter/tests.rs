//! Tests of the netfilter hooks, the filter table and the iptables parser.
//!
//! The expected listings are written from iptables' printing code (`print_header`,
//! `print_firewall` / `print_rule_details`, `print_ifaces`, `print_ipv4_addresses`,
//! libxtables' `xtables_print_num`, libxt_tcp's `print_ports`, libipt_REJECT's `print`),
//! trailing spaces included.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;

use super::*;

// ---------------------------------------------------------------------------------------
// Packet builders
// ---------------------------------------------------------------------------------------

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;

/// An IPv4 header (IHL 5) with `frag` as the flags + fragment offset word, then `l4`.
fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, frag: u16, l4: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + l4.len()).unwrap();
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 1]);
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(l4);
    p
}

/// A TCP segment header (20 bytes) with the given ports.
fn tcp_hdr(sport: u16, dport: u16) -> Vec<u8> {
    let mut h = vec![0; 20];
    h[0..2].copy_from_slice(&sport.to_be_bytes());
    h[2..4].copy_from_slice(&dport.to_be_bytes());
    h[12] = 5 << 4;
    h
}

/// A UDP header (8 bytes) with the given ports.
fn udp_hdr(sport: u16, dport: u16) -> Vec<u8> {
    let mut h = vec![0; 8];
    h[0..2].copy_from_slice(&sport.to_be_bytes());
    h[2..4].copy_from_slice(&dport.to_be_bytes());
    h[4..6].copy_from_slice(&8u16.to_be_bytes());
    h
}

fn tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    ipv4(src, dst, TCP, 0, &tcp_hdr(sport, dport))
}

fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    ipv4(src, dst, UDP, 0, &udp_hdr(sport, dport))
}

fn icmp(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    ipv4(src, dst, ICMP, 0, &[8, 0, 0, 0, 0, 1, 0, 1])
}

/// A packet arriving on `dev` (INPUT).
fn inp<'a>(data: &'a [u8], dev: &'a str) -> NfPacket<'a> {
    NfPacket {
        hook: NfHook::LocalIn,
        data,
        len: data.len(),
        in_dev: Some(dev),
        out_dev: None,
    }
}

/// A packet leaving on `dev` (OUTPUT).
fn outp<'a>(data: &'a [u8], dev: &'a str) -> NfPacket<'a> {
    NfPacket {
        hook: NfHook::LocalOut,
        data,
        len: data.len(),
        in_dev: None,
        out_dev: Some(dev),
    }
}

fn with_len(mut p: NfPacket<'_>, len: usize) -> NfPacket<'_> {
    p.len = len;
    p
}

/// Run iptables command lines against a table.
fn ipt(table: &FilterTable, lines: &[&str]) {
    for line in lines {
        let args: Vec<&str> = line.split_whitespace().collect();
        parse_command(&args)
            .unwrap_or_else(|e| panic!("{line}: {e}"))
            .apply(table)
            .unwrap_or_else(|e| panic!("{line}: {e}"));
    }
}

fn nf_with(lines: &[&str]) -> Netfilter {
    let nf = Netfilter::new();
    ipt(nf.filter(), lines);
    nf
}

fn parse_err(line: &str) -> ParseError {
    let args: Vec<&str> = line.split_whitespace().collect();
    match parse_command(&args) {
        Ok(cmd) => panic!("{line}: parsed as {cmd:?}"),
        Err(e) => e,
    }
}

fn rule(line: &str) -> Rule {
    let args: Vec<&str> = line.split_whitespace().collect();
    match parse_command(&args).unwrap_or_else(|e| panic!("{line}: {e}")) {
        Command::Append { rule, .. } => rule,
        other => panic!("{line}: not -A: {other:?}"),
    }
}

const REJECT_PORT: Verdict = Verdict::Reject(RejectWith::IcmpPortUnreachable);

// ---------------------------------------------------------------------------------------
// Hooks
// ---------------------------------------------------------------------------------------

#[test]
fn hooks_have_linux_numbers_and_names() {
    let idx: Vec<usize> = NfHook::ALL.iter().map(|h| h.index()).collect();
    assert_eq!(idx, [0, 1, 2, 3, 4]);
    let names: Vec<String> = NfHook::ALL.iter().map(|h| h.to_string()).collect();
    assert_eq!(
        names,
        [
            "PRE_ROUTING",
            "LOCAL_IN",
            "FORWARD",
            "LOCAL_OUT",
            "POST_ROUTING"
        ]
    );
    let chains: Vec<&str> = NfHook::ALL.iter().map(|h| h.chain_name()).collect();
    assert_eq!(
        chains,
        ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"]
    );
    assert_eq!(Chain::for_hook(NfHook::PreRouting), None);
    assert_eq!(Chain::for_hook(NfHook::PostRouting), None);
    for c in Chain::ALL {
        assert_eq!(Chain::for_hook(c.hook()), Some(c));
        assert_eq!(c.to_string().parse::<Chain>().unwrap(), c);
    }
    assert!("input".parse::<Chain>().is_err());
    assert!("PREROUTING".parse::<Chain>().is_err());
    assert_eq!(
        [
            NF_IP_PRI_FIRST,
            NF_IP_PRI_RAW,
            NF_IP_PRI_CONNTRACK,
            NF_IP_PRI_MANGLE
        ],
        [i32::MIN, -300, -200, -150]
    );
    assert_eq!(
        [
            NF_IP_PRI_NAT_DST,
            NF_IP_PRI_FILTER,
            NF_IP_PRI_SECURITY,
            NF_IP_PRI_NAT_SRC
        ],
        [-100, 0, 50, 100]
    );
    assert_eq!(NF_IP_PRI_LAST, i32::MAX);
}

#[test]
fn fresh_netfilter_accepts_everything_at_every_hook() {
    let nf = Netfilter::new();
    let p = tcp([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
    for hook in NfHook::ALL {
        let pkt = NfPacket {
            hook,
            data: &p,
            len: p.len(),
            in_dev: Some("eth0"),
            out_dev: Some("eth1"),
        };
        assert_eq!(nf.nf_hook(&pkt), Verdict::Accept, "{hook}");
    }
    // The policy of each filter chain counted its packet.
    for c in Chain::ALL {
        assert_eq!(nf.filter().chain_counters(c), (1, 40));
        assert_eq!(nf.filter().policy(c), Target::Accept);
    }
}

/// Records its name, then gives its verdict.
struct Recorder {
    name: &'static str,
    log: Arc<Mutex<Vec<&'static str>>>,
    verdict: Verdict,
}

impl NfHookFn for Recorder {
    fn hook(&self, _pkt: &NfPacket<'_>) -> Verdict {
        self.log.lock().unwrap().push(self.name);
        self.verdict
    }
}

fn recorder(
    name: &'static str,
    log: &Arc<Mutex<Vec<&'static str>>>,
    verdict: Verdict,
) -> Arc<dyn NfHookFn> {
    Arc::new(Recorder {
        name,
        log: Arc::clone(log),
        verdict,
    })
}

#[test]
fn hooks_run_in_priority_order_around_the_filter_table() {
    let nf = nf_with(&["-A INPUT -p udp -j DROP"]);
    let log = Arc::new(Mutex::new(Vec::new()));
    // Registered out of order on purpose.
    nf.register_hook(
        NfHook::LocalIn,
        NF_IP_PRI_NAT_SRC,
        recorder("nat_src", &log, Verdict::Accept),
    );
    nf.register_hook(
        NfHook::LocalIn,
        NF_IP_PRI_MANGLE,
        recorder("mangle", &log, Verdict::Accept),
    );
    nf.register_hook(
        NfHook::LocalIn,
        NF_IP_PRI_FILTER,
        recorder("after_filter", &log, Verdict::Accept),
    );
    nf.register_hook(
        NfHook::LocalIn,
        NF_IP_PRI_FIRST,
        recorder("first", &log, Verdict::Accept),
    );

    // Accepted by everyone: all run, in ascending priority; the filter's policy counted.
    let p = tcp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2);
    assert_eq!(nf.nf_hook(&inp(&p, "eth0")), Verdict::Accept);
    assert_eq!(
        *log.lock().unwrap(),
        ["first", "mangle", "after_filter", "nat_src"]
    );
    assert_eq!(nf.filter().chain_counters(Chain::Input), (1, 40));

    // Dropped by the filter table: the hooks after it do not run.
    log.lock().unwrap().clear();
    let u = udp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2);
    assert_eq!(nf.nf_hook(&inp(&u, "eth0")), Verdict::Drop);
    assert_eq!(*log.lock().unwrap(), ["first", "mangle"]);
    assert_eq!(nf.filter().rules(Chain::Input)[0].counters(), (1, 28));
}

#[test]
fn a_hook_that_drops_before_the_filter_stops_the_traversal() {
    let nf = nf_with(&["-A INPUT -j ACCEPT"]);
    let log = Arc::new(Mutex::new(Vec::new()));
    nf.register_hook(
        NfHook::LocalIn,
        NF_IP_PRI_CONNTRACK,
        recorder("dropper", &log, Verdict::Drop),
    );
    nf.register_hook(
        NfHook::LocalIn,
        NF_IP_PRI_LAST,
        recorder("last", &log, Verdict::Accept),
    );
    let p = tcp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2);
    assert_eq!(nf.nf_hook(&inp(&p, "eth0")), Verdict::Drop);
    assert_eq!(*log.lock().unwrap(), ["dropper"]);
    // The filter table never saw it.
    assert_eq!(nf.filter().rules(Chain::Input)[0].counters(), (0, 0));
    assert_eq!(nf.filter().chain_counters(Chain::Input), (0, 0));
}

#[test]
fn equal_priorities_run_in_registration_order_and_reject_passes_through() {
    let nf = Netfilter::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    nf.register_hook(NfHook::PreRouting, 5, recorder("a", &log, Verdict::Accept));
    nf.register_hook(NfHook::PreRouting, 5, recorder("b", &log, Verdict::Accept));
    nf.register_hook(
        NfHook::PreRouting,
        5,
        recorder("c", &log, Verdict::Reject(RejectWith::IcmpHostProhibited)),
    );
    nf.register_hook(NfHook::PreRouting, 5, recorder("d", &log, Verdict::Accept));
    let p = icmp([1, 1, 1, 1], [2, 2, 2, 2]);
    let pkt = NfPacket {
        hook: NfHook::PreRouting,
        data: &p,
        len: p.len(),
        in_dev: Some("eth0"),
        out_dev: None,
    };
    assert_eq!(
        nf.nf_hook(&pkt),
        Verdict::Reject(RejectWith::IcmpHostProhibited)
    );
    assert_eq!(*log.lock().unwrap(), ["a", "b", "c"]);
    // Other hooks are untouched.
    let post = NfPacket {
        hook: NfHook::PostRouting,
        ..pkt
    };
    assert_eq!(nf.nf_hook(&post), Verdict::Accept);
    assert_eq!(log.lock().unwrap().len(), 3);
}

#[test]
fn unregister_removes_only_that_hook() {
    let nf = Netfilter::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let dropper = recorder("drop", &log, Verdict::Drop);
    let other = recorder("other", &log, Verdict::Accept);
    nf.register_hook(NfHook::LocalOut, -10, Arc::clone(&dropper));
    nf.register_hook(NfHook::LocalOut, 10, Arc::clone(&other));
    let p = udp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2);
    assert_eq!(nf.nf_hook(&outp(&p, "eth0")), Verdict::Drop);
    assert!(nf.unregister_hook(NfHook::LocalOut, &dropper));
    assert!(!nf.unregister_hook(NfHook::LocalOut, &dropper));
    assert!(!nf.unregister_hook(NfHook::LocalIn, &other));
    assert_eq!(nf.nf_hook(&outp(&p, "eth0")), Verdict::Accept);
    assert_eq!(*log.lock().unwrap(), ["drop", "other"]);
    assert!(nf.unregister_hook(NfHook::LocalOut, &other));
    assert_eq!(
        nf.custom[NfHook::LocalOut.index()].load(Ordering::Relaxed),
        0
    );
    assert!(format!("{nf:?}").contains("filter/OUTPUT@0"));
}

/// Run `nf_hook` on another thread; `None` if it did not return within five seconds
/// (it should take microseconds; the margin is for a loaded machine).
fn hook_unblocked(nf: &Arc<Netfilter>, hook: NfHook, data: Vec<u8>) -> Option<Verdict> {
    let (tx, rx) = mpsc::channel();
    let nf = Arc::clone(nf);
    std::thread::spawn(move || {
        let pkt = NfPacket {
            hook,
            data: &data,
            len: data.len(),
            in_dev: Some("eth0"),
            out_dev: Some("eth1"),
        };
        let _ = tx.send(nf.nf_hook(&pkt));
    });
    rx.recv_timeout(Duration::from_secs(5)).ok()
}

#[test]
fn fast_path_takes_no_lock_when_nothing_is_hooked_and_chains_are_empty() {
    let nf = Arc::new(Netfilter::new());
    nf.filter()
        .set_policy(Chain::Forward, Target::Drop)
        .unwrap();
    let p = tcp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2);
    {
        // Hold every lock the slow path would need, exclusively.
        let _rules = nf.filter().lock_rules_for_test();
        let _hooks: Vec<_> = nf.hooks.iter().map(|h| h.write()).collect();
        for hook in NfHook::ALL {
            let want = if hook == NfHook::Forward {
                Verdict::Drop
            } else {
                Verdict::Accept
            };
            assert_eq!(hook_unblocked(&nf, hook, p.clone()), Some(want), "{hook}");
        }
    }
    // The policies still counted (atomics only).
    assert_eq!(nf.filter().chain_counters(Chain::Forward), (1, 40));
    assert_eq!(nf.filter().chain_counters(Chain::Input), (1, 40));

    // With a rule in INPUT, the INPUT path does need the rule lock (and others do not).
    nf.filter().append(Chain::Input, rule("-A INPUT -j ACCEPT"));
    let guard = nf.filter().lock_rules_for_test();
    assert_eq!(
        hook_unblocked(&nf, NfHook::LocalOut, p.clone()),
        Some(Verdict::Accept)
    );
    let (tx, rx) = mpsc::channel();
    let nf2 = Arc::clone(&nf);
    let p2 = p.clone();
    let t = std::thread::spawn(move || {
        let _ = tx.send(nf2.nf_hook(&inp(&p2, "eth0")));
    });
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
    drop(guard);
    assert_eq!(rx.recv().unwrap(), Verdict::Accept);
    t.join().unwrap();
}

// ---------------------------------------------------------------------------------------
// Matches
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Traversal, targets, counters
// ---------------------------------------------------------------------------------------

#[test]
fn first_matching_rule_decides() {
    let nf = nf_with(&[
        "-A INPUT -p tcp -j REJECT --reject-with icmp-admin-prohibited",
        "-A INPUT -p tcp --dport 22 -j ACCEPT",
        "-A INPUT -j DROP",
    ]);
    let p = tcp([1, 1, 1, 1], [2, 2, 2, 2], 1, 22);
    assert_eq!(
        nf.nf_hook(&inp(&p, "e")),
        Verdict::Reject(RejectWith::IcmpAdminProhibited)
    );
    let rules = nf.filter().rules(Chain::Input);
    assert_eq!(
        rules.iter().map(Rule::counters).collect::<Vec<_>>(),
        [(1, 40), (0, 0), (0, 0)]
    );
    // Move the ACCEPT to the front.
    nf.filter().delete(Chain::Input, 2).unwrap();
    nf.filter()
        .insert(
            Chain::Input,
            1,
            rule("-A INPUT -p tcp --dport 22 -j ACCEPT"),
        )
        .unwrap();
    assert_eq!(nf.nf_hook(&inp(&p, "e")), Verdict::Accept);
    assert_eq!(
        nf.nf_hook(&inp(&udp([1, 1, 1, 1], [2, 2, 2, 2], 1, 22), "e")),
        Verdict::Drop
    );
}

#[test]
fn return_in_a_builtin_chain_falls_to_the_policy() {
    let nf = nf_with(&[
        "-P INPUT DROP",
        "-A INPUT -s 10.0.0.0/8 -j RETURN",
        "-A INPUT -j ACCEPT",
    ]);
    let inside = icmp([10, 1, 1, 1], [2, 2, 2, 2]);
    let outside = icmp([11, 1, 1, 1], [2, 2, 2, 2]);
    assert_eq!(nf.nf_hook(&inp(&inside, "e")), Verdict::Drop);
    assert_eq!(nf.nf_hook(&inp(&outside, "e")), Verdict::Accept);
    let rules = nf.filter().rules(Chain::Input);
    // RETURN counts on its rule and then on the policy.
    assert_eq!(rules[0].counters(), (1, 28));
    assert_eq!(rules[1].counters(), (1, 28));
    assert_eq!(nf.filter().chain_counters(Chain::Input), (1, 28));
}

#[test]
fn policy_drop_with_and_without_rules() {
    let nf = nf_with(&["-P OUTPUT DROP"]);
    let p = udp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2);
    assert_eq!(nf.nf_hook(&outp(&p, "eth0")), Verdict::Drop);
    ipt(nf.filter(), &["-A OUTPUT -p udp --dport 2 -j ACCEPT"]);
    assert_eq!(nf.nf_hook(&outp(&p, "eth0")), Verdict::Accept);
    let q = udp([1, 1, 1, 1], [2, 2, 2, 2], 1, 3);
    assert_eq!(nf.nf_hook(&outp(&q, "eth0")), Verdict::Drop);
    assert_eq!(nf.filter().chain_counters(Chain::Output), (2, 56));
    assert_eq!(nf.filter().policy(Chain::Output), Target::Drop);
    ipt(nf.filter(), &["-P OUTPUT ACCEPT"]);
    assert_eq!(nf.nf_hook(&outp(&q, "eth0")), Verdict::Accept);
    // Only ACCEPT and DROP are policies.
    let e = nf
        .filter()
        .set_policy(Chain::Input, Target::Return)
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(nf
        .filter()
        .set_policy(Chain::Input, Target::Reject(RejectWith::TcpReset))
        .is_err());
    assert_eq!(nf.filter().policy(Chain::Input), Target::Accept);
}

#[test]
fn counters_count_packets_and_full_length_bytes() {
    let nf = nf_with(&["-A INPUT -p tcp -j ACCEPT", "-A FORWARD -j DROP"]);
    let p = tcp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2);
    // Only headers are linear; `len` is what counts.
    for _ in 0..3 {
        nf.nf_hook(&with_len(inp(&p, "e"), 1500));
    }
    nf.nf_hook(&inp(&p, "e"));
    nf.nf_hook(&inp(&icmp([1, 1, 1, 1], [2, 2, 2, 2]), "e"));
    let fwd = NfPacket {
        hook: NfHook::Forward,
        data: &p,
        len: 9000,
        in_dev: Some("a"),
        out_dev: Some("b"),
    };
    nf.nf_hook(&fwd);
    let t = nf.filter();
    assert_eq!(t.rules(Chain::Input)[0].counters(), (4, 4540));
    assert_eq!(t.chain_counters(Chain::Input), (1, 28));
    assert_eq!(t.rules(Chain::Forward)[0].counters(), (1, 9000));
    assert_eq!(t.chain_counters(Chain::Forward), (0, 0));
    assert_eq!(t.chain_counters(Chain::Output), (0, 0));

    // -Z FORWARD zeroes one chain, -Z all.
    ipt(t, &["-Z FORWARD"]);
    assert_eq!(t.rules(Chain::Forward)[0].counters(), (0, 0));
    assert_eq!(t.rules(Chain::Input)[0].counters(), (4, 4540));
    t.zero();
    assert_eq!(t.rules(Chain::Input)[0].counters(), (0, 0));
    assert_eq!(t.chain_counters(Chain::Input), (0, 0));
}

#[test]
fn edits_keep_the_counters_of_untouched_rules() {
    let t = FilterTable::new();
    ipt(&t, &["-A INPUT -p tcp -j ACCEPT"]);
    let p = tcp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2);
    assert_eq!(t.do_chain(Chain::Input, &inp(&p, "e")), Verdict::Accept);
    ipt(&t, &["-I INPUT -p udp -j DROP", "-A INPUT -j DROP"]);
    assert_eq!(t.rules(Chain::Input)[1].counters(), (1, 40));
    // -R replaces the rule and its counters.
    ipt(&t, &["-R INPUT 2 -p tcp -j REJECT"]);
    assert_eq!(t.rules(Chain::Input)[1].counters(), (0, 0));
    assert_eq!(t.do_chain(Chain::Input, &inp(&p, "e")), REJECT_PORT);
}

#[test]
fn insert_positions_and_errors() {
    let t = FilterTable::new();
    let r = |n: u16| rule(&format!("-A INPUT -p tcp --dport {n} -j ACCEPT"));
    t.insert(Chain::Input, 1, r(1)).unwrap(); // into an empty chain
    t.insert(Chain::Input, 2, r(3)).unwrap(); // one past the end = append
    t.insert(Chain::Input, 2, r(2)).unwrap(); // in the middle
    t.insert(Chain::Input, 1, r(0)).unwrap(); // at the front
    let ports = |t: &FilterTable| -> Vec<u16> {
        t.rules(Chain::Input)
            .iter()
            .map(|r| r.dport().unwrap().0)
            .collect()
    };
    assert_eq!(ports(&t), [0, 1, 2, 3]);
    let e = t.insert(Chain::Input, 6, r(9)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("Index of insertion too big"), "{e}");
    assert!(t.insert(Chain::Input, 0, r(9)).is_err());
    assert_eq!(t.rule_count(Chain::Input), 4);
    assert_eq!(t.rule_count(Chain::Output), 0);
    // -I without a number inserts at the top.
    ipt(&t, &["-I INPUT -p tcp --dport 7 -j ACCEPT"]);
    assert_eq!(ports(&t), [7, 0, 1, 2, 3]);
}

#[test]
fn delete_by_position_and_by_spec() {
    let t = FilterTable::new();
    ipt(
        &t,
        &[
            "-A INPUT -p tcp --dport 1 -j ACCEPT",
            "-A INPUT -p tcp --dport 2 -j ACCEPT",
            "-A INPUT -p tcp --dport 3 -j ACCEPT",
            "-A INPUT -p tcp --dport 2 -j ACCEPT",
        ],
    );
    let ports = |t: &FilterTable| -> Vec<u16> {
        t.rules(Chain::Input)
            .iter()
            .map(|r| r.dport().unwrap().0)
            .collect()
    };
    let e = t.delete(Chain::Input, 5).unwrap_err();
    assert!(e.to_string().contains("Index of deletion too big"), "{e}");
    assert!(t.delete(Chain::Input, 0).is_err());
    assert!(t.delete(Chain::Output, 1).is_err());
    ipt(&t, &["-D INPUT 3"]);
    assert_eq!(ports(&t), [1, 2, 2]);
    // By spec: the first equal rule goes, whatever its counters.
    let p = tcp([1, 1, 1, 1], [2, 2, 2, 2], 9, 2);
    t.do_chain(Chain::Input, &inp(&p, "e"));
    assert!(t.check(Chain::Input, &rule("-A INPUT -p tcp --dport 2 -j ACCEPT")));
    ipt(&t, &["-D INPUT -p tcp --dport 2 -j ACCEPT"]);
    assert_eq!(ports(&t), [1, 2]);
    assert_eq!(t.rules(Chain::Input)[1].counters(), (0, 0));
    // Same matches, other target: not the same rule.
    let e = t
        .delete_matching(Chain::Input, &rule("-A INPUT -p tcp --dport 2 -j DROP"))
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    // -C reports absence as NotFound.
    let args = ["-C", "INPUT", "-p", "tcp", "--dport", "3", "-j", "ACCEPT"];
    let e = parse_command(&args).unwrap().apply(&t).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    let args = ["-C", "INPUT", "-p", "tcp", "--dport", "1", "-j", "ACCEPT"];
    assert_eq!(parse_command(&args).unwrap().apply(&t).unwrap(), "");
    // -R beyond the end.
    let e = t
        .replace(Chain::Input, 3, rule("-A INPUT -j DROP"))
        .unwrap_err();
    assert!(
        e.to_string().contains("Index of replacement too big"),
        "{e}"
    );
}

#[test]
fn flush_one_chain_or_all_keeps_policies() {
    let nf = nf_with(&[
        "-P INPUT DROP",
        "-A INPUT -j ACCEPT",
        "-A FORWARD -j ACCEPT",
        "-A OUTPUT -j ACCEPT",
    ]);
    ipt(nf.filter(), &["-F INPUT"]);
    assert_eq!(nf.filter().rule_count(Chain::Input), 0);
    assert_eq!(nf.filter().rule_count(Chain::Forward), 1);
    let p = icmp([1, 1, 1, 1], [2, 2, 2, 2]);
    assert_eq!(nf.nf_hook(&inp(&p, "e")), Verdict::Drop);
    ipt(nf.filter(), &["-F"]);
    for c in Chain::ALL {
        assert_eq!(nf.filter().rule_count(c), 0);
    }
    assert_eq!(nf.filter().policy(Chain::Input), Target::Drop);
}

#[test]
fn concurrent_packets_while_rules_change() {
    let nf = Arc::new(nf_with(&["-A INPUT -p tcp -j ACCEPT"]));
    let accepted = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let nf = Arc::clone(&nf);
            let accepted = Arc::clone(&accepted);
            std::thread::spawn(move || {
                let p = tcp([1, 1, 1, i], [2, 2, 2, 2], 1, 2);
                for _ in 0..5000 {
                    if nf.nf_hook(&inp(&p, "eth0")) == Verdict::Accept {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    // Edit meanwhile: rules that never match these packets come and go in front.
    for _ in 0..200 {
        ipt(
            nf.filter(),
            &["-I INPUT -s 9.9.9.9 -j DROP", "-A INPUT -j DROP"],
        );
        ipt(nf.filter(), &["-D INPUT 1", "-D INPUT 2"]);
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(accepted.load(Ordering::Relaxed), 20_000);
    assert_eq!(
        nf.filter().rules(Chain::Input)[0].counters(),
        (20_000, 800_000)
    );
}

// ---------------------------------------------------------------------------------------
// Rules and their builder
// ---------------------------------------------------------------------------------------

#[test]
fn builder_refuses_what_iptables_refuses() {
    let b = || Rule::builder().target(Target::Accept);
    assert_eq!(b().dport(80, 80).build(), Err(RuleError::PortsNeedTcpOrUdp));
    assert_eq!(
        b().proto(ICMP).dport(80, 80).build(),
        Err(RuleError::PortsNeedTcpOrUdp)
    );
    assert_eq!(
        b().proto_not(TCP).dport(80, 80).build(),
        Err(RuleError::PortsNeedTcpOrUdp)
    );
    assert_eq!(
        b().proto(TCP).sport(9, 8).build(),
        Err(RuleError::InvalidPortRange(9, 8))
    );
    assert_eq!(
        b().proto_not(0).build(),
        Err(RuleError::NeverMatchesProtocol)
    );
    assert_eq!(b().in_iface("").build(), Err(RuleError::EmptyInterface));
    assert_eq!(
        b().out_iface("abcdefghijklmnop").build(),
        Err(RuleError::InterfaceTooLong("abcdefghijklmnop".into()))
    );
    assert!(b().out_iface("abcdefghijklmno").build().is_ok());
    assert_eq!(
        b().in_iface("a/b").build(),
        Err(RuleError::InterfaceBadChar("a/b".into()))
    );
    assert_eq!(Rule::builder().build(), Err(RuleError::NoTarget));
    let rst = Target::Reject(RejectWith::TcpReset);
    assert_eq!(
        Rule::builder().proto(UDP).target(rst).build(),
        Err(RuleError::TcpResetNeedsTcp)
    );
    assert_eq!(
        Rule::builder().proto_not(TCP).target(rst).build(),
        Err(RuleError::TcpResetNeedsTcp)
    );
    assert!(Rule::builder().proto(TCP).target(rst).build().is_ok());
    // proto(0) is "all".
    assert_eq!(b().proto(0).build().unwrap().proto(), None);
}

#[test]
fn rule_accessors_clone_and_display() {
    let r = Rule::builder()
        .src_not(Ipv4Addr::new(192, 168, 1, 1), 32)
        .dst(Ipv4Addr::new(10, 1, 0, 0), 16)
        .in_iface_not("lo")
        .out_iface("eth+")
        .proto(UDP)
        .sport(1000, 2000)
        .dport_not(53, 53)
        .target(Target::Drop)
        .build()
        .unwrap();
    assert_eq!(r.src(), Some((Ipv4Addr::new(192, 168, 1, 1), 32)));
    assert!(r.src_neg() && !r.dst_neg());
    assert_eq!(r.dst(), Some((Ipv4Addr::new(10, 1, 0, 0), 16)));
    assert_eq!((r.in_iface(), r.in_neg()), (Some("lo"), true));
    assert_eq!((r.out_iface(), r.out_neg()), (Some("eth+"), false));
    assert_eq!((r.sport(), r.sport_neg()), (Some((1000, 2000)), false));
    assert_eq!((r.dport(), r.dport_neg()), (Some((53, 53)), true));
    assert_eq!(r.target(), Target::Drop);
    assert_eq!(
        r.to_string(),
        "! -s 192.168.1.1/32 -d 10.1.0.0/16 ! -i lo -o eth+ -p udp -m udp --sport 1000:2000 ! --dport 53 -j DROP"
    );
    let c = r.clone();
    assert_eq!(c, r);
    assert_eq!(c.counters(), (0, 0));
    // `-m tcp` without ports: a match that only refuses fragments.
    let m = rule("-A INPUT -p tcp -m tcp -j ACCEPT");
    assert_eq!((m.sport(), m.dport()), (None, None));
    assert_eq!(m.to_string(), "-p tcp -m tcp -j ACCEPT");
    assert_ne!(m, rule("-A INPUT -p tcp -j ACCEPT"));
}

#[test]
fn reject_with_names_aliases_and_icmp_codes() {
    assert_eq!(RejectWith::default(), RejectWith::IcmpPortUnreachable);
    for (w, name, alias) in RejectWith::TABLE {
        assert_eq!(w.name(), name);
        assert_eq!(RejectWith::from_arg(name), Some(w));
        assert_eq!(RejectWith::from_arg(alias), Some(w));
        assert_eq!(RejectWith::from_arg(&name.to_uppercase()), Some(w));
    }
    // Abbreviations take the first entry they start, in libipt_REJECT's order.
    assert_eq!(
        RejectWith::from_arg("icmp-p"),
        Some(RejectWith::IcmpProtoUnreachable)
    );
    assert_eq!(
        RejectWith::from_arg("icmp-host-p"),
        Some(RejectWith::IcmpHostProhibited)
    );
    assert_eq!(RejectWith::from_arg("tcp"), Some(RejectWith::TcpReset));
    assert_eq!(RejectWith::from_arg(""), None);
    assert_eq!(RejectWith::from_arg("echo-reply"), None);
    assert_eq!(
        RejectWith::IcmpPortUnreachable.icmp_type_code(),
        Some((3, 3))
    );
    assert_eq!(
        RejectWith::IcmpNetUnreachable.icmp_type_code(),
        Some((3, 0))
    );
    assert_eq!(
        RejectWith::IcmpHostUnreachable.icmp_type_code(),
        Some((3, 1))
    );
    assert_eq!(
        RejectWith::IcmpProtoUnreachable.icmp_type_code(),
        Some((3, 2))
    );
    assert_eq!(RejectWith::IcmpNetProhibited.icmp_type_code(), Some((3, 9)));
    assert_eq!(
        RejectWith::IcmpHostProhibited.icmp_type_code(),
        Some((3, 10))
    );
    assert_eq!(
        RejectWith::IcmpAdminProhibited.icmp_type_code(),
        Some((3, 13))
    );
    assert_eq!(RejectWith::TcpReset.icmp_type_code(), None);
}

// ---------------------------------------------------------------------------------------
// Listings: `iptables -L -n`, `-L -v -n`, `-x`, `--line-numbers`, `-S`
// ---------------------------------------------------------------------------------------

const MIXED: &[&str] = &[
    "-P FORWARD DROP",
    "-A INPUT -s 10.0.0.0/8 -p tcp --dport 80 -j ACCEPT",
    "-A INPUT ! -s 192.168.1.1 -p udp --sport 1000:2000 -j DROP",
    "-A INPUT -i eth+ -p icmp -j REJECT",
    "-A INPUT ! -i lo -d 10.1.0.0/16 -j RETURN",
    "-A INPUT -p tcp -j REJECT --reject-with tcp-reset",
    "-A FORWARD -p tcp ! --dport 22 -j ACCEPT",
    "-A OUTPUT -o eth0 ! -p tcp -j ACCEPT",
    "-A OUTPUT -p 47 -j DROP",
];

#[test]
fn list_of_an_empty_table() {
    let t = FilterTable::new();
    let want = concat!(
        "Chain INPUT (policy ACCEPT)\n",
        "target     prot opt source               destination         \n",
        "\n",
        "Chain FORWARD (policy ACCEPT)\n",
        "target     prot opt source               destination         \n",
        "\n",
        "Chain OUTPUT (policy ACCEPT)\n",
        "target     prot opt source               destination         \n",
    );
    assert_eq!(t.list(false, true), want);
    let want_v = concat!(
        "Chain INPUT (policy ACCEPT 0 packets, 0 bytes)\n",
        " pkts bytes target     prot opt in     out     source               destination         \n",
        "\n",
        "Chain FORWARD (policy ACCEPT 0 packets, 0 bytes)\n",
        " pkts bytes target     prot opt in     out     source               destination         \n",
        "\n",
        "Chain OUTPUT (policy ACCEPT 0 packets, 0 bytes)\n",
        " pkts bytes target     prot opt in     out     source               destination         \n",
    );
    assert_eq!(t.list(true, true), want_v);
}

#[test]
fn list_numeric() {
    let t = FilterTable::new();
    ipt(&t, MIXED);
    let want = concat!(
        "Chain INPUT (policy ACCEPT)\n",
        "target     prot opt source               destination         \n",
        "ACCEPT     tcp  --  10.0.0.0/8           0.0.0.0/0            tcp dpt:80\n",
        "DROP       udp  -- !192.168.1.1          0.0.0.0/0            udp spts:1000:2000\n",
        "REJECT     icmp --  0.0.0.0/0            0.0.0.0/0            reject-with icmp-port-unreachable\n",
        "RETURN     all  --  0.0.0.0/0            10.1.0.0/16         \n",
        "REJECT     tcp  --  0.0.0.0/0            0.0.0.0/0            reject-with tcp-reset\n",
        "\n",
        "Chain FORWARD (policy DROP)\n",
        "target     prot opt source               destination         \n",
        "ACCEPT     tcp  --  0.0.0.0/0            0.0.0.0/0            tcp dpt:!22\n",
        "\n",
        "Chain OUTPUT (policy ACCEPT)\n",
        "target     prot opt source               destination         \n",
        "ACCEPT    !tcp  --  0.0.0.0/0            0.0.0.0/0           \n",
        "DROP       47   --  0.0.0.0/0            0.0.0.0/0           \n",
    );
    assert_eq!(t.list(false, true), want);
    // The numeric flag changes nothing: we always print numbers.
    assert_eq!(t.list(false, false), want);
}

#[test]
fn list_verbose_with_counters_and_interfaces() {
    let nf = nf_with(&[
        "-A INPUT -i eth0 -s 10.0.0.0/8 -p tcp --dport 80 -j ACCEPT",
        "-A INPUT ! -i lo -p udp -j DROP",
        "-A OUTPUT -o eth+ -j ACCEPT",
    ]);
    let web = tcp([10, 0, 0, 5], [10, 0, 0, 1], 40000, 80);
    nf.nf_hook(&with_len(inp(&web, "eth0"), 60));
    nf.nf_hook(&with_len(inp(&web, "eth0"), 60));
    nf.nf_hook(&with_len(
        inp(&udp([1, 1, 1, 1], [2, 2, 2, 2], 1, 2), "eth1"),
        100,
    ));
    nf.nf_hook(&with_len(
        inp(&icmp([1, 1, 1, 1], [2, 2, 2, 2]), "eth0"),
        84,
    ));
    nf.nf_hook(&with_len(outp(&web, "eth1"), 1500));
    let want = concat!(
        "Chain INPUT (policy ACCEPT 1 packets, 84 bytes)\n",
        " pkts bytes target     prot opt in     out     source               destination         \n",
        "    2   120 ACCEPT     tcp  --  eth0   *       10.0.0.0/8           0.0.0.0/0            tcp dpt:80\n",
        "    1   100 DROP       udp  --  !lo    *       0.0.0.0/0            0.0.0.0/0           \n",
        "\n",
        "Chain FORWARD (policy ACCEPT 0 packets, 0 bytes)\n",
        " pkts bytes target     prot opt in     out     source               destination         \n",
        "\n",
        "Chain OUTPUT (policy ACCEPT 0 packets, 0 bytes)\n",
        " pkts bytes target     prot opt in     out     source               destination         \n",
        "    1  1500 ACCEPT     all  --  *      eth+    0.0.0.0/0            0.0.0.0/0           \n",
    );
    assert_eq!(nf.filter().list(true, true), want);
    // The same through the command line, one chain.
    let out = parse_command(&["-nvL", "OUTPUT"])
        .unwrap()
        .apply(nf.filter())
        .unwrap();
    assert_eq!(out, want.split("\n\n").nth(2).unwrap());
}

/// Counters big enough for iptables' K/M/G/T abbreviations, and `-x`.
#[test]
fn list_abbreviates_big_counters_unless_exact() {
    let nf = nf_with(&[
        "-P FORWARD DROP",
        "-A INPUT -p tcp -j ACCEPT",
        "-A INPUT -p udp -j ACCEPT",
        "-A INPUT -p icmp -j ACCEPT",
        "-A INPUT -p 47 -j ACCEPT",
        "-A INPUT -p 50 -j ACCEPT",
    ]);
    let a = [1, 1, 1, 1];
    let b = [2, 2, 2, 2];
    let t = tcp(a, b, 1, 2);
    for _ in 0..100_000 {
        nf.nf_hook(&with_len(inp(&t, "e"), 1));
    }
    nf.nf_hook(&with_len(inp(&udp(a, b, 1, 2), "e"), 12_345_678_901));
    let i = icmp(a, b);
    nf.nf_hook(&with_len(inp(&i, "e"), 5_000_000_000_000));
    nf.nf_hook(&with_len(inp(&i, "e"), 5_000_000_000_000));
    nf.nf_hook(&with_len(inp(&ipv4(a, b, 47, 0, &[]), "e"), 9_999_499));
    nf.nf_hook(&with_len(inp(&ipv4(a, b, 50, 0, &[]), "e"), 10_000_000));
    nf.nf_hook(&with_len(inp(&ipv4(a, b, 51, 0, &[]), "e"), 99_999));
    let fwd = NfPacket {
        hook: NfHook::Forward,
        data: &t,
        len: 123_456_789,
        in_dev: Some("a"),
        out_dev: Some("b"),
    };
    nf.nf_hook(&fwd);
    let f = ListFormat {
        verbose: true,
        ..ListFormat::default()
    };
    let want = concat!(
        "Chain INPUT (policy ACCEPT 1 packets, 99999 bytes)\n",
        " pkts bytes target     prot opt in     out     source               destination         \n",
        " 100K  100K ACCEPT     tcp  --  *      *       0.0.0.0/0            0.0.0.0/0           \n",
        "    1   12G ACCEPT     udp  --  *      *       0.0.0.0/0            0.0.0.0/0           \n",
        "    2   10T ACCEPT     icmp --  *      *       0.0.0.0/0            0.0.0.0/0           \n",
        "    1 9999K ACCEPT     47   --  *      *       0.0.0.0/0            0.0.0.0/0           \n",
        "    1   10M ACCEPT     esp  --  *      *       0.0.0.0/0            0.0.0.0/0           \n",
        "\n",
        "Chain FORWARD (policy DROP 1 packets, 123M bytes)\n",
        " pkts bytes target     prot opt in     out     source               destination         \n",
    );
    assert_eq!(
        nf.filter().list_with(Some(Chain::Input), f)
            + "\n"
            + &nf.filter().list_with(Some(Chain::Forward), f),
        want
    );
    let exact = ListFormat { exact: true, ..f };
    let want_x = concat!(
        "Chain INPUT (policy ACCEPT 1 packets, 99999 bytes)\n",
        "    pkts      bytes target     prot opt in     out     source               destination         \n",
        "  100000   100000 ACCEPT     tcp  --  *      *       0.0.0.0/0            0.0.0.0/0           \n",
        "       1 12345678901 ACCEPT     udp  --  *      *       0.0.0.0/0            0.0.0.0/0           \n",
        "       2 10000000000000 ACCEPT     icmp --  *      *       0.0.0.0/0            0.0.0.0/0           \n",
        "       1  9999499 ACCEPT     47   --  *      *       0.0.0.0/0            0.0.0.0/0           \n",
        "       1 10000000 ACCEPT     esp  --  *      *       0.0.0.0/0            0.0.0.0/0           \n",
        "\n",
        "Chain FORWARD (policy DROP 1 packets, 123456789 bytes)\n",
        "    pkts      bytes target     prot opt in     out     source               destination         \n",
    );
    let out = parse_command(&["-L", "-v", "-x", "-n"])
        .unwrap()
        .apply(nf.filter())
        .unwrap();
    let without_output = out.split("\n\nChain OUTPUT").next().unwrap().to_string() + "\n";
    assert_eq!(without_output, want_x);
    assert_eq!(nf.filter().list_with(None, exact), out);
}

#[test]
fn list_with_line_numbers() {
    let t = FilterTable::new();
    ipt(
        &t,
        &[
            "-A INPUT -p tcp --sport 1000:2000 -j ACCEPT",
            "-A INPUT -j DROP",
        ],
    );
    let out = parse_command(&["-L", "INPUT", "-n", "--line-numbers"])
        .unwrap()
        .apply(&t)
        .unwrap();
    let want = concat!(
        "Chain INPUT (policy ACCEPT)\n",
        "num  target     prot opt source               destination         \n",
        "1    ACCEPT     tcp  --  0.0.0.0/0            0.0.0.0/0            tcp spts:1000:2000\n",
        "2    DROP       all  --  0.0.0.0/0            0.0.0.0/0           \n",
    );
    assert_eq!(out, want);
    let out = parse_command(&["--list", "INPUT", "--verbose", "--line-numbers", "--exact"])
        .unwrap()
        .apply(&t)
        .unwrap();
    let want = concat!(
        "Chain INPUT (policy ACCEPT 0 packets, 0 bytes)\n",
        "num      pkts      bytes target     prot opt in     out     source               destination         \n",
        "1           0        0 ACCEPT     tcp  --  *      *       0.0.0.0/0            0.0.0.0/0            tcp spts:1000:2000\n",
        "2           0        0 DROP       all  --  *      *       0.0.0.0/0            0.0.0.0/0           \n",
    );
    assert_eq!(out, want);
}

#[test]
fn list_rules_in_save_form() {
    let t = FilterTable::new();
    ipt(&t, MIXED);
    let want = concat!(
        "-P INPUT ACCEPT\n",
        "-P FORWARD DROP\n",
        "-P OUTPUT ACCEPT\n",
        "-A INPUT -s 10.0.0.0/8 -p tcp -m tcp --dport 80 -j ACCEPT\n",
        "-A INPUT ! -s 192.168.1.1/32 -p udp -m udp --sport 1000:2000 -j DROP\n",
        "-A INPUT -i eth+ -p icmp -j REJECT --reject-with icmp-port-unreachable\n",
        "-A INPUT -d 10.1.0.0/16 ! -i lo -j RETURN\n",
        "-A INPUT -p tcp -j REJECT --reject-with tcp-reset\n",
        "-A FORWARD -p tcp -m tcp ! --dport 22 -j ACCEPT\n",
        "-A OUTPUT -o eth0 ! -p tcp -j ACCEPT\n",
        "-A OUTPUT -p 47 -j DROP\n",
    );
    assert_eq!(t.list_rules(), want);
    let one = parse_command(&["-S", "FORWARD"])
        .unwrap()
        .apply(&t)
        .unwrap();
    assert_eq!(
        one,
        "-P FORWARD DROP\n-A FORWARD -p tcp -m tcp ! --dport 22 -j ACCEPT\n"
    );
    // What -S prints parses back to the same rules.
    let again = FilterTable::new();
    for line in want.lines() {
        let args: Vec<&str> = line.split_whitespace().collect();
        parse_command(&args).unwrap().apply(&again).unwrap();
    }
    assert_eq!(again.list_rules(), want);
    for c in Chain::ALL {
        assert_eq!(again.rules(c), t.rules(c));
    }
}

// ---------------------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------------------

#[test]
fn parse_the_example_from_the_brief() {
    let cmd = parse_command(&[
        "-A",
        "INPUT",
        "-s",
        "10.0.0.0/8",
        "-p",
        "tcp",
        "--dport",
        "80",
        "-j",
        "REJECT",
        "--reject-with",
        "tcp-reset",
    ])
    .unwrap();
    let Command::Append { chain, rule } = cmd else {
        panic!("not an append");
    };
    assert_eq!(chain, Chain::Input);
    assert_eq!(rule.src(), Some((Ipv4Addr::new(10, 0, 0, 0), 8)));
    assert_eq!(rule.proto(), Some(TCP));
    assert_eq!(rule.dport(), Some((80, 80)));
    assert_eq!(rule.target(), Target::Reject(RejectWith::TcpReset));
}

#[test]
fn parse_commands_and_their_shapes() {
    let p = |s: &str| parse_command(&s.split_whitespace().collect::<Vec<_>>()).unwrap();
    assert!(matches!(
        p("-I OUTPUT 3 -j ACCEPT"),
        Command::Insert {
            chain: Chain::Output,
            pos: 3,
            ..
        }
    ));
    assert!(matches!(
        p("-I OUTPUT -j ACCEPT"),
        Command::Insert { pos: 1, .. }
    ));
    assert!(matches!(
        p("-R FORWARD 2 -j DROP"),
        Command::Replace {
            chain: Chain::Forward,
            pos: 2,
            ..
        }
    ));
    assert_eq!(
        p("-D INPUT 4"),
        Command::DeleteNum {
            chain: Chain::Input,
            pos: 4
        }
    );
    assert!(matches!(
        p("-D INPUT -p tcp -j DROP"),
        Command::Delete { .. }
    ));
    assert!(matches!(p("-C INPUT -j DROP"), Command::Check { .. }));
    assert_eq!(p("-F"), Command::Flush { chain: None });
    assert_eq!(
        p("--flush OUTPUT"),
        Command::Flush {
            chain: Some(Chain::Output)
        }
    );
    assert_eq!(
        p("-Z INPUT"),
        Command::Zero {
            chain: Some(Chain::Input)
        }
    );
    assert_eq!(
        p("-P FORWARD DROP"),
        Command::Policy {
            chain: Chain::Forward,
            target: Target::Drop
        }
    );
    assert_eq!(p("-S"), Command::ListRules { chain: None });
    let verbose = ListFormat {
        verbose: true,
        ..ListFormat::default()
    };
    assert_eq!(
        p("-nvL"),
        Command::List {
            chain: None,
            format: verbose
        }
    );
    assert_eq!(
        p("-L -v -n"),
        Command::List {
            chain: None,
            format: verbose
        }
    );
    assert_eq!(
        p("-vnxL INPUT"),
        Command::List {
            chain: Some(Chain::Input),
            format: ListFormat {
                exact: true,
                ..verbose
            }
        }
    );
    assert_eq!(
        p("-LINPUT"),
        Command::List {
            chain: Some(Chain::Input),
            format: ListFormat::default()
        }
    );
    assert_eq!(
        p("--list=OUTPUT -t filter -w -4"),
        Command::List {
            chain: Some(Chain::Output),
            format: ListFormat::default()
        }
    );
    assert_eq!(
        p("-w 5 -L"),
        Command::List {
            chain: None,
            format: ListFormat::default()
        }
    );
    // Long forms, `=`, clustered short options with an attached argument.
    assert_eq!(
        p("--append INPUT --source=10.0.0.0/8 --protocol tcp --destination-port=22 --jump ACCEPT"),
        p("-A INPUT -s 10.0.0.0/8 -p tcp --dport 22 -j ACCEPT")
    );
    assert_eq!(p("-AINPUT -ptcp -jDROP"), p("-A INPUT -p tcp -j DROP"));
    assert_eq!(
        p("-A INPUT --src 1.2.3.4 --dst 5.6.7.8 -j DROP"),
        p("-A INPUT -s 1.2.3.4/32 -d 5.6.7.8/32 -j DROP")
    );
    // Protocol spellings.
    assert_eq!(p("-A INPUT -p TCP -j DROP"), p("-A INPUT -p 6 -j DROP"));
    assert_eq!(p("-A INPUT -p all -j DROP"), p("-A INPUT -j DROP"));
    assert_eq!(p("-A INPUT -p 0 -j DROP"), p("-A INPUT -j DROP"));
    assert_eq!(rule("-A INPUT -p gre -j DROP").proto(), Some(47));
    // Address spellings (libxtables fills missing octets with zeros).
    assert_eq!(
        p("-A INPUT -s 10/8 -j DROP"),
        p("-A INPUT -s 10.0.0.0/8 -j DROP")
    );
    assert_eq!(
        p("-A INPUT -s 172.16.0.0/255.240.0.0 -j DROP"),
        p("-A INPUT -s 172.16.0.0/12 -j DROP")
    );
    assert_eq!(
        p("-A INPUT -s 10.9.8.7/255.255.255.255 -j DROP"),
        p("-A INPUT -s 10.9.8.7 -j DROP")
    );
    // Explicit -m and port spellings.
    assert_eq!(
        p("-A INPUT -p udp -m udp --sport 1024: -j DROP"),
        p("-A INPUT -p udp --sport 1024:65535 -j DROP")
    );
    assert_eq!(
        rule("-A INPUT -p tcp --dport :1023 -j DROP").dport(),
        Some((0, 1023))
    );
    assert_eq!(
        p("-A INPUT -m tcp -p tcp --dport 1 -j DROP"),
        p("-A INPUT -p tcp --dport 1 -j DROP")
    );
    // REJECT: default and aliases.
    assert_eq!(
        rule("-A INPUT -j REJECT").target(),
        Target::Reject(RejectWith::IcmpPortUnreachable)
    );
    assert_eq!(
        rule("-A INPUT -j REJECT --reject-with host-prohib").target(),
        Target::Reject(RejectWith::IcmpHostProhibited)
    );
    assert_eq!(
        rule("-A INPUT -p tcp -j REJECT --reject-with tcp-rst").target(),
        Target::Reject(RejectWith::TcpReset)
    );
}

#[test]
fn parse_errors_name_the_bad_argument() {
    let msg = |s: &str| parse_err(s).to_string();
    assert_eq!(
        msg("-A INPUT -p foo -j DROP"),
        "unknown protocol \"foo\" specified"
    );
    assert_eq!(
        parse_err("-A INPUT -p 256 -j DROP"),
        ParseError::UnknownProtocol("256".into())
    );
    assert_eq!(
        msg("-A INPUT -s 10.0.0.256 -j DROP"),
        "host/network `10.0.0.256' not found"
    );
    assert_eq!(
        msg("-A INPUT -s example.com -j DROP"),
        "host/network `example.com' not found"
    );
    assert_eq!(
        msg("-A INPUT -d 10.0.0.0/33 -j DROP"),
        "invalid mask `33' specified"
    );
    assert_eq!(
        parse_err("-A INPUT -d 10.0.0.0/ -j DROP"),
        ParseError::InvalidMask(String::new())
    );
    assert!(matches!(
        parse_err("-A INPUT -s 1.0.0.0/255.0.255.0 -j DROP"),
        ParseError::Unsupported(_)
    ));
    assert!(matches!(
        parse_err("-A INPUT -s 1.1.1.1,2.2.2.2 -j DROP"),
        ParseError::Unsupported(_)
    ));
    assert_eq!(
        msg("-A INPUT -p tcp --dport 99999 -j DROP"),
        "invalid port/service `99999' specified"
    );
    assert_eq!(
        msg("-A INPUT -p tcp --dport ssh -j DROP"),
        "invalid port/service `ssh' specified"
    );
    assert_eq!(
        parse_err("-A INPUT -p tcp --sport 2000:1000 -j DROP"),
        ParseError::Rule(RuleError::InvalidPortRange(2000, 1000))
    );
    // Match options need their match loaded first.
    assert_eq!(
        msg("-A INPUT --dport 80 -j DROP"),
        "unknown option \"--dport\": it needs -p tcp or -p udp before it"
    );
    assert_eq!(
        parse_err("-A INPUT -p icmp --sport=80 -j DROP"),
        ParseError::OptionNeeds("--sport".into(), "-p tcp or -p udp")
    );
    assert!(matches!(
        parse_err("-A INPUT --dport 80 -p tcp -j DROP"),
        ParseError::OptionNeeds(..)
    ));
    assert_eq!(
        parse_err("-A INPUT ! -p tcp --dport 80 -j DROP"),
        ParseError::Rule(RuleError::PortsNeedTcpOrUdp)
    );
    assert_eq!(
        parse_err("-A INPUT -p udp -m tcp -j DROP"),
        ParseError::Rule(RuleError::PortsNeedTcpOrUdp)
    );
    assert!(matches!(
        parse_err("-A INPUT -m state -j DROP"),
        ParseError::Unsupported(_)
    ));
    assert_eq!(
        msg("-A INPUT --reject-with tcp-reset -j REJECT"),
        "unknown option \"--reject-with\": it needs -j REJECT before it"
    );
    // REJECT types.
    assert_eq!(
        msg("-A INPUT -j REJECT --reject-with foo"),
        "unknown reject type \"foo\""
    );
    assert_eq!(
        parse_err("-A INPUT -j REJECT --reject-with tcp-reset"),
        ParseError::Rule(RuleError::TcpResetNeedsTcp)
    );
    assert_eq!(
        parse_err("-A INPUT -p udp -j REJECT --reject-with tcp-reset"),
        ParseError::Rule(RuleError::TcpResetNeedsTcp)
    );
    // Targets, chains, tables, policies, rule numbers.
    assert_eq!(
        parse_err("-A INPUT -j LOG"),
        ParseError::UnknownTarget("LOG".into())
    );
    assert_eq!(
        parse_err("-A INPUT -j accept"),
        ParseError::UnknownTarget("accept".into())
    );
    assert_eq!(
        parse_err("-A INPUT -p tcp"),
        ParseError::Rule(RuleError::NoTarget)
    );
    assert_eq!(
        parse_err("-A PREROUTING -j DROP"),
        ParseError::UnknownChain("PREROUTING".into())
    );
    assert_eq!(
        parse_err("-L input"),
        ParseError::UnknownChain("input".into())
    );
    assert_eq!(
        parse_err("-t nat -A POSTROUTING -j ACCEPT"),
        ParseError::UnsupportedTable("nat".into())
    );
    assert!(msg("-t nat -L").contains("nat is not implemented yet"));
    assert_eq!(
        parse_err("-P INPUT REJECT"),
        ParseError::BadPolicy("REJECT".into())
    );
    assert_eq!(
        parse_err("-P INPUT RETURN"),
        ParseError::BadPolicy("RETURN".into())
    );
    assert!(matches!(parse_err("-P INPUT"), ParseError::Usage(_)));
    assert_eq!(
        parse_err("-I INPUT 0 -j DROP"),
        ParseError::InvalidRuleNumber("0".into())
    );
    assert_eq!(
        parse_err("-D INPUT x1"),
        ParseError::InvalidRuleNumber("x1".into())
    );
    assert!(matches!(
        parse_err("-R INPUT -j DROP"),
        ParseError::Usage(_)
    ));
    // Commands and options.
    assert_eq!(parse_err("-s 1.2.3.4"), ParseError::NoCommand);
    assert_eq!(parse_err(""), ParseError::NoCommand);
    assert_eq!(
        parse_err("-A INPUT -D INPUT"),
        ParseError::MultipleCommands('D', 'A')
    );
    assert_eq!(msg("-A INPUT -D INPUT"), "Cannot use -D with -A");
    assert_eq!(
        parse_err("-L -s 1.2.3.4"),
        ParseError::IllegalOption("-s".into(), 'L')
    );
    assert_eq!(
        parse_err("-F INPUT -j DROP"),
        ParseError::IllegalOption("-j".into(), 'F')
    );
    assert_eq!(
        parse_err("-A INPUT -n -j DROP"),
        ParseError::IllegalOption("-n".into(), 'A')
    );
    assert_eq!(
        parse_err("-D INPUT 1 -j DROP"),
        ParseError::IllegalOption("-j".into(), 'D')
    );
    assert_eq!(
        parse_err("-A INPUT -s 1.1.1.1 -s 2.2.2.2 -j DROP"),
        ParseError::DuplicateOption("-s".into())
    );
    assert_eq!(
        msg("-A INPUT -j DROP -j ACCEPT"),
        "multiple -j flags not allowed"
    );
    assert!(matches!(
        parse_err("-A INPUT -p tcp --dport 1 --dport 2 -j DROP"),
        ParseError::DuplicateOption(_)
    ));
    assert_eq!(
        parse_err("-A INPUT -s"),
        ParseError::MissingArgument("-s".into())
    );
    assert_eq!(parse_err("-A"), ParseError::MissingArgument("-A".into()));
    assert_eq!(
        parse_err("-A INPUT foo -j DROP"),
        ParseError::BadArgument("foo".into())
    );
    assert_eq!(
        parse_err("-A INPUT --frobnicate -j DROP"),
        ParseError::UnknownOption("--frobnicate".into())
    );
    assert_eq!(
        parse_err("-A INPUT -q -j DROP"),
        ParseError::UnknownOption("-q".into())
    );
    assert!(matches!(parse_err("-L --verbose=2"), ParseError::Usage(_)));
    // `-Lnv` is a chain named "nv", as with getopt.
    assert_eq!(parse_err("-Lnv"), ParseError::UnknownChain("nv".into()));
    assert!(matches!(
        parse_err("-L INPUT 1"),
        ParseError::Unsupported(_)
    ));
    // Negation.
    assert_eq!(
        msg("-A INPUT ! ! -s 1.1.1.1 -j DROP"),
        "multiple consecutive ! not allowed"
    );
    assert_eq!(msg("-A INPUT -j DROP !"), "nothing appropriate following !");
    assert_eq!(msg("-A INPUT ! -j DROP"), "cannot have ! before -j");
    assert_eq!(
        parse_err("-A INPUT ! -p all -j DROP"),
        ParseError::Rule(RuleError::NeverMatchesProtocol)
    );
    // Interfaces.
    assert_eq!(msg("-A INPUT -o eth0 -j DROP"), "Can't use -o with INPUT");
    assert_eq!(msg("-A OUTPUT -i eth0 -j DROP"), "Can't use -i with OUTPUT");
    assert_eq!(
        parse_err("-A FORWARD -i 0123456789abcdef -j DROP"),
        ParseError::Rule(RuleError::InterfaceTooLong("0123456789abcdef".into()))
    );
    assert_eq!(
        parse_err("-A FORWARD -i a/b -j DROP"),
        ParseError::Rule(RuleError::InterfaceBadChar("a/b".into()))
    );
    // An attached argument works for -i as for any short option.
    assert_eq!(rule("-A FORWARD -ieth0 -j DROP").in_iface(), Some("eth0"));
    assert_eq!(
        parse_command(&["-A", "FORWARD", "-i", "", "-j", "DROP"]),
        Err(ParseError::Rule(RuleError::EmptyInterface))
    );
    // Unsupported iptables features say so.
    for line in [
        "-N MYCHAIN",
        "-X",
        "-E A B",
        "-A INPUT -f -j DROP",
        "-A INPUT -g X",
        "-6 -L",
        "-A INPUT -c 1 2 -j DROP",
    ] {
        assert!(
            matches!(parse_err(line), ParseError::Unsupported(_)),
            "{line}"
        );
    }
    // Every error has a message.
    assert!(!parse_err("-A INPUT -j DROP -j DROP").to_string().is_empty());
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

/// A table that looks at every field there is.
fn busy_netfilter() -> Netfilter {
    nf_with(&[
        "-A INPUT -s 10.0.0.0/8 -p tcp --dport 22 -j ACCEPT",
        "-A INPUT ! -s 192.168.0.0/16 -p udp ! --sport 53 -j REJECT",
        "-A INPUT -i eth+ -d 1.2.3.4 -j RETURN",
        "-A INPUT -p tcp -m tcp -j REJECT --reject-with tcp-reset",
        "-A INPUT ! -p icmp -j DROP",
        "-A FORWARD -i a -o b -p udp --dport 1:100 -j DROP",
        "-A OUTPUT ! -o lo ! -d 127.0.0.0/8 -p tcp --sport 80:90 -j ACCEPT",
        "-A OUTPUT -j RETURN",
    ])
}

proptest! {
    #[test]
    fn nf_hook_never_panics_on_any_bytes(
        data in proptest::collection::vec(any::<u8>(), 0..80),
        len in 0usize..3000,
        hook in 0usize..5,
        in_dev in proptest::option::of("[a-z]{0,4}[+0-9]?"),
        out_dev in proptest::option::of("[a-z]{0,4}[0-9]?"),
    ) {
        let nf = busy_netfilter();
        let pkt = NfPacket { hook: NfHook::ALL[hook], data: &data, len, in_dev: in_dev.as_deref(), out_dev: out_dev.as_deref() };
        let _ = nf.nf_hook(&pkt);
    }

    #[test]
    fn nf_hook_never_panics_on_mutated_headers(
        mut data in proptest::collection::vec(any::<u8>(), 20..60),
        ihl in 0u8..16,
        proto in prop_oneof![Just(6u8), Just(17u8), Just(1u8), any::<u8>()],
        frag in any::<u16>(),
        len in 0usize..100,
    ) {
        data[0] = 0x40 | ihl;
        data[9] = proto;
        data[6..8].copy_from_slice(&frag.to_be_bytes());
        let nf = busy_netfilter();
        for hook in NfHook::ALL {
            let pkt = NfPacket { hook, data: &data, len, in_dev: Some("eth0"), out_dev: Some("b") };
            let _ = nf.nf_hook(&pkt);
        }
    }

    /// Source-prefix and destination-port matching agree with a direct model.
    #[test]
    fn src_and_dport_match_like_the_model(
        net in any::<u32>(), prefix in 0u8..=32, src_neg in any::<bool>(),
        lo in any::<u16>(), span in 0u16..2000, port_neg in any::<bool>(),
        pkt_src in any::<u32>(), pkt_dport in any::<u16>(), udp_not_tcp in any::<bool>(),
    ) {
        let hi = lo.saturating_add(span);
        let proto = if udp_not_tcp { UDP } else { TCP };
        let mut b = Rule::builder().proto(proto).target(Target::Drop);
        let addr = Ipv4Addr::from(net);
        b = if src_neg { b.src_not(addr, prefix) } else { b.src(addr, prefix) };
        b = if port_neg { b.dport_not(lo, hi) } else { b.dport(lo, hi) };
        let nf = Netfilter::new();
        nf.filter().append(Chain::Input, b.build().unwrap());
        let src = Ipv4Addr::from(pkt_src).octets();
        let data = if udp_not_tcp { udp(src, [1, 1, 1, 1], 7, pkt_dport) } else { tcp(src, [1, 1, 1, 1], 7, pkt_dport) };
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
        // With prefix 0, "-s" matches everything and "! -s" nothing: the model agrees.
        let src_ok = ((pkt_src & mask) == (net & mask)) != src_neg;
        let port_ok = (lo..=hi).contains(&pkt_dport) != port_neg;
        let want = if src_ok && port_ok { Verdict::Drop } else { Verdict::Accept };
        prop_assert_eq!(nf.nf_hook(&inp(&data, "eth0")), want);
    }

    /// Whatever `-S` prints for a parsed rule parses back to the same rule.
    #[test]
    fn save_form_round_trips(
        src in proptest::option::of((any::<u32>(), 0u8..=32, any::<bool>())),
        proto in prop_oneof![Just(None), Just(Some(6u8)), Just(Some(17u8)), Just(Some(1u8)), (2u8..=255).prop_map(Some)],
        dport in proptest::option::of((any::<u16>(), 0u16..100, any::<bool>())),
        target in prop_oneof![Just(Target::Accept), Just(Target::Drop), Just(Target::Return), Just(Target::Reject(RejectWith::IcmpNetProhibited))],
    ) {
        let mut b = Rule::builder().target(target);
        if let Some((a, p, neg)) = src {
            let a = Ipv4Addr::from(a);
            b = if neg { b.src_not(a, p) } else { b.src(a, p) };
        }
        if let Some(p) = proto {
            b = b.proto(p);
        }
        if let (Some((lo, span, neg)), Some(6 | 17)) = (dport, proto) {
            let hi = lo.saturating_add(span);
            b = if neg { b.dport_not(lo, hi) } else { b.dport(lo, hi) };
        }
        let r = b.build().unwrap();
        let line = format!("-A FORWARD {r}");
        let args: Vec<&str> = line.split_whitespace().collect();
        let parsed = match parse_command(&args) {
            Ok(Command::Append { rule, .. }) => rule,
            other => panic!("{line}: {other:?}"),
        };
        prop_assert_eq!(parsed, r);
    }
}
