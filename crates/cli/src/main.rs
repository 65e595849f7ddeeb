//! The `usnet` command-line tool.

mod demo;
mod frames;
mod up;

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
    /// The device layer alone: numbered Ethernet frames through qdisc, TX ring, wire and
    /// NAPI, and where every frame went.
    Frames(frames::FramesArgs),
    /// Bring a stack up on a real link (TAP) and keep it running, with built-in
    /// services (echo, discard, chargen, http) for real clients.
    Up(up::UpArgs),
    /// Fetch an http:// URL over a usnet stack on a real link.
    Get(up::GetArgs),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Demo(a) => demo::run(a),
        Cmd::Frames(a) => frames::run(a),
        Cmd::Up(a) => up::run_up(a),
        Cmd::Get(a) => up::run_get(a),
    };
    std::process::exit(code);
}
