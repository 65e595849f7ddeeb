//! `usnet bench`: usnet beside smoltcp and the Linux kernel, in one run.

use clap::Args;

/// Options of `usnet bench`.
#[derive(Args)]
#[command(after_help = "EXAMPLES:\n  \
    usnet bench --quick\n  \
    usnet bench --only bulk --json\n  \
    sudo usnet bench            # the kernel's veth cases need root")]
pub struct BenchArgs {
    /// Fewer bytes and runs: under five minutes on two cores.
    #[arg(long)]
    quick: bool,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// Only the cases whose name contains this (bulk, rr, conn, limit).
    #[arg(long)]
    only: Option<String>,
}

/// Run the benchmark and print the table (and the JSON line).
pub fn run(a: BenchArgs) -> i32 {
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("usnet bench: cannot find this program's path for the kernel peers: {e}");
            return 1;
        }
    };
    let v = usnet_bench::run(&usnet_bench::Options {
        quick: a.quick,
        only: a.only,
        exe,
    });
    print!("{}", usnet_bench::table(&v));
    if a.json {
        println!("{v}");
    }
    0
}
