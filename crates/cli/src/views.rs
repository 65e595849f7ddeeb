//! The Linux-style views (`ss`, `netstat -s`, `route`, `neigh`, `qdisc`, `ethtool -S`,
//! `iptables`, `sysctl`, `link`) on a running `usnet up` through its control socket, and the
//! control socket's server side.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use clap::Args;
use usnet::Stack;

/// Arguments of a view command.
#[derive(Args, Debug)]
#[command(after_help = "EXAMPLES:\n  \
    usnet ss --ctl /run/usnet.sock -tni\n  \
    usnet netstat --ctl /run/usnet.sock -s\n  \
    usnet route --ctl /run/usnet.sock add 10.9.0.0/16 via 10.0.0.1\n  \
    usnet qdisc --ctl /run/usnet.sock replace dev eth0 tbf rate 100mbit burst 32k\n  \
    usnet qdisc --ctl /run/usnet.sock replace dev eth0 fq flow_limit 200 maxrate 1gbit\n  \
    usnet iptables --ctl /run/usnet.sock -A INPUT -p tcp --dport 9 -j DROP\n  \
    usnet sysctl --ctl /run/usnet.sock net.ipv4.tcp_sack=0\n  \
    usnet link --ctl /run/usnet.sock set eth0 gso_ipv4_max_size 185000 gro_ipv4_max_size 185000\n  \
    (on the demo: usnet demo --bytes 10M --show ss,netstat,route,neigh,qdisc,ethtool,link)")]
pub struct ViewArgs {
    /// The control socket of a `usnet up --ctl PATH` instance.
    #[arg(long)]
    ctl: Option<PathBuf>,
    /// The command's own arguments, as the Linux tool takes them.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Run view `name` against the control socket; returns the exit status.
pub fn run(name: &str, mut a: ViewArgs) -> i32 {
    // Accept --ctl anywhere on the line.
    if let Some(i) = a.args.iter().position(|x| x == "--ctl") {
        if i + 1 < a.args.len() {
            a.ctl = Some(PathBuf::from(a.args.remove(i + 1)));
        }
        a.args.remove(i);
    }
    let Some(ctl) = a.ctl else {
        eprintln!(
            "usnet {name}: needs --ctl PATH, the control socket of `usnet up --ctl PATH`; \
             on the in-memory demo use `usnet demo --show {name}`"
        );
        return 2;
    };
    let mut line = vec![name.to_string()];
    line.extend(a.args);
    match query(&ctl, &line) {
        Ok((true, text)) => {
            print!("{text}");
            0
        }
        Ok((false, text)) => {
            eprint!("usnet {name}: {text}");
            1
        }
        Err(e) => {
            eprintln!(
                "usnet {name}: {}: {e} (is `usnet up --ctl {}` running?)",
                ctl.display(),
                ctl.display()
            );
            1
        }
    }
}

/// Send one command line; (ok, text).
pub fn query(ctl: &Path, args: &[String]) -> std::io::Result<(bool, String)> {
    let mut s = UnixStream::connect(ctl)?;
    writeln!(s, "{}", args.join("\t"))?;
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status)?;
    let mut text = String::new();
    r.read_to_string(&mut text)?;
    Ok((status.trim() == "ok", text))
}

/// Serve the control socket at `path` for `stack` (one command per connection).
pub fn serve(stack: Stack, path: &Path) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path)?;
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let mut line = String::new();
            let mut r = BufReader::new(&conn);
            if r.read_line(&mut line).is_err() {
                continue;
            }
            let args: Vec<&str> = line
                .trim_end_matches('\n')
                .split('\t')
                .filter(|a| !a.is_empty())
                .collect();
            let reply = match usnet::views::command(&stack, &args) {
                Ok(t) => format!("ok\n{t}"),
                Err(e) => format!("err\n{e}\n"),
            };
            let mut w = &conn;
            let _ = w.write_all(reply.as_bytes());
        }
    });
    Ok(())
}
