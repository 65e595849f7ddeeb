//! Views of a stack in the formats of Linux's tools, so they read without learning:
//! `ss`, `netstat -s` (as `/proc/net/snmp` + `/proc/net/netstat` pairs), `ip route`,
//! `ip neigh`, `tc -s qdisc`, `ethtool -S`, `iptables`, `sysctl`. [`command`] runs one
//! of them from its argument list — what `usnet up --ctl` answers and the CLI sends.
//!
//! ```
//! let stack = usnet::Stack::builder().name("doc").build();
//! let routes = usnet::views::command(&stack, &["route"]).unwrap();
//! assert!(routes.contains("local 127.0.0.1 dev lo"));
//! let v = usnet::views::command(&stack, &["sysctl", "net.ipv4.tcp_sack"]).unwrap();
//! assert_eq!(v.trim(), "net.ipv4.tcp_sack = 1");
//! ```

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::ipv4::route::{FibRoute, Flowi4, RtnType, TableId};
use crate::tcp::TcpState;
use crate::Stack;

/// `ss [-t] [-u] [-l] [-a] [-i]`.
pub fn ss(stack: &Stack, args: &[&str]) -> String {
    let flags: String = args
        .iter()
        .filter(|a| a.starts_with('-'))
        .map(|a| &a[1..])
        .collect();
    let (mut tcp, mut udp) = (flags.contains('t'), flags.contains('u'));
    if !tcp && !udp {
        tcp = true;
        udp = true;
    }
    let listening = flags.contains('l');
    let all = flags.contains('a');
    let info = flags.contains('i');
    let mut out =
        String::from("Netid State      Recv-Q Send-Q Local Address:Port  Peer Address:Port\n");
    if tcp {
        for sk in stack.tcp.sockets() {
            let (state, local, remote, rq, sq, backlog) = sk.with_tcb(|t| {
                (
                    t.state,
                    t.local,
                    t.remote,
                    t.rx_readable(),
                    t.write_seq.wrapping_sub(t.snd_una),
                    t.listen.as_ref().map(|l| l.max_ack_backlog),
                )
            });
            let is_listen = state == TcpState::Listen;
            if (listening && !is_listen) || (!listening && !all && is_listen) {
                continue;
            }
            let (rq, sq) = match backlog {
                Some(b) => (sk.accept_queue_len(), b),
                None => (rq, sq as usize),
            };
            let peer = if is_listen {
                "0.0.0.0:*".to_string()
            } else {
                remote.to_string()
            };
            let _ = writeln!(
                out,
                "tcp   {:<10} {:<6} {:<6} {:<19} {}",
                state.ss_name(),
                rq,
                sq,
                local,
                peer
            );
            if info && !is_listen {
                let _ = writeln!(out, "\t{}", sk.info());
            }
        }
        if !listening {
            for (l, r, _) in stack.tcp.tw.entries() {
                let _ = writeln!(
                    out,
                    "tcp   {:<10} {:<6} {:<6} {:<19} {}",
                    "TIME-WAIT", 0, 0, l, r
                );
            }
        }
    }
    if udp && !listening {
        for s in stack.ipv4.udp.sockets() {
            let peer = s.peer_addr().map_or("*:*".to_string(), |p| p.to_string());
            let _ = writeln!(
                out,
                "udp   {:<10} {:<6} {:<6} {:<19} {}",
                "UNCONN",
                s.rx_queued(),
                0,
                s.local_addr(),
                peer
            );
        }
    }
    out
}

/// `netstat -s`: every counter group as `Group:` and `Name value` lines.
pub fn netstat_s(stack: &Stack) -> String {
    let groups = [
        ("Ip", stack.ipv4.mib.snapshot()),
        ("Icmp", stack.ipv4.icmp_mib.snapshot()),
        (
            "Tcp",
            // CurrEstab is a gauge, read from the connections now.
            stack
                .tcp
                .snmp
                .snapshot()
                .into_iter()
                .map(|(k, v)| {
                    if k == "CurrEstab" {
                        (k, stack.tcp.curr_estab())
                    } else {
                        (k, v)
                    }
                })
                .collect(),
        ),
        ("Udp", stack.ipv4.udp_mib.snapshot()),
        ("TcpExt", stack.tcp.mib.snapshot()),
    ];
    let mut out = String::new();
    for (g, snap) in groups {
        let _ = writeln!(out, "{g}:");
        for (k, v) in snap {
            let _ = writeln!(out, "    {k}: {v}");
        }
    }
    out
}

fn route_line(r: &FibRoute, stack: &Stack) -> String {
    let mut s = String::new();
    if r.kind != RtnType::Unicast {
        s.push_str(r.kind.keyword());
        s.push(' ');
    }
    if r.len == 0 && r.kind == RtnType::Unicast {
        s.push_str("default");
    } else if r.len == 32 {
        s.push_str(&r.dst.to_string());
    } else {
        let _ = write!(s, "{}/{}", r.dst, r.len);
    }
    if let Some(g) = r.gateway {
        let _ = write!(s, " via {g}");
    }
    if let Some(dev) = r.oif.and_then(|i| stack.devs.by_index(i)) {
        let _ = write!(s, " dev {}", dev.name());
    }
    let proto = match r.proto {
        crate::ipv4::route::RouteProto::Kernel => Some("kernel"),
        crate::ipv4::route::RouteProto::Static => None,
        crate::ipv4::route::RouteProto::Boot => Some("boot"),
    };
    if let Some(p) = proto {
        let _ = write!(s, " proto {p}");
    }
    match r.scope {
        crate::ipv4::route::Scope::Link => s.push_str(" scope link"),
        crate::ipv4::route::Scope::Host => s.push_str(" scope host"),
        crate::ipv4::route::Scope::Universe => {}
    }
    if let Some(src) = r.prefsrc {
        let _ = write!(s, " src {src}");
    }
    if r.metric != 0 {
        let _ = write!(s, " metric {}", r.metric);
    }
    if let Some(m) = r.mtu {
        let _ = write!(s, " mtu {m}");
    }
    s
}

/// `ip route [show | add PREFIX [via GW] [dev DEV] | del PREFIX | get ADDR]`.
pub fn route(stack: &Stack, args: &[&str]) -> Result<String, String> {
    let parse_prefix = |p: &str| -> Result<(Ipv4Addr, u8), String> {
        if p == "default" {
            return Ok((Ipv4Addr::UNSPECIFIED, 0));
        }
        let (a, l) = p.split_once('/').unwrap_or((p, "32"));
        let a: Ipv4Addr = a.parse().map_err(|_| format!("bad prefix {p:?}"))?;
        let l: u8 = l
            .parse()
            .ok()
            .filter(|l| *l <= 32)
            .ok_or_else(|| format!("bad prefix length in {p:?}"))?;
        Ok((a, l))
    };
    let opt = |name: &str| {
        args.iter()
            .position(|a| *a == name)
            .and_then(|i| args.get(i + 1))
            .copied()
    };
    match args.first().copied() {
        None | Some("show") | Some("list") => {
            let mut out = String::new();
            for r in stack.ipv4.fib.routes(TableId::Main) {
                let _ = writeln!(out, "{}", route_line(&r, stack));
            }
            for r in stack.ipv4.fib.routes(TableId::Local) {
                let _ = writeln!(out, "{} table local", route_line(&r, stack));
            }
            Ok(out)
        }
        Some("add") => {
            let (dst, len) =
                parse_prefix(args.get(1).ok_or("route add PREFIX [via GW] [dev DEV]")?)?;
            let gw = opt("via")
                .map(|g| {
                    g.parse::<Ipv4Addr>()
                        .map_err(|_| format!("bad gateway {g:?}"))
                })
                .transpose()?;
            let oif = match opt("dev") {
                Some(d) => Some(
                    stack
                        .devs
                        .by_name(d)
                        .ok_or_else(|| format!("no device {d:?}"))?
                        .ifindex,
                ),
                None => None,
            };
            // fib_check_nh: a gateway without a device goes out where the gateway is.
            let oif = match (oif, gw) {
                (None, Some(g)) => {
                    let fl = Flowi4 {
                        daddr: Some(g),
                        ..Default::default()
                    };
                    let d = stack
                        .ipv4
                        .fib
                        .route_output(stack, &fl)
                        .map_err(|_| format!("Nexthop has invalid gateway: {g}"))?;
                    Some(d.dev.ifindex)
                }
                (o, _) => o,
            };
            let mut r = FibRoute::unicast(dst, len, gw, oif);
            if let Some(m) = opt("metric") {
                r.metric = m.parse().map_err(|_| format!("bad metric {m:?}"))?;
            }
            if let Some(m) = opt("mtu") {
                r.mtu = Some(m.parse().map_err(|_| format!("bad mtu {m:?}"))?);
            }
            stack.ipv4.fib.add(r).map_err(|e| e.to_string())?;
            Ok(String::new())
        }
        Some("del") => {
            let (dst, len) = parse_prefix(args.get(1).ok_or("route del PREFIX")?)?;
            stack
                .ipv4
                .fib
                .del(TableId::Main, dst, len, None)
                .map_err(|e| e.to_string())?;
            Ok(String::new())
        }
        Some("get") => {
            let a: Ipv4Addr = args
                .get(1)
                .and_then(|a| a.parse().ok())
                .ok_or("route get ADDRESS")?;
            let fl = Flowi4 {
                daddr: Some(a),
                ..Default::default()
            };
            let d = stack
                .ipv4
                .fib
                .route_output(stack, &fl)
                .map_err(|e| e.to_string())?;
            Ok(format!("{}\n", d.describe()))
        }
        Some(other) => Err(format!(
            "route: unknown command {other:?} (show, add, del, get)"
        )),
    }
}

/// `ip neigh`.
pub fn neigh(stack: &Stack) -> String {
    let mut out = String::new();
    for n in stack.ipv4.arp.dump(stack.now()) {
        let _ = writeln!(out, "{n}");
    }
    out
}

/// `tc [-s] qdisc [show | replace dev DEV (pfifo_fast | tbf rate R burst B [latency L] |
/// fq [fq options])]`.
pub fn qdisc(stack: &Stack, args: &[&str]) -> Result<String, String> {
    if args.first() == Some(&"replace") {
        const USAGE: &str =
            "qdisc replace dev DEV (pfifo_fast | tbf rate R burst B | fq [OPTIONS])";
        let dev = args
            .iter()
            .position(|a| *a == "dev")
            .and_then(|i| args.get(i + 1))
            .ok_or(USAGE)?;
        let d = stack
            .devs
            .by_name(dev)
            .ok_or_else(|| format!("no device {dev:?}"))?;
        let val = |k: &str| {
            args.iter()
                .position(|a| *a == k)
                .and_then(|i| args.get(i + 1))
                .copied()
        };
        enum Kind {
            PfifoFast,
            Tbf(crate::dev::sched::tbf::TbfConfig),
            Fq(crate::dev::sched::fq::FqConfig),
        }
        let kind = if let Some(i) = args.iter().position(|a| *a == "fq") {
            let cfg = crate::dev::sched::fq::FqConfig::for_device(&d)
                .parse(&args[i + 1..])
                .map_err(|e| e.to_string())?;
            Kind::Fq(cfg)
        } else if args.contains(&"tbf") {
            let rate = crate::util::parse_rate(val("rate").ok_or("tbf needs rate")?)
                .map_err(|e| e.to_string())?;
            let burst = crate::util::parse_size(val("burst").ok_or("tbf needs burst")?)
                .map_err(|e| e.to_string())?;
            let latency = match val("latency") {
                Some(l) => crate::util::parse_time(l).map_err(|e| e.to_string())?,
                None => std::time::Duration::from_millis(50),
            };
            Kind::Tbf(crate::dev::sched::tbf::TbfConfig::with_latency(
                rate,
                burst as u32,
                latency,
            ))
        } else if args.contains(&"pfifo_fast") {
            Kind::PfifoFast
        } else {
            return Err("qdisc replace: pfifo_fast, tbf or fq".into());
        };
        for txq in d.txqs.iter() {
            let q: Box<dyn crate::dev::sched::Qdisc> = match kind {
                Kind::Tbf(cfg) => Box::new(crate::dev::sched::tbf::Tbf::new(cfg)),
                Kind::Fq(cfg) => {
                    Box::new(crate::dev::sched::fq::Fq::new(cfg).map_err(|e| e.to_string())?)
                }
                Kind::PfifoFast => Box::new(crate::dev::sched::pfifo_fast::PfifoFast::new()),
            };
            txq.qdisc.replace(q);
        }
        return Ok(String::new());
    }
    let mut out = String::new();
    for d in stack.devs.list() {
        for (i, txq) in d.txqs.iter().enumerate() {
            let s = txq.qdisc.stats();
            let params = txq.qdisc.describe();
            let _ = writeln!(
                out,
                "qdisc {} 0: dev {} {}{}{}",
                txq.qdisc.kind(),
                d.name(),
                if d.txqs.len() > 1 {
                    format!("parent :{}", i + 1)
                } else {
                    "root refcnt 2".into()
                },
                if params.is_empty() { "" } else { " " },
                params
            );
            let _ = writeln!(
                out,
                " Sent {} bytes {} pkt (dropped {}, overlimits {} requeues {})",
                s.bytes, s.packets, s.drops, s.overlimits, s.requeues
            );
            let _ = writeln!(
                out,
                " backlog {}b {}p requeues {}",
                s.backlog, s.qlen, s.requeues
            );
            if let Some(x) = txq.qdisc.xstats() {
                let _ = writeln!(out, "{x}");
            }
        }
    }
    Ok(out)
}

/// `ethtool -S DEV`.
pub fn ethtool_s(stack: &Stack, dev: &str) -> Result<String, String> {
    let d = stack
        .devs
        .by_name(dev)
        .ok_or_else(|| format!("no device {dev:?}"))?;
    let mut out = String::from("NIC statistics:\n");
    for (k, v) in d.link_stats().into_iter().chain(d.offload_stats()) {
        let _ = writeln!(out, "     {k}: {v}");
    }
    for (k, v) in d.ops.ethtool_stats() {
        let _ = writeln!(out, "     {k}: {v}");
    }
    Ok(out)
}

/// `ip -d -s link show [DEV]`: each device's flags, MTU, queue length, address, GSO /
/// GRO sizes and counters; or `link set DEV [mtu N] [txqueuelen N]
/// [gso_ipv4_max_size N] [gro_ipv4_max_size N]` (BIG TCP is the two sizes above 65536
/// on both ends of a link).
pub fn link(stack: &Stack, args: &[&str]) -> Result<String, String> {
    match args {
        ["set", dev, rest @ ..] => {
            let d = stack
                .devs
                .by_name(dev)
                .ok_or_else(|| format!("Cannot find device \"{dev}\""))?;
            if rest.is_empty() || rest.len() % 2 != 0 {
                return Err(
                    "link set DEV [mtu N] [txqueuelen N] [gso_ipv4_max_size N] [gro_ipv4_max_size N]"
                        .into(),
                );
            }
            // All or nothing, as one RTM_NEWLINK: on a bad setting or a refused value
            // the device is put back as it was.
            let before = (
                d.mtu(),
                d.tx_queue_len(),
                d.gso_ipv4_max_size(),
                d.gro_ipv4_max_size(),
            );
            let applied = rest.chunks(2).try_for_each(|kv| {
                let n: u32 = kv[1]
                    .parse()
                    .map_err(|_| format!("Invalid \"{}\" value \"{}\"", kv[0], kv[1]))?;
                match kv[0] {
                    "mtu" => d.set_mtu(n),
                    "gso_ipv4_max_size" => d.set_gso_ipv4_max_size(n),
                    "gro_ipv4_max_size" => d.set_gro_ipv4_max_size(n),
                    "txqueuelen" | "qlen" => {
                        d.set_tx_queue_len(n);
                        Ok(())
                    }
                    other => return Err(format!("link set: unknown setting {other:?}")),
                }
                .map_err(|e| e.to_string())
            });
            if let Err(e) = applied {
                let _ = d.set_mtu(before.0);
                d.set_tx_queue_len(before.1);
                let _ = d.set_gso_ipv4_max_size(before.2);
                let _ = d.set_gro_ipv4_max_size(before.3);
                return Err(e);
            }
            Ok(String::new())
        }
        [] | ["show"] | ["show", _] | [_] => {
            let only = match args {
                ["show", d] => Some(*d),
                [d] if *d != "show" => Some(*d),
                _ => None,
            };
            let devs = stack.devs.list();
            if let Some(name) = only {
                if !devs.iter().any(|d| d.name() == name) {
                    return Err(format!("Device \"{name}\" does not exist."));
                }
            }
            let mut out = String::new();
            for d in devs.iter().filter(|d| only.is_none_or(|n| d.name() == n)) {
                link_show(&mut out, d);
            }
            Ok(out)
        }
        _ => Err("link [show [DEV]] | link set DEV SETTING VALUE ...".into()),
    }
}

fn link_show(out: &mut String, d: &crate::dev::NetDevice) {
    use crate::dev::flags;
    let f = d.flags();
    let names: Vec<&str> = [
        (flags::LOOPBACK, "LOOPBACK"),
        (flags::BROADCAST, "BROADCAST"),
        (flags::MULTICAST, "MULTICAST"),
        (flags::NOARP, "NOARP"),
        (flags::PROMISC, "PROMISC"),
        (flags::UP, "UP"),
        (flags::RUNNING, "LOWER_UP"),
    ]
    .iter()
    .filter(|(b, _)| f & b != 0)
    .map(|(_, n)| *n)
    .collect();
    let kind = if d.is_loopback() { "loopback" } else { "ether" };
    let _ = writeln!(
        out,
        "{}: {}: <{}> mtu {} qlen {}\n    link/{kind} {} minmtu {} maxmtu {} numtxqueues {} \
         gso_max_size {} gso_max_segs {} tso_max_size {} gso_ipv4_max_size {} gro_ipv4_max_size {}",
        d.ifindex,
        d.name(),
        names.join(","),
        d.mtu(),
        d.tx_queue_len(),
        d.mac(),
        d.min_mtu,
        d.max_mtu,
        d.txqs.len(),
        d.gso_max_size,
        d.gso_max_segs,
        d.tso_max_size,
        d.gso_ipv4_max_size(),
        d.gro_ipv4_max_size(),
    );
    let st: std::collections::HashMap<_, _> = d.link_stats().into_iter().collect();
    // As `ip -s link`: each column as wide as its header or its number.
    let table = |out: &mut String, dir: &str, cols: &[(&str, u64)]| {
        let cells: Vec<(String, usize)> = cols
            .iter()
            .map(|(h, v)| {
                let v = v.to_string();
                let w = h.len().max(v.len());
                (v, w)
            })
            .collect();
        let _ = write!(out, "    {dir}:");
        for ((h, _), (_, w)) in cols.iter().zip(&cells) {
            let _ = write!(out, " {h:>w$}");
        }
        let _ = write!(out, "\n       ");
        for (v, w) in &cells {
            let _ = write!(out, " {v:>w$}");
        }
        out.push('\n');
    };
    table(
        out,
        "RX",
        &[
            ("bytes", st["rx_bytes"]),
            ("packets", st["rx_packets"]),
            ("errors", st["rx_errors"]),
            ("dropped", st["rx_dropped"]),
            ("missed", st["rx_missed_errors"]),
        ],
    );
    table(
        out,
        "TX",
        &[
            ("bytes", st["tx_bytes"]),
            ("packets", st["tx_packets"]),
            ("errors", st["tx_errors"]),
            ("dropped", st["tx_dropped"]),
        ],
    );
}

/// `sysctl NAME[=VALUE]` (or `-a`).
pub fn sysctl(stack: &Stack, args: &[&str]) -> Result<String, String> {
    match args.first().copied() {
        None | Some("-a") => Ok(stack
            .sysctl
            .all()
            .into_iter()
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect()),
        Some(kv) => {
            let kv = kv.trim_start_matches("-w");
            let kv = if kv.is_empty() {
                args.get(1).copied().unwrap_or("")
            } else {
                kv
            };
            if let Some((k, v)) = kv.split_once('=') {
                let v: i64 = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("{k}: {v:?} is not a number"))?;
                stack.sysctl.set(k.trim(), v).map_err(|e| e.to_string())?;
                Ok(format!("{} = {v}\n", k.trim()))
            } else {
                stack
                    .sysctl
                    .get(kv)
                    .map(|v| format!("{kv} = {v}\n"))
                    .ok_or_else(|| format!("sysctl: cannot stat {kv}: No such file or directory"))
            }
        }
    }
}

/// Run one view command: `ss`, `netstat -s`, `route ...`, `neigh`, `qdisc ...`,
/// `ethtool -S DEV`, `iptables ...`, `sysctl ...`, `link ...`.
pub fn command(stack: &Stack, args: &[&str]) -> Result<String, String> {
    let (cmd, rest) = args.split_first().ok_or("no command")?;
    match *cmd {
        "ss" => Ok(ss(stack, rest)),
        "netstat" => Ok(netstat_s(stack)),
        "route" => route(stack, rest),
        "neigh" => Ok(neigh(stack)),
        "qdisc" => qdisc(stack, rest.iter().copied().filter(|a| *a != "-s").collect::<Vec<_>>().as_slice()),
        "ethtool" => ethtool_s(stack, rest.iter().find(|a| !a.starts_with('-')).ok_or("ethtool -S DEV")?),
        "iptables" => {
            let c = crate::netfilter::parse_command(rest).map_err(|e| e.to_string())?;
            c.apply(stack.ipv4.nf.filter()).map_err(|e| e.to_string())
        }
        "sysctl" => sysctl(stack, rest),
        "link" => link(stack, rest),
        other => Err(format!(
            "unknown command {other:?} (ss, netstat, route, neigh, qdisc, ethtool, iptables, sysctl, link)"
        )),
    }
}
