//! The iptables command line (`parse_command`): the brief's example, every command and
//! its shape, and errors that name the bad argument.

use std::net::Ipv4Addr;

use super::*;

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
