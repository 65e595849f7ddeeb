//! Tunables under their Linux names (`net.core.*`, `net.ipv4.*`), with Linux's defaults.
//!
//! ```
//! let s = usnet::sysctl::Sysctl::default();
//! assert_eq!(s.get("net.core.dev_weight"), Some(64));
//! s.set("net.core.dev_weight", 32).unwrap();
//! assert_eq!(s.dev_weight(), 32);
//! assert!(s.set("net.core.no_such_knob", 1).is_err());
//! ```

use std::io;
use std::sync::atomic::{AtomicI64, Ordering};

macro_rules! sysctls {
    ($( $(#[$doc:meta])* $field:ident = $name:literal, $default:expr, $min:expr, $max:expr; )*) => {
        /// The stack's sysctl table. Each knob is read with its accessor on the hot path
        /// and by name with [`Sysctl::get`] / [`Sysctl::set`].
        #[derive(Debug)]
        pub struct Sysctl {
            $( $field: AtomicI64, )*
        }

        impl Default for Sysctl {
            fn default() -> Self {
                Sysctl { $( $field: AtomicI64::new($default), )* }
            }
        }

        impl Sysctl {
            $(
                $(#[$doc])*
                #[inline]
                pub fn $field(&self) -> i64 {
                    self.$field.load(Ordering::Relaxed)
                }
            )*

            /// Every knob: (Linux name, current value).
            pub fn all(&self) -> Vec<(&'static str, i64)> {
                vec![ $( ($name, self.$field()), )* ]
            }

            /// Read a knob by its Linux name.
            pub fn get(&self, name: &str) -> Option<i64> {
                match name {
                    $( $name => Some(self.$field()), )*
                    _ => None,
                }
            }

            /// Set a knob by its Linux name. `NotFound` for an unknown name,
            /// `InvalidInput` for a value outside the knob's range.
            pub fn set(&self, name: &str, value: i64) -> io::Result<()> {
                match name {
                    $( $name => {
                        if !($min..=$max).contains(&value) {
                            return Err(io::Error::new(io::ErrorKind::InvalidInput,
                                format!("{}: {} is outside {}..={}", name, value, $min, $max)));
                        }
                        self.$field.store(value, Ordering::Relaxed);
                        Ok(())
                    } )*
                    _ => Err(io::Error::new(io::ErrorKind::NotFound,
                        format!("sysctl: cannot stat {}: No such file or directory", name))),
                }
            }
        }
    };
}

sysctls! {
    /// `net.ipv4.ip_forward`: forward packets between interfaces (0).
    ip_forward = "net.ipv4.ip_forward", 0, 0, 1;
    /// `net.ipv4.ip_default_ttl`: TTL of locally generated packets (64).
    ip_default_ttl = "net.ipv4.ip_default_ttl", 64, 1, 255;
    /// `net.ipv4.ip_no_pmtu_disc`: 0 = path MTU discovery on (DF set).
    ip_no_pmtu_disc = "net.ipv4.ip_no_pmtu_disc", 0, 0, 3;
    /// `net.ipv4.ip_local_port_range` lower bound (32768).
    ip_local_port_range_min = "net.ipv4.ip_local_port_range_min", 32768, 1, 65535;
    /// `net.ipv4.ip_local_port_range` upper bound (60999).
    ip_local_port_range_max = "net.ipv4.ip_local_port_range_max", 60999, 1, 65535;
    /// `net.ipv4.icmp_ratelimit`: minimum ms between ICMP errors to one host (1000).
    icmp_ratelimit = "net.ipv4.icmp_ratelimit", 1000, 0, 1 << 30;
    /// `net.ipv4.icmp_ratemask`: ICMP types rate limited (0x1818: dest unreachable,
    /// source quench, time exceeded, parameter problem).
    icmp_ratemask = "net.ipv4.icmp_ratemask", 6168, 0, 1 << 19;
    /// `net.ipv4.icmp_msgs_per_sec`: global ICMP error budget per second (1000).
    icmp_msgs_per_sec = "net.ipv4.icmp_msgs_per_sec", 1000, 0, 1 << 30;
    /// `net.ipv4.icmp_msgs_burst`: global ICMP error burst (50).
    icmp_msgs_burst = "net.ipv4.icmp_msgs_burst", 50, 0, 1 << 30;
    /// `net.ipv4.icmp_echo_ignore_all` (0).
    icmp_echo_ignore_all = "net.ipv4.icmp_echo_ignore_all", 0, 0, 1;
    /// `net.ipv4.icmp_echo_ignore_broadcasts` (1).
    icmp_echo_ignore_broadcasts = "net.ipv4.icmp_echo_ignore_broadcasts", 1, 0, 1;
    /// `net.ipv4.route.min_pmtu`: smallest learned path MTU (552).
    route_min_pmtu = "net.ipv4.route.min_pmtu", 552, 68, 65535;
    /// `net.ipv4.route.mtu_expires`: seconds a learned path MTU lasts (600).
    route_mtu_expires = "net.ipv4.route.mtu_expires", 600, 0, 1 << 30;
    /// `net.ipv4.ipfrag_high_thresh`: reassembly memory limit (4 MiB).
    ipfrag_high_thresh = "net.ipv4.ipfrag_high_thresh", 4 * 1024 * 1024, 0, 1i64 << 40;
    /// `net.ipv4.ipfrag_low_thresh`: reassembly memory target after eviction (3 MiB).
    ipfrag_low_thresh = "net.ipv4.ipfrag_low_thresh", 3 * 1024 * 1024, 0, 1i64 << 40;
    /// `net.ipv4.ipfrag_time`: seconds a fragment queue lives (30).
    ipfrag_time = "net.ipv4.ipfrag_time", 30, 1, 1 << 20;
    /// `net.core.busy_read`: µs a blocking read busy-polls the device before sleeping
    /// (0: off, Linux's default).
    busy_read = "net.core.busy_read", 0, 0, 1 << 20;
    /// `net.core.rmem_default`: default receive buffer (212992).
    rmem_default = "net.core.rmem_default", 212_992, 256, 1i64 << 31;
    /// `net.core.wmem_default`: default send buffer (212992).
    wmem_default = "net.core.wmem_default", 212_992, 256, 1i64 << 31;
    /// `net.core.rmem_max`: largest SO_RCVBUF (212992).
    rmem_max = "net.core.rmem_max", 212_992, 256, 1i64 << 31;
    /// `net.core.wmem_max`: largest SO_SNDBUF (212992).
    wmem_max = "net.core.wmem_max", 212_992, 256, 1i64 << 31;
    /// `net.ipv4.tcp_wmem` minimum (4096): what Linux shrinks a send buffer to under TCP
    /// memory pressure, which usnet does not model (kept for `sysctl -a`).
    tcp_wmem_min = "net.ipv4.tcp_wmem_min", 4096, 1, 1i64 << 31;
    /// `net.ipv4.tcp_wmem` default send buffer (16384).
    tcp_wmem_default = "net.ipv4.tcp_wmem_default", 16384, 1, 1i64 << 31;
    /// `net.ipv4.tcp_wmem` maximum for autotuning (4194304).
    tcp_wmem_max = "net.ipv4.tcp_wmem_max", 4_194_304, 1, 1i64 << 31;
    /// `net.ipv4.tcp_rmem` minimum (4096): as `tcp_wmem_min`, only under memory
    /// pressure, which usnet does not model (kept for `sysctl -a`).
    tcp_rmem_min = "net.ipv4.tcp_rmem_min", 4096, 1, 1i64 << 31;
    /// `net.ipv4.tcp_rmem` default receive buffer (131072).
    tcp_rmem_default = "net.ipv4.tcp_rmem_default", 131_072, 1, 1i64 << 31;
    /// `net.ipv4.tcp_rmem` maximum for autotuning (6291456).
    tcp_rmem_max = "net.ipv4.tcp_rmem_max", 6_291_456, 1, 1i64 << 31;
    /// `net.ipv4.tcp_limit_output_bytes`: TCP small queues limit (1 MiB).
    tcp_limit_output_bytes = "net.ipv4.tcp_limit_output_bytes", 1_048_576, 0, 1i64 << 31;
    /// `net.ipv4.tcp_pingpong_thresh` (1): replies sent within the ATO of a request
    /// before a connection counts as interactive and delays its ACKs to ride on them.
    tcp_pingpong_thresh = "net.ipv4.tcp_pingpong_thresh", 1, 1, 255;
    /// `net.ipv4.tcp_autocorking` (1).
    tcp_autocorking = "net.ipv4.tcp_autocorking", 1, 0, 1;
    /// `net.ipv4.tcp_syn_retries` (6).
    tcp_syn_retries = "net.ipv4.tcp_syn_retries", 6, 1, 127;
    /// `net.ipv4.tcp_synack_retries` (5).
    tcp_synack_retries = "net.ipv4.tcp_synack_retries", 5, 0, 255;
    /// `net.ipv4.tcp_retries1` (3).
    tcp_retries1 = "net.ipv4.tcp_retries1", 3, 0, 255;
    /// `net.ipv4.tcp_retries2` (15).
    tcp_retries2 = "net.ipv4.tcp_retries2", 15, 0, 255;
    /// `net.ipv4.tcp_fin_timeout` seconds (60).
    tcp_fin_timeout = "net.ipv4.tcp_fin_timeout", 60, 1, 1 << 20;
    /// `net.ipv4.tcp_keepalive_time` seconds (7200).
    tcp_keepalive_time = "net.ipv4.tcp_keepalive_time", 7200, 1, 32767;
    /// `net.ipv4.tcp_keepalive_intvl` seconds (75).
    tcp_keepalive_intvl = "net.ipv4.tcp_keepalive_intvl", 75, 1, 32767;
    /// `net.ipv4.tcp_keepalive_probes` (9).
    tcp_keepalive_probes = "net.ipv4.tcp_keepalive_probes", 9, 1, 127;
    /// `net.ipv4.tcp_syncookies` (1: when the SYN queue overflows).
    tcp_syncookies = "net.ipv4.tcp_syncookies", 1, 0, 2;
    /// `net.ipv4.tcp_max_syn_backlog` (1024).
    tcp_max_syn_backlog = "net.ipv4.tcp_max_syn_backlog", 1024, 1, 1 << 24;
    /// `net.core.somaxconn` (4096).
    somaxconn = "net.core.somaxconn", 4096, 1, 1 << 24;
    /// `net.ipv4.tcp_timestamps` (1).
    tcp_timestamps = "net.ipv4.tcp_timestamps", 1, 0, 2;
    /// `net.ipv4.tcp_sack` (1).
    tcp_sack = "net.ipv4.tcp_sack", 1, 0, 1;
    /// `net.ipv4.tcp_window_scaling` (1).
    tcp_window_scaling = "net.ipv4.tcp_window_scaling", 1, 0, 1;
    /// `net.ipv4.tcp_slow_start_after_idle` (1).
    tcp_slow_start_after_idle = "net.ipv4.tcp_slow_start_after_idle", 1, 0, 1;
    /// `net.ipv4.tcp_moderate_rcvbuf` (1: receive-buffer autotuning).
    tcp_moderate_rcvbuf = "net.ipv4.tcp_moderate_rcvbuf", 1, 0, 1;
    /// `net.ipv4.tcp_min_tso_segs` (2).
    tcp_min_tso_segs = "net.ipv4.tcp_min_tso_segs", 2, 1, 255;
    /// `net.ipv4.tcp_pacing_ss_ratio`: pacing rate in slow start, % of cwnd/srtt (200).
    tcp_pacing_ss_ratio = "net.ipv4.tcp_pacing_ss_ratio", 200, 0, 1000;
    /// `net.ipv4.tcp_pacing_ca_ratio`: pacing rate in congestion avoidance (120).
    tcp_pacing_ca_ratio = "net.ipv4.tcp_pacing_ca_ratio", 120, 0, 1000;
    /// `net.ipv4.tcp_tso_rtt_log`: below 2^9 µs of min RTT, TSO skbs grow towards the
    /// GSO maximum (9).
    tcp_tso_rtt_log = "net.ipv4.tcp_tso_rtt_log", 9, 0, 32;
    /// `net.ipv4.tcp_tso_win_divisor` (3).
    tcp_tso_win_divisor = "net.ipv4.tcp_tso_win_divisor", 3, 0, 255;
    /// `net.ipv4.tcp_adv_win_scale` (1).
    tcp_adv_win_scale = "net.ipv4.tcp_adv_win_scale", 1, -31, 31;
    /// `net.ipv4.tcp_challenge_ack_limit` per second (1000).
    tcp_challenge_ack_limit = "net.ipv4.tcp_challenge_ack_limit", 1000, 0, 1i64 << 31;
    /// `net.ipv4.tcp_invalid_ratelimit` ms (500).
    tcp_invalid_ratelimit = "net.ipv4.tcp_invalid_ratelimit", 500, 0, 1i64 << 31;
    /// `net.ipv4.tcp_reordering` initial reordering degree (3).
    tcp_reordering = "net.ipv4.tcp_reordering", 3, 1, 300;
    /// `net.ipv4.tcp_abort_on_overflow` (0).
    tcp_abort_on_overflow = "net.ipv4.tcp_abort_on_overflow", 0, 0, 1;
    /// `net.ipv4.tcp_mtu_probing` (0: off, 1: after a black hole, 2: always).
    tcp_mtu_probing = "net.ipv4.tcp_mtu_probing", 0, 0, 2;
    /// `net.ipv4.tcp_base_mss` (1024).
    tcp_base_mss = "net.ipv4.tcp_base_mss", 1024, 48, 65535;
    /// `net.ipv4.tcp_probe_threshold`: stop probing when the MTU search interval is
    /// narrower than this (8 bytes).
    tcp_probe_threshold = "net.ipv4.tcp_probe_threshold", 8, 0, 65535;
    /// `net.ipv4.tcp_probe_interval`: seconds before probing starts over (600).
    tcp_probe_interval = "net.ipv4.tcp_probe_interval", 600, 1, 1i64 << 31;
    /// `net.ipv4.tcp_mtu_probe_floor`: the smallest MSS black-hole detection falls to
    /// (48).
    tcp_mtu_probe_floor = "net.ipv4.tcp_mtu_probe_floor", 48, 48, 65535;
    /// `net.ipv4.tcp_notsent_lowat` (unlimited).
    tcp_notsent_lowat = "net.ipv4.tcp_notsent_lowat", 4_294_967_295, 0, 1i64 << 32;
    /// `net.ipv4.tcp_recovery` (1: RACK loss detection).
    tcp_recovery = "net.ipv4.tcp_recovery", 1, 0, 7;
    /// `net.ipv4.tcp_early_retrans` (3: tail loss probes).
    tcp_early_retrans = "net.ipv4.tcp_early_retrans", 3, 0, 4;
    /// `net.ipv4.tcp_dsack` (1).
    tcp_dsack = "net.ipv4.tcp_dsack", 1, 0, 1;
    /// `net.core.dev_weight`: NAPI poll weight per device (64).
    dev_weight = "net.core.dev_weight", 64, 1, 1 << 20;
    /// `net.core.dev_weight_tx_bias`: multiplier giving `dev_tx_weight` (1).
    dev_weight_tx_bias = "net.core.dev_weight_tx_bias", 1, 1, 1 << 20;
    /// `net.core.netdev_budget`: packets per `net_rx_action` run (300).
    netdev_budget = "net.core.netdev_budget", 300, 1, 1 << 30;
    /// `net.core.netdev_budget_usecs`: time limit of one `net_rx_action` run (2000 µs).
    netdev_budget_usecs = "net.core.netdev_budget_usecs", 2000, 1, 1 << 30;
    /// `net.core.netdev_max_backlog`: per-CPU input backlog limit (1000).
    netdev_max_backlog = "net.core.netdev_max_backlog", 1000, 1, 1 << 30;
}

impl Sysctl {
    /// `dev_tx_weight` = `dev_weight * dev_weight_tx_bias`: the qdisc quota per run.
    pub fn dev_tx_weight(&self) -> i64 {
        self.dev_weight() * self.dev_weight_tx_bias()
    }
}
