//! The `usnet` command-line tool.

mod demo;

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
    /// Run two hosts on the embedded in-memory network and push traffic between them.
    Demo(demo::DemoArgs),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Demo(a) => demo::run(a),
    };
    std::process::exit(code);
}
