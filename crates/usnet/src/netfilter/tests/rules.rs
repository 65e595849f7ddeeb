//! Rules and their builder: what the builder refuses (as iptables does), the rule
//! accessors, cloning and `Display`, and the REJECT `--reject-with` names, aliases and
//! ICMP type/code pairs.

use std::net::Ipv4Addr;

use super::*;

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
