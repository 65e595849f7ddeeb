//! The hook points (`NF_INET_*` numbers and names), `nf_hook` at every hook on a fresh
//! netfilter, hook functions run in priority order around the filter table (a DROP
//! before the filter ends the traversal, equal priorities keep registration order),
//! unregistering, and the lock-free fast path when nothing is hooked.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;

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
