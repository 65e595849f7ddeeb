//! Chain traversal and targets: the first matching rule decides (ACCEPT, DROP, REJECT,
//! RETURN), RETURN in a built-in chain falls to the policy, policies with and without
//! rules; packet and byte counters and how edits keep them; insert, delete and flush;
//! packets racing rule changes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::*;

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
