//! The `usnet` command-line tool.

mod bench;
mod bulk;
mod demo;
mod frames;
mod iperf;
mod plot;
mod trace;
mod up;
mod views;
mod vnic;

use clap::{Parser, Subcommand};

/// usnet: the Linux kernel's TCP/IPv4 stack, rebuilt in userspace Rust.
#[derive(Parser)]
#[command(name = "usnet", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Two hosts on the embedded in-memory network: a TCP transfer from A to B through
    /// every layer, with a progress line, SHA-256 at both ends and the counters that moved.
    Demo(demo::DemoArgs),
    /// Follow one segment through every stage of the send and receive paths, with
    /// timings, plus per-stage counts and latency histograms for the run.
    Trace(trace::TraceArgs),
    /// The device layer alone: numbered Ethernet frames through qdisc, TX ring, wire and
    /// NAPI, and where every frame went.
    Frames(frames::FramesArgs),
    /// Bring a stack up on a real link (TAP, AF_PACKET) and keep it running, with built-in
    /// services (echo, discard, chargen, http, iperf3) for real clients; or on
    /// `--link vnic`, facing a peer stack in this process (no root).
    Up(up::UpArgs),
    /// Fetch an http:// URL over a usnet stack on a real link, or on `--link vnic` from
    /// the in-process peer's HTTP server (no root).
    Get(up::GetArgs),
    /// Send bytes over TCP from a usnet stack on a real link (or `--link vnic`, to the
    /// in-process peer); prints Gbit/s and SHA-256.
    Send(bulk::SendArgs),
    /// Receive TCP connections on a usnet stack on a real link (or `--link vnic`, from the
    /// in-process peer); prints Gbit/s and SHA-256.
    Recv(bulk::RecvArgs),
    /// Sockets, as `ss [-t] [-u] [-l] [-a] [-i]` shows them.
    Ss(views::ViewArgs),
    /// Protocol counters, as `netstat -s` (Ip, Icmp, Tcp, Udp, TcpExt).
    Netstat(views::ViewArgs),
    /// Routes: show, add PREFIX [via GW] [dev DEV], del PREFIX, get ADDR (as `ip route`).
    Route(views::ViewArgs),
    /// The ARP table, as `ip neigh`.
    Neigh(views::ViewArgs),
    /// Queueing disciplines, as `tc -s qdisc`; `replace dev DEV pfifo_fast|tbf rate R burst B|fq`.
    Qdisc(views::ViewArgs),
    /// Device statistics, as `ethtool -S DEV`.
    Ethtool(views::ViewArgs),
    /// The filter table, as `iptables -L -v -n`, `-A CHAIN RULE`, `-D CHAIN N`.
    Iptables(views::ViewArgs),
    /// Tunables by their Linux names: `sysctl NAME[=VALUE]`, `-a`.
    Sysctl(views::ViewArgs),
    /// Devices, as `ip -d -s link show [DEV]`; `set DEV mtu N | txqueuelen N |
    /// gso_ipv4_max_size N | gro_ipv4_max_size N` (BIG TCP above 65536).
    Link(views::ViewArgs),
    /// usnet measured beside smoltcp and the Linux kernel in one run: bulk, request/
    /// response, connection setup, and the memcpy limit; medians and ratios.
    Bench(bench::BenchArgs),
    /// The kernel-side peer `usnet bench` runs inside a namespace (internal).
    #[command(hide = true)]
    BenchPeer {
        /// `sink ADDR`, `source ADDR BYTES [CC]`, `rr-server ADDR` or `rr-client ADDR N`.
        args: Vec<String>,
    },
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Demo(a) => demo::run(a),
        Cmd::Frames(a) => frames::run(a),
        Cmd::Trace(a) => trace::run(a),
        Cmd::Up(a) => up::run_up(a),
        Cmd::Get(a) => up::run_get(a),
        Cmd::Send(a) => bulk::run_send(a),
        Cmd::Recv(a) => bulk::run_recv(a),
        Cmd::Ss(a) => views::run("ss", a),
        Cmd::Netstat(a) => views::run("netstat", a),
        Cmd::Route(a) => views::run("route", a),
        Cmd::Neigh(a) => views::run("neigh", a),
        Cmd::Qdisc(a) => views::run("qdisc", a),
        Cmd::Ethtool(a) => views::run("ethtool", a),
        Cmd::Iptables(a) => views::run("iptables", a),
        Cmd::Sysctl(a) => views::run("sysctl", a),
        Cmd::Link(a) => views::run("link", a),
        Cmd::Bench(a) => bench::run(a),
        Cmd::BenchPeer { args } => usnet_bench::kernel::peer_main(&args),
    };
    std::process::exit(code);
}
