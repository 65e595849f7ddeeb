//! Properties (proptest): `nf_hook` never panics on arbitrary or mutated packets,
//! source and destination-port matching agrees with a model, and the save form (`-S`)
//! round-trips through the parser.

use std::net::Ipv4Addr;

use proptest::prelude::*;

use super::*;

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
