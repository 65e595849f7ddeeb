//! `usnet bench`: usnet measured beside smoltcp 0.14 and the Linux kernel in one run, on
//! the same machine, runs alternating between systems so a noisy machine cannot flatter
//! one of them. Each case reports the median, min and max of its runs and the ratios
//! usnet/peer; a system that cannot run a case is `null` with a note.
//!
//! smoltcp is a dependency of this crate only, never of the `usnet` library.

use std::io::Write as _;
use std::path::PathBuf;
use std::rc::Rc;

use serde_json::{json, Value};

pub mod kernel;
pub mod smol;
pub mod tap;
pub mod usn;

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Fewer bytes and runs (under five minutes on two cores).
    pub quick: bool,
    /// Only cases whose name contains this.
    pub only: Option<String>,
    /// This program, to run as the kernel peers inside namespaces (`usnet bench-peer`).
    pub exe: PathBuf,
}

/// One system's result in one case.
type Outcome = Result<Vec<f64>, String>;

/// Median, min and max.
fn stats(v: &[f64]) -> Value {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let median = if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    };
    json!({"median": round(median), "min": round(s[0]), "max": round(s[s.len() - 1])})
}

fn round(x: f64) -> f64 {
    if x.abs() >= 100.0 {
        x.round()
    } else {
        (x * 1000.0).round() / 1000.0
    }
}

/// A measurement of one system: called once per run.
type Measure<'a> = Box<dyn FnMut() -> Result<f64, String> + 'a>;

struct Case<'a> {
    name: &'static str,
    unit: &'static str,
    systems: Vec<(&'static str, Result<Measure<'a>, String>)>,
}

/// `n` one-byte exchanges over `c` (a connected stream of any stack): write a byte,
/// wait for it back; transactions per second.
pub fn rr_client(mut c: impl std::io::Read + std::io::Write, n: u32) -> std::io::Result<f64> {
    let mut b = [1u8; 1];
    let t0 = std::time::Instant::now();
    for _ in 0..n {
        c.write_all(&b)?;
        c.read_exact(&mut b)?;
    }
    Ok(f64::from(n) / t0.elapsed().as_secs_f64())
}

fn gbit(bytes: u64, secs: f64) -> f64 {
    bytes as f64 * 8.0 / secs / 1e9
}

/// memcpy bandwidth in GB/s (best of a few passes over a buffer larger than the caches).
fn memcpy_gbytes() -> f64 {
    let n = 64 << 20;
    let src = vec![1u8; n];
    let mut dst = vec![0u8; n];
    let mut best = 0f64;
    for _ in 0..5 {
        let t0 = std::time::Instant::now();
        dst.copy_from_slice(&src);
        std::hint::black_box(&mut dst);
        best = best.max(n as f64 / t0.elapsed().as_secs_f64() / 1e9);
    }
    best
}

/// A measurement on the kernels' veth pair, or why there is none.
fn on_veth<'a>(
    veth: &Rc<Result<kernel::Veth, String>>,
    mut f: impl FnMut(&kernel::Veth) -> Result<f64, String> + 'a,
) -> Result<Measure<'a>, String> {
    match veth.as_ref() {
        Ok(_) => {
            let v = veth.clone();
            Ok(Box::new(move || {
                let v = v.as_ref().as_ref().map_err(|e| e.clone())?;
                f(v)
            }) as Measure)
        }
        Err(e) => Err(format!("veth pair between namespaces unavailable: {e}")),
    }
}

/// Bulk through the kernels over the veth pair (Gbit/s).
fn kernel_bulk<'a>(
    veth: &Rc<Result<kernel::Veth, String>>,
    exe: PathBuf,
    bytes: u64,
) -> Result<Measure<'a>, String> {
    on_veth(veth, move |v| v.bulk(&exe, bytes).map(|s| gbit(bytes, s)))
}

/// The kernel's side of a request/response case over the veth pair (see
/// [`kernel::Veth::rr`]).
fn kernel_rr<'a>(
    veth: &Rc<Result<kernel::Veth, String>>,
    exe: PathBuf,
    n: u32,
    busy_us: u32,
) -> Result<Measure<'a>, String> {
    on_veth(veth, move |v| v.rr(&exe, n, busy_us))
}

/// Run the benchmark; prints progress and the table to stderr/stdout, returns the JSON
/// object (`{"cases": [...]}`).
pub fn run(o: &Options) -> Value {
    let runs = if o.quick { 3 } else { 5 };
    let bulk_bytes: u64 = if o.quick { 256 << 20 } else { 1 << 30 };
    let rr_n: u32 = if o.quick { 20_000 } else { 100_000 };
    let conn_n: u32 = if o.quick { 2_000 } else { 10_000 };
    let smol_bulk: u64 = bulk_bytes / 4;

    let mut cases: Vec<Case> = Vec::new();
    // One veth pair at MTU 1500 serves the bulk case and the TAP cases' kernel column.
    let veth1500 = Rc::new(kernel::Veth::new(1500));
    for mtu in [1500u32, 9000] {
        let veth = if mtu == 1500 {
            veth1500.clone()
        } else {
            Rc::new(kernel::Veth::new(mtu))
        };
        let exe = o.exe.clone();
        let mut smol = None;
        let mut us = None;
        cases.push(Case {
            name: if mtu == 1500 {
                "bulk_mtu1500"
            } else {
                "bulk_mtu9000"
            },
            unit: "Gbit/s",
            systems: vec![
                (
                    "usnet",
                    Ok(Box::new(move || {
                        let p = us.get_or_insert_with(|| {
                            usn::Pair::with_line_rate(mtu, usn::BULK_LINE_RATE)
                        });
                        Ok(gbit(bulk_bytes, p.bulk(bulk_bytes)))
                    }) as Measure),
                ),
                (
                    "smoltcp",
                    Ok(Box::new(move || {
                        let p = smol.get_or_insert_with(|| smol::Pair::new(mtu as usize, 4 << 20));
                        p.bulk(smol_bulk).map(|secs| gbit(smol_bulk, secs))
                    }) as Measure),
                ),
                ("kernel", kernel_bulk(&veth, exe, bulk_bytes)),
            ],
        });
    }
    {
        // BIG TCP (Linux 6.3's gso_ipv4_max_size / gro_ipv4_max_size) on both ends of
        // the link, usnet's vnics and the kernels' veth alike; frames stay MTU 1500.
        let exe = o.exe.clone();
        let exe2 = o.exe.clone();
        let veth = Rc::new(std::cell::RefCell::new(
            None::<Result<kernel::Veth, String>>,
        ));
        let mut us = None;
        cases.push(Case {
            name: "bulk_mtu1500_big_tcp",
            unit: "Gbit/s",
            systems: vec![
                (
                    "usnet",
                    Ok(Box::new(move || {
                        let p = us.get_or_insert_with(|| {
                            usn::Pair::with_big_tcp(1500, usn::BULK_LINE_RATE, usn::BIG_TCP_SIZE)
                        });
                        Ok(gbit(bulk_bytes, p.bulk(bulk_bytes)))
                    }) as Measure),
                ),
                ("smoltcp", Err("smoltcp has no TSO, so no BIG TCP".into())),
                (
                    "kernel",
                    Ok(Box::new(move || {
                        let mut v = veth.borrow_mut();
                        let v = v
                            .get_or_insert_with(|| {
                                kernel::Veth::with_big_tcp(1500, &exe2, usn::BIG_TCP_SIZE)
                            })
                            .as_ref()
                            .map_err(|e| format!("veth pair with BIG TCP unavailable: {e}"))?;
                        v.bulk(&exe, bulk_bytes).map(|s| gbit(bulk_bytes, s))
                    }) as Measure),
                ),
            ],
        });
    }
    {
        // One TAP lab for both directions, made when first needed; the kernel column is
        // kernel-to-kernel over a veth pair (MTU 1500, offloads on), in the same run.
        let lab = Rc::new(std::cell::RefCell::new(None::<Result<tap::TapLab, String>>));
        let slab = Rc::new(std::cell::RefCell::new(
            None::<Result<tap::SmolTapLab, String>>,
        ));
        let tap_bytes: u64 = if o.quick { 256 << 20 } else { 1 << 30 };
        // `_sendfile`: the senders hand their pages over uncopied (usnet `send_pages`,
        // the kernel `sendfile`); smoltcp has no such call.
        for (name, to_kernel, splice) in [
            ("tap_usnet_to_kernel", true, false),
            ("tap_usnet_to_kernel_sendfile", true, true),
            ("tap_kernel_to_usnet", false, false),
        ] {
            let lab = lab.clone();
            let slab = slab.clone();
            let exe = o.exe.clone();
            let exe2 = o.exe.clone();
            let exe3 = o.exe.clone();
            // smoltcp, one frame per syscall, moves a quarter of the bytes.
            let smol_bytes = tap_bytes / 4;
            cases.push(Case {
                name,
                unit: "Gbit/s",
                systems: vec![
                    (
                        "usnet",
                        Ok(Box::new(move || {
                            let mut l = lab.borrow_mut();
                            let lab = l
                                .get_or_insert_with(tap::TapLab::new)
                                .as_mut()
                                .map_err(|e| e.clone())?;
                            let secs = if to_kernel {
                                lab.usnet_to_kernel(&exe, tap_bytes, splice)?
                            } else {
                                lab.kernel_to_usnet(&exe, tap_bytes)?
                            };
                            Ok(gbit(tap_bytes, secs))
                        }) as Measure),
                    ),
                    (
                        "smoltcp",
                        if splice {
                            Err("smoltcp has no zero-copy send".to_string())
                        } else {
                            Ok(Box::new(move || {
                                let mut l = slab.borrow_mut();
                                let lab = l
                                    .get_or_insert_with(tap::SmolTapLab::new)
                                    .as_mut()
                                    .map_err(|e| e.clone())?;
                                let secs = if to_kernel {
                                    lab.smoltcp_to_kernel(&exe3, smol_bytes)?
                                } else {
                                    lab.kernel_to_smoltcp(&exe3, smol_bytes)?
                                };
                                Ok(gbit(smol_bytes, secs))
                            }) as Measure)
                        },
                    ),
                    (
                        "kernel",
                        if splice {
                            on_veth(&veth1500, move |v| {
                                v.bulk_sendfile(&exe2, tap_bytes)
                                    .map(|s| gbit(tap_bytes, s))
                            })
                        } else {
                            kernel_bulk(&veth1500, exe2, tap_bytes)
                        },
                    ),
                ],
            });
        }
    }
    {
        let mut us = None;
        let mut smol = None;
        cases.push(Case {
            name: "rr_1byte_one_thread",
            unit: "transactions/s",
            systems: vec![
                (
                    "usnet",
                    Ok(
                        Box::new(move || {
                            Ok(us.get_or_insert_with(|| usn::Pair::new(1500)).rr(rr_n))
                        }) as Measure,
                    ),
                ),
                (
                    "smoltcp",
                    Ok(Box::new(move || {
                        Ok(smol
                            .get_or_insert_with(|| smol::Pair::new(1500, 64 << 10))
                            .rr(rr_n))
                    }) as Measure),
                ),
                (
                    "kernel",
                    Err("the kernel has no one-thread poll loop: see rr_1byte_threads".into()),
                ),
            ],
        });
    }
    // Request/response over veth between namespaces, and the same with busy polling
    // (SO_BUSY_POLL 50 µs on both sockets: the waiting thread polls the device instead
    // of sleeping; the kernel's veth polls with NAPI for it, GRO on for that case).
    for (name, busy_us, usnet_n) in [
        ("rr_1byte_veth", 0, rr_n / 4),
        ("rr_1byte_veth_busy_poll", 50, rr_n / 2),
    ] {
        cases.push(Case {
            name,
            unit: "transactions/s",
            systems: vec![
                (
                    "usnet",
                    Ok(Box::new(move || usn::rr_threads(usnet_n, busy_us)) as Measure),
                ),
                ("smoltcp", Err("smoltcp has no blocking API".into())),
                (
                    "kernel",
                    kernel_rr(&veth1500, o.exe.clone(), rr_n / 2, busy_us),
                ),
            ],
        });
    }
    cases.push(Case {
        name: "rr_1byte_threads",
        unit: "transactions/s",
        systems: vec![
            (
                "usnet",
                Ok(Box::new(move || usn::rr_threads(rr_n / 4, 0)) as Measure),
            ),
            ("smoltcp", Err("smoltcp has no blocking API".into())),
            (
                "kernel",
                Ok(Box::new(move || kernel::rr_loopback(rr_n / 2)) as Measure),
            ),
        ],
    });
    {
        // Loss events are few per run: 16 MiB (about 120 losses each way) keeps the
        // luck of the draw out of the median. smoltcp, at a few Mbit/s in real time,
        // moves a quarter of that.
        let lossy_bytes: u64 = if o.quick { 1 << 20 } else { 16 << 20 };
        let smol_lossy: u64 = if o.quick { 1 << 20 } else { 4 << 20 };
        let impaired = || usnet::link::Netem {
            delay: std::time::Duration::from_millis(5),
            loss: usnet::link::Loss::Random(0.01),
            ..Default::default()
        };
        // The same impairment under each congestion control usnet and Linux share.
        for (name, cc) in [("lossy_1pct_10ms", "cubic"), ("lossy_1pct_10ms_bbr", "bbr")] {
            let mut seed = 0u64;
            let mut systems: Vec<(&'static str, Result<Measure, String>)> = vec![(
                "usnet",
                Ok(Box::new(move || {
                    seed += 1;
                    Ok(usn::lossy(
                        lossy_bytes,
                        0.01,
                        std::time::Duration::from_millis(5),
                        seed,
                        cc,
                    ))
                }) as Measure),
            )];
            if cc != "cubic" {
                systems.push(("smoltcp", Err(format!("smoltcp has no {cc}"))));
            } else {
                systems.push((
                    "smoltcp",
                    Ok(Box::new(move || {
                        let mut p = smol::Pair::impaired(
                            1500,
                            4 << 20,
                            0.01,
                            std::time::Duration::from_millis(5),
                        );
                        p.bulk(smol_lossy)
                            .map(|secs| smol_lossy as f64 * 8.0 / secs / 1e6)
                    }) as Measure),
                ));
            }
            systems.push((
                "kernel",
                kernel::Veth::relayed(impaired(), cc)
                    .map(|v| {
                        let exe = o.exe.clone();
                        Box::new(move || {
                            v.bulk(&exe, lossy_bytes)
                                .map(|secs| lossy_bytes as f64 * 8.0 / secs / 1e6)
                        }) as Measure
                    })
                    .map_err(|e| format!("TAPs joined by the relay unavailable: {e}")),
            ));
            cases.push(Case {
                name,
                unit: "Mbit/s goodput",
                systems,
            });
        }
    }
    cases.push(Case {
        name: "conn_setup",
        unit: "connections/s",
        systems: vec![
            (
                "usnet",
                Ok(Box::new(move || Ok(usn::conn_rate(conn_n))) as Measure),
            ),
            (
                "smoltcp",
                Ok(Box::new(move || smol::Pair::new(1500, 4096).conn_rate(conn_n)) as Measure),
            ),
            (
                "kernel",
                Ok(Box::new(move || kernel::conn_rate_loopback(conn_n)) as Measure),
            ),
        ],
    });

    let idle_n: usize = if o.quick { 2_000 } else { 10_000 };
    cases.push(Case {
        name: "idle_conn_memory",
        unit: "bytes/socket",
        systems: vec![
            (
                "usnet",
                Ok(Box::new(move || usn::idle_socket_bytes(idle_n)) as Measure),
            ),
            (
                "smoltcp",
                Ok(Box::new(|| Ok(smol::idle_socket_bytes())) as Measure),
            ),
            (
                "kernel",
                Ok(Box::new(move || kernel::idle_socket_bytes(idle_n)) as Measure),
            ),
        ],
    });

    let mut out_cases = Vec::new();
    for mut case in cases {
        if o.only.as_deref().is_some_and(|f| !case.name.contains(f)) {
            continue;
        }
        let mut results: Vec<(&str, Outcome)> = case
            .systems
            .iter()
            .map(|(n, m)| {
                (
                    *n,
                    match m {
                        Ok(_) => Ok(Vec::new()),
                        Err(e) => Err(e.clone()),
                    },
                )
            })
            .collect();
        // Alternate: run 1 of every system, then run 2, ...
        for r in 0..runs {
            for (i, (name, m)) in case.systems.iter_mut().enumerate() {
                let Ok(m) = m else { continue };
                if results[i].1.is_err() {
                    continue;
                }
                eprint!("\r{:<24} run {}/{runs}  {name:<8}   ", case.name, r + 1);
                let _ = std::io::stderr().flush();
                match m() {
                    Ok(x) => {
                        if let Ok(v) = &mut results[i].1 {
                            v.push(x);
                        }
                    }
                    Err(e) => results[i].1 = Err(e),
                }
            }
        }
        eprintln!();
        let mut c = json!({"name": case.name, "unit": case.unit});
        let mut medians = std::collections::HashMap::new();
        for (name, r) in &results {
            match r {
                Ok(v) if !v.is_empty() => {
                    let s = stats(v);
                    medians.insert(*name, s["median"].as_f64().unwrap_or(0.0));
                    c[*name] = s;
                }
                Ok(_) => c[*name] = Value::Null,
                Err(e) => {
                    c[*name] = Value::Null;
                    c[format!("note_{name}")] = json!(e);
                }
            }
        }
        let notes: Vec<String> = ["usnet", "smoltcp", "kernel"]
            .iter()
            .filter_map(|sys| {
                c[format!("note_{sys}")]
                    .as_str()
                    .map(|n| format!("{sys}: {n}"))
            })
            .collect();
        if !notes.is_empty() {
            c["note"] = json!(notes.join("; "));
        }
        for peer in ["smoltcp", "kernel"] {
            let key = format!("ratio_usnet_{peer}");
            c[key] = match (medians.get("usnet"), medians.get(peer)) {
                (Some(u), Some(p)) if *p > 0.0 => json!(round(u / p)),
                _ => Value::Null,
            };
        }
        out_cases.push(c);
    }
    if o.only.as_deref().is_none_or(|f| "limit".contains(f)) {
        let mem = memcpy_gbytes();
        let bound = mem * 8.0 / 2.0;
        let us = out_cases
            .iter()
            .find(|c| c["name"] == "bulk_mtu1500")
            .and_then(|c| c["usnet"]["median"].as_f64());
        out_cases.push(json!({
            "name": "limit",
            "unit": "Gbit/s",
            "memcpy_gbit_per_s": round(mem * 8.0),
            "two_copies_bound_gbit_per_s": round(bound),
            "usnet_bulk_fraction_of_bound": us.map(|u| round(u / bound)),
        }));
    }
    json!({"cases": out_cases})
}

/// The table of medians (min–max) and ratios, for people.
pub fn table(v: &Value) -> String {
    let mut s = format!(
        "{:<22} {:<15} {:>26} {:>26} {:>26} {:>8} {:>8}\n",
        "case", "unit", "usnet", "smoltcp", "kernel", "/smol", "/kernel"
    );
    let cell = |x: &Value| -> String {
        if x.is_null() {
            "-".into()
        } else {
            format!("{} ({}–{})", x["median"], x["min"], x["max"])
        }
    };
    let ratio = |x: &Value| {
        if x.is_null() {
            "-".to_string()
        } else {
            x.to_string()
        }
    };
    for c in v["cases"].as_array().into_iter().flatten() {
        if c["name"] == "limit" {
            s += &format!(
                "limit: memcpy {} Gbit/s; two copies per byte bound {} Gbit/s; usnet bulk at {} of it\n",
                c["memcpy_gbit_per_s"], c["two_copies_bound_gbit_per_s"], c["usnet_bulk_fraction_of_bound"]
            );
            continue;
        }
        s += &format!(
            "{:<22} {:<15} {:>26} {:>26} {:>26} {:>8} {:>8}\n",
            c["name"].as_str().unwrap_or(""),
            c["unit"].as_str().unwrap_or(""),
            cell(&c["usnet"]),
            cell(&c["smoltcp"]),
            cell(&c["kernel"]),
            ratio(&c["ratio_usnet_smoltcp"]),
            ratio(&c["ratio_usnet_kernel"]),
        );
        for sys in ["usnet", "smoltcp", "kernel"] {
            if let Some(n) = c[format!("note_{sys}")].as_str() {
                s += &format!("    {sys}: {n}\n");
            }
        }
    }
    s
}
