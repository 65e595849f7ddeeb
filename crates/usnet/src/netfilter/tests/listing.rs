//! Listings: `iptables -L -n`, `-L -v -n`, `-x`, `--line-numbers` and `-S`.
//!
//! The expected listings are written from iptables' printing code (`print_header`,
//! `print_firewall` / `print_rule_details`, `print_ifaces`, `print_ipv4_addresses`,
//! libxtables' `xtables_print_num`, libxt_tcp's `print_ports`, libipt_REJECT's `print`),
//! trailing spaces included.

use super::*;

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
