//! `TCP_INFO` (Linux's `struct tcp_info`) and the `ss -ti` view of a connection.

use std::fmt;

use super::{CaState, Tcb, TcpState};
use crate::time::Instant;

/// Connection information, as `getsockopt(TCP_INFO)` reports it (times in µs, as
/// Linux).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpInfo {
    /// `tcpi_state`.
    pub state: TcpState,
    /// `tcpi_ca_state`.
    pub ca_state: CaState,
    /// `tcpi_retransmits`: consecutive RTOs.
    pub retransmits: u32,
    /// `tcpi_probes`.
    pub probes: u32,
    /// `tcpi_backoff`.
    pub backoff: u32,
    /// Options: timestamps, SACK, window scaling.
    pub options: (bool, bool, bool),
    /// `tcpi_snd_wscale`, `tcpi_rcv_wscale`.
    pub wscale: (u8, u8),
    /// `tcpi_rto` (µs).
    pub rto_us: u64,
    /// `tcpi_ato` (µs).
    pub ato_us: u64,
    /// `tcpi_snd_mss`.
    pub snd_mss: u32,
    /// `tcpi_rcv_mss`.
    pub rcv_mss: u32,
    /// `tcpi_unacked` (packets out).
    pub unacked: u32,
    /// `tcpi_sacked`.
    pub sacked: u32,
    /// `tcpi_lost`.
    pub lost: u32,
    /// `tcpi_retrans`.
    pub retrans: u32,
    /// `tcpi_last_data_sent` (ms ago).
    pub last_data_sent_ms: u64,
    /// `tcpi_last_data_recv` (ms ago).
    pub last_data_recv_ms: u64,
    /// `tcpi_pmtu`.
    pub pmtu: u32,
    /// `tcpi_rcv_ssthresh`.
    pub rcv_ssthresh: u32,
    /// `tcpi_rtt` (µs).
    pub rtt_us: u32,
    /// `tcpi_rttvar` (µs).
    pub rttvar_us: u32,
    /// `tcpi_snd_ssthresh`.
    pub snd_ssthresh: u32,
    /// `tcpi_snd_cwnd`.
    pub snd_cwnd: u32,
    /// `tcpi_advmss`.
    pub advmss: u32,
    /// `tcpi_reordering`.
    pub reordering: u32,
    /// `tcpi_rcv_space`.
    pub rcv_space: u32,
    /// `tcpi_rcv_rtt`: the receiver's RTT estimate in µs (0: none).
    pub rcv_rtt_us: u32,
    /// `tcpi_total_retrans`.
    pub total_retrans: u32,
    /// `tcpi_bytes_acked`.
    pub bytes_acked: u64,
    /// `tcpi_bytes_received`.
    pub bytes_received: u64,
    /// `tcpi_bytes_sent`.
    pub bytes_sent: u64,
    /// `tcpi_bytes_retrans`.
    pub bytes_retrans: u64,
    /// `tcpi_segs_out`.
    pub segs_out: u64,
    /// `tcpi_segs_in`.
    pub segs_in: u64,
    /// `tcpi_data_segs_out`.
    pub data_segs_out: u64,
    /// `tcpi_data_segs_in`.
    pub data_segs_in: u64,
    /// `tcpi_delivered`.
    pub delivered: u32,
    /// `tcpi_min_rtt` (µs).
    pub min_rtt_us: u32,
    /// `tcpi_snd_wnd`.
    pub snd_wnd: u32,
    /// `tcpi_rcv_wnd`.
    pub rcv_wnd: u32,
    /// `tcpi_notsent_bytes`.
    pub notsent_bytes: u32,
    /// Send buffer.
    pub sndbuf: usize,
    /// Receive buffer.
    pub rcvbuf: usize,
    /// Congestion control name.
    pub cc: &'static str,
    /// `sk_pacing_rate` in bytes per second (`tcpi_pacing_rate`; 0: not pacing).
    pub pacing_rate: u64,
    /// The last delivery-rate sample kept, bytes per second (`tcpi_delivery_rate`).
    pub delivery_rate: u64,
    /// Whether that sample was application-limited (`tcpi_delivery_rate_app_limited`).
    pub delivery_rate_app_limited: bool,
    /// The algorithm's own diagnostics as `ss -i` prints them (BBR:
    /// `bbr:(bw:…,mrtt:…,pacing_gain:…,cwnd_gain:…)`; empty for others).
    pub cc_info: String,
}

impl TcpInfo {
    /// Snapshot `t` at `now`.
    pub fn of(t: &Tcb, now: Instant) -> TcpInfo {
        TcpInfo {
            state: t.state,
            ca_state: t.ca_state,
            retransmits: t.retransmits,
            probes: t.probes_out,
            backoff: t.backoff,
            options: (t.tstamp_ok, t.sack_ok, t.wscale_ok),
            wscale: (t.snd_wscale, t.rcv_wscale),
            rto_us: t.rto.as_micros() as u64,
            ato_us: t.ack.ato.as_micros() as u64,
            snd_mss: t.mss_cache,
            rcv_mss: t.ack.rcv_mss,
            unacked: t.packets_out,
            sacked: t.sacked_out,
            lost: t.lost_out,
            retrans: t.retrans_out,
            last_data_sent_ms: now.saturating_duration_since(t.lsndtime).as_millis() as u64,
            last_data_recv_ms: now.saturating_duration_since(t.ack.lrcvtime).as_millis() as u64,
            pmtu: t.pmtu_cookie,
            rcv_ssthresh: t.rcv_ssthresh,
            rtt_us: t.srtt_us >> 3,
            rttvar_us: t.mdev_us >> 2,
            snd_ssthresh: t.snd_ssthresh,
            snd_cwnd: t.snd_cwnd,
            advmss: t.advmss,
            reordering: t.reordering,
            rcv_space: t.rcvq_space.0,
            rcv_rtt_us: t.rcv_rtt_us >> 3,
            total_retrans: t.stats.total_retrans,
            bytes_acked: t.stats.bytes_acked,
            bytes_received: t.stats.bytes_received,
            bytes_sent: t.stats.bytes_sent,
            bytes_retrans: t.stats.bytes_retrans,
            segs_out: t.stats.segs_out,
            segs_in: t.stats.segs_in,
            data_segs_out: t.stats.data_segs_out,
            data_segs_in: t.stats.data_segs_in,
            delivered: t.stats.delivered,
            min_rtt_us: if t.min_rtt_us == u32::MAX {
                0
            } else {
                t.min_rtt_us
            },
            snd_wnd: t.snd_wnd,
            rcv_wnd: t.rcv_wnd,
            notsent_bytes: t.notsent_bytes(),
            sndbuf: t.sndbuf,
            rcvbuf: t.rcvbuf,
            cc: t.cc.name(),
            pacing_rate: t.pacing_rate,
            delivery_rate: t.rate.delivery_rate(t.mss_cache),
            delivery_rate_app_limited: t.rate.rate_app_limited,
            cc_info: cc_info(t),
        }
    }
}

/// A rate in bits per second the way `ss` prints it (`95.2Mbps`).
pub fn fmt_bps(bytes_per_sec: u64) -> String {
    let bps = bytes_per_sec as f64 * 8.0;
    if bps >= 1e9 {
        format!("{:.1}Gbps", bps / 1e9)
    } else if bps >= 1e6 {
        format!("{:.1}Mbps", bps / 1e6)
    } else if bps >= 1e3 {
        format!("{:.1}Kbps", bps / 1e3)
    } else {
        format!("{bps:.0}bps")
    }
}

/// `ss -i`'s view of `INET_DIAG_BBRINFO`, from the algorithm's `info()`.
fn cc_info(t: &Tcb) -> String {
    if t.cc.name() != "bbr" {
        return String::new();
    }
    let kv = t.cc.info();
    let get = |k: &str| {
        kv.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let pps: u64 = get("bw_pkts_per_sec").parse().unwrap_or(0);
    format!(
        "bbr:(bw:{},mrtt:{},pacing_gain:{},cwnd_gain:{})",
        fmt_bps(pps.saturating_mul(u64::from(t.mss_cache))),
        get("mrtt").trim_end_matches('0').trim_end_matches('.'),
        get("pacing_gain"),
        get("cwnd_gain")
    )
}

fn ms(us: u64) -> String {
    let v = us as f64 / 1000.0;
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl fmt::Display for TcpInfo {
    /// The second line of `ss -ti`: ` cubic wscale:7,7 rto:204 rtt:0.05/0.025 ato:40
    /// mss:1448 ... cwnd:10 bytes_sent:... segs_out:... send ... delivered:...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, " {}", self.cc)?;
        if self.options.2 {
            write!(f, " wscale:{},{}", self.wscale.0, self.wscale.1)?;
        }
        write!(
            f,
            " rto:{} rtt:{}/{} ato:{} mss:{} pmtu:{} rcvmss:{} advmss:{} cwnd:{}",
            self.rto_us / 1000,
            ms(u64::from(self.rtt_us)),
            ms(u64::from(self.rttvar_us)),
            self.ato_us / 1000,
            self.snd_mss,
            self.pmtu,
            self.rcv_mss,
            self.advmss,
            self.snd_cwnd
        )?;
        if self.snd_ssthresh < u32::MAX >> 1 {
            write!(f, " ssthresh:{}", self.snd_ssthresh)?;
        }
        write!(
            f,
            " bytes_sent:{} bytes_retrans:{} bytes_acked:{} bytes_received:{} segs_out:{} segs_in:{} data_segs_out:{} data_segs_in:{}",
            self.bytes_sent,
            self.bytes_retrans,
            self.bytes_acked,
            self.bytes_received,
            self.segs_out,
            self.segs_in,
            self.data_segs_out,
            self.data_segs_in
        )?;
        if !self.cc_info.is_empty() {
            write!(f, " {}", self.cc_info)?;
        }
        if self.pacing_rate > 0 {
            write!(f, " pacing_rate {}", fmt_bps(self.pacing_rate))?;
        }
        if self.delivery_rate > 0 {
            write!(f, " delivery_rate {}", fmt_bps(self.delivery_rate))?;
        }
        if self.delivery_rate_app_limited {
            write!(f, " app_limited")?;
        }
        if self.unacked > 0 {
            write!(f, " unacked:{}", self.unacked)?;
        }
        if self.retrans > 0 || self.total_retrans > 0 {
            write!(f, " retrans:{}/{}", self.retrans, self.total_retrans)?;
        }
        if self.lost > 0 {
            write!(f, " lost:{}", self.lost)?;
        }
        if self.rcv_rtt_us > 0 {
            write!(f, " rcv_rtt:{}", ms(u64::from(self.rcv_rtt_us)))?;
        }
        write!(
            f,
            " rcv_space:{} rcv_ssthresh:{} minrtt:{} snd_wnd:{}",
            self.rcv_space,
            self.rcv_ssthresh,
            ms(u64::from(self.min_rtt_us)),
            self.snd_wnd
        )
    }
}
