//! TCP (Linux's `net/ipv4/tcp*.c`).
//!
//! * [`output`]: `tcp_sendmsg` copying user data into skbs on the write queue, `tcp_push`
//!   and `tcp_write_xmit` (cwnd test, receive-window test, Nagle, TSO split, TCP small
//!   queues), `tcp_transmit_skb` (clone, header, options, checksum, `ip_queue_xmit`) —
//!   seed 000 §三, seed 002 §1, seed 003, seed 004 §3.2;
//! * [`input`]: segment acceptance (RFC 9293 with RFC 5961's checks), ACK processing, RTT
//!   estimation (RFC 6298), delayed ACKs, the receive window, loss recovery;
//! * [`timer`]: retransmission, zero-window probe, delayed ACK, keepalive, TIME_WAIT;
//! * [`minisocks`]: the SYN queue, the accept queue, SYN cookies, TIME_WAIT entries;
//! * [`cong`]: congestion control behind Linux's `tcp_congestion_ops` (Reno, CUBIC, BBR);
//! * [`rate`]: delivery-rate sampling for BBR and `tcpi_delivery_rate`.
//!
//! Concurrency follows the kernel's socket lock (`lock_sock` / `release_sock`): an
//! application thread that is inside a call *owns* the socket; segments that arrive
//! meanwhile from softirq go to the socket's backlog and are processed, in order, when
//! the owner releases it. Softirq never waits for an application.

pub mod cong;
pub use sockopt::SockOpt;
mod hashtables;
pub mod info;
pub mod input;
pub mod minisocks;
pub mod mtup;
pub mod output;
pub mod rate;
pub mod recovery;
pub mod recvmsg;
pub mod sendmsg;
pub mod seq;
pub mod sock_lock;
pub mod sockopt;
pub use sock_lock::SockGuard;
pub mod timer;

use std::collections::VecDeque;

use crate::hash::HashMap;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::BytesMut;
use parking_lot::{Condvar, Mutex, RwLock};

use crate::ipv4::output::IpSockOpts;
use crate::ipv4::route::Dst;
use crate::skb::{Skb, SkbOwner};
use crate::sock::{errno, os_err, WaitQueue};
use crate::time::Instant;
use crate::{Stack, WeakStack};

use hashtables::{bhash_add, bind_conflict, pick_port};
pub(crate) use hashtables::{bhash_add_child, bhash_remove};
pub use hashtables::{init, ListenEntry, TcpTables};
pub use seq::{after, before, between};

/// Initial retransmission timeout (RFC 6298 § 2.1: 1 s).
pub const TCP_TIMEOUT_INIT: Duration = Duration::from_secs(1);
/// Smallest RTO (`TCP_RTO_MIN`, 200 ms).
pub const TCP_RTO_MIN: Duration = Duration::from_millis(200);
/// Largest RTO (`TCP_RTO_MAX`, 120 s).
pub const TCP_RTO_MAX: Duration = Duration::from_secs(120);
/// Smallest delayed-ACK timeout (`TCP_DELACK_MIN`, 40 ms).
pub const TCP_DELACK_MIN: Duration = Duration::from_millis(40);
/// Largest delayed-ACK timeout (`TCP_DELACK_MAX`, 200 ms).
pub const TCP_DELACK_MAX: Duration = Duration::from_millis(200);
/// Smallest ATO (`TCP_ATO_MIN`, 40 ms).
pub const TCP_ATO_MIN: Duration = Duration::from_millis(40);
/// How long TIME_WAIT lasts (`TCP_TIMEWAIT_LEN`, 60 s).
pub const TCP_TIMEWAIT_LEN: Duration = Duration::from_secs(60);
/// Initial congestion window (`TCP_INIT_CWND`, RFC 6928).
pub const TCP_INIT_CWND: u32 = 10;
/// Default MSS when the peer sends none (`TCP_MSS_DEFAULT`, RFC 9293).
pub const TCP_MSS_DEFAULT: u32 = 536;
/// Smallest MSS we use (`TCP_MIN_MSS`).
pub const TCP_MIN_MSS: u32 = 88;
/// Most quick ACKs at a time (`TCP_MAX_QUICKACKS`).
pub const TCP_MAX_QUICKACKS: u32 = 16;
/// Headroom reserved in every TCP skb for TCP + IP + Ethernet headers
/// (`MAX_TCP_HEADER`).
pub const MAX_TCP_HEADER: usize = 160;
/// Largest window before scaling.
pub const TCP_MAX_WINDOW: u32 = 65535;
/// Largest window scale shift (RFC 7323 § 2.3).
pub const TCP_MAX_WSCALE: u8 = 14;

/// TCP states with Linux's numbering (as `ss` and `/proc/net/tcp` show them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TcpState {
    /// Data flows both ways.
    Established = 1,
    /// SYN sent, waiting for SYN-ACK.
    SynSent = 2,
    /// SYN received, SYN-ACK sent.
    SynRecv = 3,
    /// FIN sent, waiting for its ACK.
    FinWait1 = 4,
    /// Our FIN acknowledged, waiting for the peer's.
    FinWait2 = 5,
    /// Both FINs done; waiting out old duplicates.
    TimeWait = 6,
    /// No connection.
    Close = 7,
    /// The peer closed; we may still send.
    CloseWait = 8,
    /// We closed after the peer; waiting for the ACK of our FIN.
    LastAck = 9,
    /// Accepting connections.
    Listen = 10,
    /// Both sides closed at once; waiting for the ACK of our FIN.
    Closing = 11,
}

impl TcpState {
    /// The name `ss` prints.
    pub fn ss_name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTAB",
            TcpState::SynSent => "SYN-SENT",
            TcpState::SynRecv => "SYN-RECV",
            TcpState::FinWait1 => "FIN-WAIT-1",
            TcpState::FinWait2 => "FIN-WAIT-2",
            TcpState::TimeWait => "TIME-WAIT",
            TcpState::Close => "UNCONN",
            TcpState::CloseWait => "CLOSE-WAIT",
            TcpState::LastAck => "LAST-ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
        }
    }
}

/// Congestion-avoidance state (Linux's `tcp_ca_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CaState {
    /// Nothing bad seen.
    #[default]
    Open,
    /// Duplicate ACKs or SACKs seen.
    Disorder,
    /// cwnd reduced for a local congestion signal (qdisc drop, ECN).
    Cwr,
    /// Fast recovery after a fast retransmit.
    Recovery,
    /// RTO recovery.
    Loss,
}

/// Shutdown bits (`RCV_SHUTDOWN`, `SEND_SHUTDOWN`).
pub mod shutdown {
    /// No more receives.
    pub const RCV: u8 = 1;
    /// No more sends.
    pub const SEND: u8 = 2;
}

/// Nagle bits (`TCP_NAGLE_OFF`, `TCP_NAGLE_CORK`, `TCP_NAGLE_PUSH`).
pub mod nagle {
    /// `TCP_NODELAY`.
    pub const OFF: u8 = 1;
    /// `TCP_CORK`.
    pub const CORK: u8 = 2;
    /// Push the pending segment now (one shot).
    pub const PUSH: u8 = 4;
}

/// Pending-ACK bits (Linux's `inet_csk_ack_state_t`).
pub mod ack {
    /// An ACK is scheduled.
    pub const SCHED: u8 = 1;
    /// The delayed-ACK timer is armed.
    pub const TIMER: u8 = 2;
    /// Data was received while in pingpong (interactive) mode.
    pub const PUSHED: u8 = 4;
    /// A second PUSHED.
    pub const PUSHED2: u8 = 8;
    /// Send the ACK now.
    pub const NOW: u8 = 16;
}

/// Deferred work bits, run at `release_sock` when softirq found the socket owned
/// (Linux's `TCP_*_DEFERRED`).
pub mod deferred {
    /// The retransmit/probe timer fired.
    pub const WRITE_TIMER: u32 = 1;
    /// The delayed-ACK timer fired.
    pub const DELACK_TIMER: u32 = 2;
    /// TCP small queues: room freed, send more.
    pub const TSQ: u32 = 4;
    /// The path MTU dropped.
    pub const MTU_REDUCED: u32 = 8;
    /// The keepalive timer fired.
    pub const KEEPALIVE: u32 = 16;
}

/// Delayed-ACK and quick-ACK state (Linux's `icsk_ack`).
#[derive(Clone, Copy, Debug)]
pub struct AckState {
    /// [`ack`] bits.
    pub pending: u8,
    /// Quick ACKs left.
    pub quick: u32,
    /// Interactive (pingpong) count: replies sent within the ATO of received data. At
    /// `net.ipv4.tcp_pingpong_thresh` the connection is interactive and delays its
    /// ACKs to ride on the replies.
    pub pingpong: u8,
    /// Predicted inter-arrival time (ATO).
    pub ato: Duration,
    /// When the delayed ACK is due.
    pub timeout: Instant,
    /// When data last arrived.
    pub lrcvtime: Instant,
    /// Size of the last segment received.
    pub last_seg_size: u32,
    /// Estimated peer MSS (for "two full segments" and ATO decisions).
    pub rcv_mss: u32,
}

impl AckState {
    /// `inet_csk_in_pingpong_mode`.
    pub fn in_pingpong_mode(&self, thresh: u8) -> bool {
        self.pingpong >= thresh
    }

    /// `inet_csk_enter_pingpong_mode`.
    pub fn enter_pingpong_mode(&mut self, thresh: u8) {
        self.pingpong = thresh;
    }

    /// `inet_csk_exit_pingpong_mode`.
    pub fn exit_pingpong_mode(&mut self) {
        self.pingpong = 0;
    }

    /// `inet_csk_inc_pingpong_cnt`.
    pub fn inc_pingpong_cnt(&mut self) {
        self.pingpong = self.pingpong.saturating_add(1);
    }
}

/// `net.ipv4.tcp_pingpong_thresh` of `stack`.
pub(crate) fn pingpong_thresh(stack: &Stack) -> u8 {
    stack.sysctl.tcp_pingpong_thresh().clamp(1, 255) as u8
}

/// Counters for `TCP_INFO` and `ss -i`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpCounters {
    /// Bytes acknowledged by the peer (`tcpi_bytes_acked`).
    pub bytes_acked: u64,
    /// Bytes received in order (`tcpi_bytes_received`).
    pub bytes_received: u64,
    /// Bytes sent, retransmissions included (`tcpi_bytes_sent`).
    pub bytes_sent: u64,
    /// Bytes retransmitted (`tcpi_bytes_retrans`).
    pub bytes_retrans: u64,
    /// Segments sent (`tcpi_segs_out`).
    pub segs_out: u64,
    /// Segments received (`tcpi_segs_in`).
    pub segs_in: u64,
    /// Data segments sent.
    pub data_segs_out: u64,
    /// Data segments received.
    pub data_segs_in: u64,
    /// Segments retransmitted over the connection's life (`tcpi_total_retrans`).
    pub total_retrans: u32,
    /// Packets delivered (acked or sacked).
    pub delivered: u32,
    /// Duplicate segments received (DSACK-worthy).
    pub dup_segs_in: u32,
    /// Times the sender was limited by the receive window.
    pub rwnd_limited: u32,
}

/// The SYN side of a listening socket (the accept queue lives in
/// [`TcpSock::accept_q`], so softirq can append to it without the listener's lock).
pub struct ListenQueue {
    /// `backlog` from `listen()` (capped at `somaxconn`).
    pub max_ack_backlog: usize,
    /// Half-open connections (the SYN queue), by peer.
    pub syn_queue: HashMap<SocketAddrV4, minisocks::RequestSock>,
    /// Whether SYN cookies were sent because the SYN queue overflowed.
    pub cookies_sent: u64,
    /// When the SYN queue last overflowed into cookies (`tcp_synq_overflow`).
    pub last_overflow: Option<Instant>,
}

/// The TCP control block: `struct tcp_sock` with the `inet_connection_sock`, `inet_sock`
/// and `sock` fields it uses.
pub struct Tcb {
    /// Connection state.
    pub state: TcpState,
    /// Local address.
    pub local: SocketAddrV4,
    /// Remote address.
    pub remote: SocketAddrV4,

    // ----- send sequence space -----
    /// Oldest unacknowledged sequence number.
    pub snd_una: u32,
    /// Next sequence number to send.
    pub snd_nxt: u32,
    /// Send window (scaled).
    pub snd_wnd: u32,
    /// Sequence number of the segment that last updated the window.
    pub snd_wl1: u32,
    /// Largest window the peer ever offered.
    pub max_window: u32,
    /// End of data written by the application.
    pub write_seq: u32,
    /// Last sequence pushed (PSH).
    pub pushed_seq: u32,
    /// End of the last small segment sent (Minshall's Nagle variant).
    pub snd_sml: u32,
    /// Initial send sequence number.
    pub iss: u32,

    // ----- receive sequence space -----
    /// Next sequence number expected.
    pub rcv_nxt: u32,
    /// `rcv_nxt` when the window was last advertised.
    pub rcv_wup: u32,
    /// Receive window last advertised (scaled).
    pub rcv_wnd: u32,
    /// Head of data not yet read by the application.
    pub copied_seq: u32,
    /// Current window growth limit (`rcv_ssthresh`).
    pub rcv_ssthresh: u32,
    /// Largest window we will advertise.
    pub window_clamp: u32,
    /// Initial receive sequence number.
    pub irs: u32,

    // ----- options -----
    /// Effective MSS for sending (`mss_cache`): the path MTU less IP and TCP headers,
    /// including the timestamp option when negotiated (Linux's `tcp_header_len`).
    pub mss_cache: u32,
    /// Whether `mss_cache` was computed with the timestamp option.
    pub mss_with_ts: bool,
    /// MSS we advertise.
    pub advmss: u32,
    /// The peer's MSS (`rx_opt.mss_clamp`).
    pub mss_clamp: u32,
    /// Shift applied to windows the peer sends (`snd_wscale`).
    pub snd_wscale: u8,
    /// Shift applied to windows we send (`rcv_wscale`).
    pub rcv_wscale: u8,
    /// Window scaling negotiated.
    pub wscale_ok: bool,
    /// SACK negotiated.
    pub sack_ok: bool,
    /// Timestamps negotiated.
    pub tstamp_ok: bool,
    /// Peer's last in-window TSval (`ts_recent`).
    pub ts_recent: u32,
    /// When `ts_recent` was taken.
    pub ts_recent_stamp: Instant,
    /// Random offset of our TSval clock (RFC 7323 § 5.4).
    pub tsoffset: u32,

    // ----- queues -----
    /// Unsent data (`sk_write_queue`).
    pub write_queue: VecDeque<Skb>,
    /// Sent, not yet acknowledged (`tcp_rtx_queue`).
    pub rtx_queue: VecDeque<Skb>,
    /// In-order data for the application (`sk_receive_queue`).
    pub rx_queue: VecDeque<Skb>,
    /// Bytes of the head of `rx_queue` already read.
    pub rx_head_off: usize,
    /// Out-of-order segments, ordered by sequence.
    pub ofo_queue: VecDeque<Skb>,
    /// The page fragment `tcp_sendmsg` copies into (`sk_page_frag`), once it has one.
    pub page_frag: Option<BytesMut>,
    /// Bytes of the tail skb's payload still in `page_frag` (not yet a fragment).
    pub frag_pending: usize,

    // ----- congestion control -----
    /// Congestion window (packets).
    pub snd_cwnd: u32,
    /// Slow-start threshold.
    pub snd_ssthresh: u32,
    /// Congestion-avoidance counter.
    pub snd_cwnd_cnt: u32,
    /// Upper bound for cwnd.
    pub snd_cwnd_clamp: u32,
    /// When cwnd was last changed or validated.
    pub snd_cwnd_stamp: Instant,
    /// cwnd before the last reduction (undo).
    pub prior_cwnd: u32,
    /// ssthresh before the last reduction (undo).
    pub prior_ssthresh: u32,
    /// Congestion state.
    pub ca_state: CaState,
    /// `snd_nxt` when recovery started.
    pub high_seq: u32,
    /// Start of the undo window (0: no undo).
    pub undo_marker: u32,
    /// Retransmissions not yet proven spurious.
    pub undo_retrans: i32,
    /// First retransmission time of the oldest retransmitted skb.
    pub retrans_stamp: Option<Instant>,
    /// Packets sent and not acknowledged.
    pub packets_out: u32,
    /// Retransmitted packets not acknowledged.
    pub retrans_out: u32,
    /// Packets marked lost.
    pub lost_out: u32,
    /// Packets SACKed (or dupacks counted, without SACK).
    pub sacked_out: u32,
    /// Reordering degree (`tp->reordering`).
    pub reordering: u32,
    /// End of the highest SACKed skb (`tcp_highest_sack_seq`; meaningful while
    /// `sacked_out > 0`).
    pub highest_sack: u32,
    /// Times reordering was detected (`tp->reord_seen`).
    pub reord_seen: u32,
    /// RACK loss-detection state.
    pub rack: recovery::Rack,
    /// Transmissions so far (stamps each skb's `tx_order`).
    pub tx_count: u32,
    /// `snd_nxt` when a tail loss probe was sent, until it is settled (0: none).
    pub tlp_high_seq: u32,
    /// Whether that probe was a retransmission (not new data).
    pub tlp_retrans: bool,
    /// Whether the last send was limited by cwnd (`is_cwnd_limited`).
    pub is_cwnd_limited: bool,
    /// Highest packets_out in the current window (`max_packets_out`).
    pub max_packets_out: u32,
    /// `snd_nxt` when the window's usage was last sampled (`cwnd_usage_seq`).
    pub cwnd_usage_seq: u32,
    /// Most packets used while not cwnd-limited (`snd_cwnd_used`).
    pub snd_cwnd_used: u32,
    /// PRR: packets delivered during recovery.
    pub prr_delivered: u32,
    /// PRR: packets sent during recovery.
    pub prr_out: u32,
    /// The congestion control algorithm.
    pub cc: Box<dyn cong::CongestionOps>,
    /// Delivery-rate sampling (`tcp_rate.c`).
    pub rate: rate::RateState,

    // ----- RTT (RFC 6298, in microseconds) -----
    /// Smoothed RTT × 8.
    pub srtt_us: u32,
    /// Mean deviation × 4.
    pub mdev_us: u32,
    /// Largest mdev this RTT.
    pub mdev_max_us: u32,
    /// RTT variance used for the RTO.
    pub rttvar_us: u32,
    /// `snd_nxt` when the current RTT window started.
    pub rtt_seq: u32,
    /// Smallest RTT seen.
    pub min_rtt_us: u32,
    /// Retransmission timeout.
    pub rto: Duration,
    /// Exponential backoff shift (`icsk_backoff`).
    pub backoff: u32,
    /// Consecutive retransmission timeouts (`icsk_retransmits`).
    pub retransmits: u32,
    /// Zero-window probes sent without answer (`icsk_probes_out`).
    pub probes_out: u32,
    /// When the retransmission timer or probe is due (`icsk_timeout`).
    pub timeout_at: Option<Instant>,
    /// Which timer `timeout_at` is for (`icsk_pending`).
    pub pending_timer: timer::Pending,

    // ----- ACKs -----
    /// Delayed-ACK state.
    pub ack: AckState,

    // ----- socket level -----
    /// Send buffer (`sk_sndbuf`).
    pub sndbuf: usize,
    /// Receive buffer (`sk_rcvbuf`).
    pub rcvbuf: usize,
    /// Whether the application set `SO_SNDBUF` (turns off send autotuning).
    pub sndbuf_locked: bool,
    /// Whether the application set `SO_RCVBUF`.
    pub rcvbuf_locked: bool,
    /// Bytes queued for sending, sent or not (`sk_wmem_queued`).
    pub wmem_queued: usize,
    /// Bytes in the receive and out-of-order queues (`sk_rmem_alloc`).
    pub rmem_alloc: usize,
    /// Pending error (`sk_err`).
    pub err: i32,
    /// Soft error (`sk_err_soft`), reported if the connection times out.
    pub err_soft: i32,
    /// [`shutdown`] bits.
    pub shutdown: u8,
    /// [`nagle`] bits.
    pub nonagle: u8,
    /// `SO_LINGER`.
    pub linger: Option<Duration>,
    /// `SO_KEEPALIVE`.
    pub keepalive: bool,
    /// `TCP_KEEPIDLE` (None: sysctl).
    pub keepalive_time: Option<Duration>,
    /// `TCP_KEEPINTVL`.
    pub keepalive_intvl: Option<Duration>,
    /// `TCP_KEEPCNT`.
    pub keepalive_probes: Option<u8>,
    /// `TCP_USER_TIMEOUT` in ms (0: off), as Linux's `icsk_user_timeout`; read it with
    /// [`Tcb::user_timeout`].
    pub user_timeout_ms: u32,
    /// `TCP_MAXSEG` (user MSS clamp).
    pub user_mss: Option<u32>,
    /// IP-level options.
    pub ip_opts: IpSockOpts,
    /// Cached route.
    pub dst: Option<Arc<Dst>>,
    /// PMTU this socket's MSS was computed for (`icsk_pmtu_cookie`).
    pub pmtu_cookie: u32,
    /// Packetization-layer PMTU discovery state (`icsk_mtup`).
    pub mtup: mtup::Mtup,
    /// Listening state (boxed: most sockets never listen, and an idle connection
    /// should not carry a SYN queue's worth of bytes).
    pub listen: Option<Box<ListenQueue>>,
    /// The listener this socket came from, until accepted.
    pub parent: Option<Weak<TcpSock>>,
    /// Counters.
    pub stats: TcpCounters,
    /// When data was last sent (`lsndtime`).
    pub lsndtime: Instant,
    /// When a segment was last received (`rcv_tstamp`).
    pub rcv_tstamp: Instant,
    /// `TCP_QUICKACK` off forever? (no: one shot) — quick-ack mode on request.
    pub syn_retries: Option<u8>,
    /// TSQ: throttled waiting for TX completion.
    pub tsq_throttled: bool,
    /// Whether `SO_REUSEADDR` is set.
    pub reuseaddr: bool,
    /// Whether `SO_REUSEPORT` is set.
    pub reuseport: bool,
    /// Challenge ACKs sent in the current second, and the second.
    pub challenge: (u32, u32),
    /// Last time an out-of-window segment was answered with an ACK.
    pub last_oow_ack: Instant,
    /// DSACK block to send with the next ACK.
    pub dsack: Option<(u32, u32)>,
    /// SACK blocks to send (most recent first).
    pub sack_blocks: Vec<(u32, u32)>,
    /// Receive-buffer autotuning (DRS) state: bytes copied this RTT and the start.
    pub rcvq_space: (u32, u32, Instant),
    /// The receiver's RTT estimate (`rcv_rtt_est`), µs × 8 (0: none yet): from
    /// timestamp echoes of full-sized segments, or the time a window of data takes.
    pub rcv_rtt_us: u32,
    /// End of the window being timed (`rcv_rtt_est.seq`).
    pub rcv_rtt_seq: u32,
    /// When its timing started (`rcv_rtt_est.time`; `Instant::MAX`: not started).
    pub rcv_rtt_time: Instant,
    /// The timestamp echo last sampled (`rcv_rtt_last_tsecr`).
    pub rcv_rtt_last_tsecr: u32,
    /// `SO_RCVLOWAT` (`sk_rcvlowat`, at least 1): bytes a read waits for and a reader
    /// is woken for.
    pub rcvlowat: u32,
    /// `TCP_NOTSENT_LOWAT` (0: the sysctl's): unsent bytes above which writers wait.
    pub notsent_lowat: u32,
    /// Pacing rate in bytes per second (0: no pacing).
    pub pacing_rate: u64,
    /// `SO_MAX_PACING_RATE` in bytes per second (`u64::MAX`: none).
    pub max_pacing_rate: u64,
    /// Earliest departure time of the next packet (`tcp_wstamp_ns`).
    pub wstamp: Instant,
    /// When the next paced skb may leave.
    pub pacing_next: Instant,
}

/// Linux's `tcp_in_initial_slowstart` / `tcp_in_slow_start` helpers and friends.
impl Tcb {
    /// The next transmission's order stamp.
    pub fn next_tx_order(&mut self) -> u32 {
        self.tx_count = self.tx_count.wrapping_add(1);
        self.tx_count
    }

    /// `tcp_in_slow_start`.
    pub fn in_slow_start(&self) -> bool {
        self.snd_cwnd < self.snd_ssthresh
    }

    /// `tcp_is_cwnd_limited`: whether cwnd (not the application or the receiver)
    /// limits sending, so congestion control may grow it.
    pub fn tcp_is_cwnd_limited(&self) -> bool {
        if self.is_cwnd_limited {
            return true;
        }
        // In slow start, let cwnd grow to twice what was in flight.
        self.snd_cwnd < self.snd_ssthresh && self.snd_cwnd < 2 * self.max_packets_out
    }

    /// Packets in flight (`tcp_packets_in_flight`: out − (sacked + lost) + retrans).
    pub fn packets_in_flight(&self) -> u32 {
        self.packets_out
            .saturating_sub(self.sacked_out + self.lost_out)
            .saturating_add(self.retrans_out)
    }

    /// Bytes the application wrote that were not sent yet.
    pub fn notsent_bytes(&self) -> u32 {
        self.write_seq.wrapping_sub(self.snd_nxt)
    }

    /// Bytes readable by the application (the FIN does not count).
    pub fn rx_readable(&self) -> usize {
        self.rx_queue.iter().map(|s| s.len()).sum::<usize>() - self.rx_head_off
    }

    /// `tcp_epollin_ready`: enough to read for a reader waiting for `target` bytes —
    /// that many, or any when the receive buffer is nearly full or the window has
    /// shrunk below a segment (the sender can send no more until some is read).
    pub fn epollin_ready(&self, target: u32) -> bool {
        // rcv_nxt − copied_seq, as Linux counts it (a received FIN counts one).
        let avail = self.rcv_nxt.wrapping_sub(self.copied_seq);
        if avail == 0 || avail > i32::MAX as u32 {
            return false;
        }
        avail >= target
            || self.rmem_alloc > self.rcvbuf - (self.rcvbuf >> 3)
            || output::tcp_receive_window(self) <= self.ack.rcv_mss
    }

    /// `TCP_USER_TIMEOUT`, if set.
    pub fn user_timeout(&self) -> Option<Duration> {
        (self.user_timeout_ms != 0).then(|| Duration::from_millis(u64::from(self.user_timeout_ms)))
    }

    /// `tcp_wnd_end`: the right edge of the send window.
    pub fn wnd_end(&self) -> u32 {
        self.snd_una.wrapping_add(self.snd_wnd)
    }

    /// Whether the send side is open (ESTABLISHED or CLOSE_WAIT).
    pub fn can_send(&self) -> bool {
        matches!(self.state, TcpState::Established | TcpState::CloseWait)
    }

    /// `tcp_sk(sk)->srtt_us >> 3`, as a duration.
    pub fn srtt(&self) -> Duration {
        Duration::from_micros(u64::from(self.srtt_us >> 3))
    }
}

/// Lock state (Linux's `sk_lock`: spinlock + `owned`, and the backlog).
struct Slock {
    owned: bool,
    backlog: VecDeque<Skb>,
    backlog_bytes: usize,
    /// Most bytes (truesize) the backlog may hold while a process owns the socket:
    /// `sk_rcvbuf + sk_sndbuf + 64 KiB`, as `tcp_add_backlog`; refreshed from the
    /// control block each time the owner releases it.
    backlog_limit: usize,
    deferred: u32,
}

/// The backlog's bound for a control block (`tcp_add_backlog`).
fn backlog_limit(t: &Tcb) -> usize {
    t.rcvbuf + t.sndbuf + 64 * 1024
}

/// TSQ / send-buffer accounting: every skb the socket hands to IP is charged here
/// (`sk_wmem_alloc`); the driver's TX completion releases the charge (`tcp_wfree`),
/// which restarts a sender throttled by TCP small queues.
pub struct TcpWmem {
    /// Bytes in qdisc, driver ring and in flight below TCP (`sk_wmem_alloc`).
    pub alloc: AtomicUsize,
    /// What a qdisc sees of the socket through its skbs: id, `sk_pacing_rate`,
    /// `sk_pacing_status` (who paces: nobody, TCP's pacing timer, or the fq qdisc).
    pub pacing: crate::sock::SkPacing,
    sk: Weak<TcpSock>,
}

impl SkbOwner for TcpWmem {
    fn skb_released(&self, truesize: u32) {
        self.alloc.fetch_sub(truesize as usize, Ordering::AcqRel);
        if let Some(sk) = self.sk.upgrade() {
            if sk.tsq_pending.load(Ordering::Acquire) != 0 {
                timer::tsq_schedule(&sk);
            }
        }
    }

    fn pacing(&self) -> Option<&crate::sock::SkPacing> {
        Some(&self.pacing)
    }
}

/// A TCP socket (`struct sock` of the TCP protocol).
pub struct TcpSock {
    /// A unique id (for `ss` and traces).
    pub id: u64,
    me: Weak<TcpSock>,
    stack: WeakStack,
    slock: Mutex<Slock>,
    owner_cv: Condvar,
    tcb: Mutex<Tcb>,
    /// Woken on every state change the application may wait for.
    pub wq: Arc<WaitQueue>,
    /// Bytes below TCP (TSQ).
    pub wmem: Arc<TcpWmem>,
    /// Set while TSQ throttles the socket (so a completion schedules more sending).
    pub tsq_pending: std::sync::atomic::AtomicU32,
    /// Timers.
    pub timers: timer::TcpTimers,
    /// Connections that finished the handshake, waiting for `accept`.
    pub accept_q: Mutex<VecDeque<Arc<TcpSock>>>,
    nonblocking: std::sync::atomic::AtomicBool,
    sndtimeo: Mutex<Option<Duration>>,
    /// `SO_BUSY_POLL` in µs (0: the `net.core.busy_read` default).
    busy_poll_us: std::sync::atomic::AtomicU32,
    rcvtimeo: Mutex<Option<Duration>>,
    /// `SOCK_NOSPACE`: a writer (or a poll) found the send buffer full, so ACKs that
    /// free space should wake it — once a third of the buffer is free
    /// ([`sendmsg::stream_is_writeable`]), not on every ACK.
    pub nospace: std::sync::atomic::AtomicBool,
}

impl fmt::Debug for TcpSock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.tcb.try_lock() {
            Some(t) => write!(
                f,
                "TcpSock#{}({:?} {} -> {})",
                self.id, t.state, t.local, t.remote
            ),
            None => write!(f, "TcpSock#{}(locked)", self.id),
        }
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl TcpSock {
    fn new_raw(stack: &Stack, tcb: Tcb) -> Arc<TcpSock> {
        let limit = backlog_limit(&tcb);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Arc::new_cyclic(|me: &Weak<TcpSock>| {
            let wq = Arc::new(WaitQueue::default());
            TcpSock {
                id,
                me: me.clone(),
                stack: stack.downgrade(),
                slock: Mutex::new(Slock {
                    owned: false,
                    backlog: VecDeque::new(),
                    backlog_bytes: 0,
                    backlog_limit: limit,
                    deferred: 0,
                }),
                owner_cv: Condvar::new(),
                tcb: Mutex::new(tcb),
                wq,
                wmem: Arc::new(TcpWmem {
                    alloc: AtomicUsize::new(0),
                    pacing: crate::sock::SkPacing::new(id),
                    sk: me.clone(),
                }),
                tsq_pending: std::sync::atomic::AtomicU32::new(0),
                timers: timer::TcpTimers::new(me.clone()),
                accept_q: Mutex::new(VecDeque::new()),
                nonblocking: std::sync::atomic::AtomicBool::new(false),
                sndtimeo: Mutex::new(None),
                busy_poll_us: std::sync::atomic::AtomicU32::new(0),
                nospace: std::sync::atomic::AtomicBool::new(false),
                rcvtimeo: Mutex::new(None),
            }
        })
    }

    /// `socket(AF_INET, SOCK_STREAM, 0)`.
    pub fn new(stack: &Stack) -> Arc<TcpSock> {
        TcpSock::new_raw(stack, Tcb::new(stack))
    }

    /// This socket as an `Arc`.
    pub fn arc(&self) -> Option<Arc<TcpSock>> {
        self.me.upgrade()
    }

    /// The stack, if alive.
    pub fn stack(&self) -> io::Result<Stack> {
        self.stack
            .upgrade()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "stack is gone"))
    }

    /// Look at the control block (for tests and views). Blocks while a segment is
    /// processed; not while an application owns the socket, in which case it waits.
    pub fn with_tcb<R>(&self, f: impl FnOnce(&Tcb) -> R) -> R {
        f(&self.tcb.lock())
    }

    /// Number of segments waiting on the backlog.
    pub fn backlog_len(&self) -> usize {
        self.slock.lock().backlog.len()
    }

    /// Memory (truesize) of the skbs waiting in the backlog.
    pub fn backlog_bytes(&self) -> usize {
        self.slock.lock().backlog_bytes
    }

    /// `O_NONBLOCK`.
    pub fn set_nonblocking(&self, on: bool) {
        self.nonblocking.store(on, Ordering::Relaxed);
    }

    /// Whether `O_NONBLOCK` is set.
    pub fn is_nonblocking(&self) -> bool {
        self.nonblocking.load(Ordering::Relaxed)
    }

    /// `SO_SNDTIMEO`.
    pub fn set_write_timeout(&self, t: Option<Duration>) {
        *self.sndtimeo.lock() = t;
    }

    /// `SO_RCVTIMEO`.
    pub fn set_read_timeout(&self, t: Option<Duration>) {
        *self.rcvtimeo.lock() = t;
    }

    fn sndtimeo(&self) -> Option<Duration> {
        if self.is_nonblocking() {
            Some(Duration::ZERO)
        } else {
            *self.sndtimeo.lock()
        }
    }

    fn rcvtimeo(&self) -> Option<Duration> {
        if self.is_nonblocking() {
            Some(Duration::ZERO)
        } else {
            *self.rcvtimeo.lock()
        }
    }
}

impl Tcb {
    /// A fresh control block with Linux's defaults.
    pub fn new(stack: &Stack) -> Tcb {
        let now = stack.now();
        let cc = cong::by_name(&stack.tcp.default_cc.read()).unwrap_or_else(cong::default_cc);
        Tcb {
            state: TcpState::Close,
            local: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
            remote: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
            snd_una: 0,
            snd_nxt: 0,
            snd_wnd: 0,
            snd_wl1: 0,
            max_window: 0,
            write_seq: 0,
            pushed_seq: 0,
            snd_sml: 0,
            iss: 0,
            rcv_nxt: 0,
            rcv_wup: 0,
            rcv_wnd: 0,
            copied_seq: 0,
            rcv_ssthresh: 0,
            window_clamp: 0,
            irs: 0,
            mss_cache: TCP_MSS_DEFAULT,
            mss_with_ts: false,
            advmss: TCP_MSS_DEFAULT,
            mss_clamp: 65535,
            snd_wscale: 0,
            rcv_wscale: 0,
            wscale_ok: false,
            sack_ok: false,
            tstamp_ok: false,
            ts_recent: 0,
            ts_recent_stamp: Instant::ZERO,
            tsoffset: 0,
            write_queue: VecDeque::new(),
            rtx_queue: VecDeque::new(),
            rx_queue: VecDeque::new(),
            rx_head_off: 0,
            ofo_queue: VecDeque::new(),
            page_frag: None,
            frag_pending: 0,
            snd_cwnd: TCP_INIT_CWND,
            snd_ssthresh: u32::MAX >> 1,
            snd_cwnd_cnt: 0,
            snd_cwnd_clamp: u32::MAX >> 1,
            snd_cwnd_stamp: now,
            prior_cwnd: 0,
            prior_ssthresh: 0,
            ca_state: CaState::Open,
            high_seq: 0,
            undo_marker: 0,
            undo_retrans: 0,
            retrans_stamp: None,
            packets_out: 0,
            retrans_out: 0,
            lost_out: 0,
            sacked_out: 0,
            reordering: stack.sysctl.tcp_reordering().max(1) as u32,
            highest_sack: 0,
            reord_seen: 0,
            rack: recovery::Rack::default(),
            tx_count: 0,
            tlp_high_seq: 0,
            tlp_retrans: false,
            is_cwnd_limited: false,
            max_packets_out: 0,
            cwnd_usage_seq: 0,
            snd_cwnd_used: 0,
            prr_delivered: 0,
            prr_out: 0,
            cc,
            rate: rate::RateState::default(),
            srtt_us: 0,
            mdev_us: (TCP_TIMEOUT_INIT.as_micros() as u32),
            mdev_max_us: 0,
            rttvar_us: (TCP_TIMEOUT_INIT.as_micros() as u32),
            rtt_seq: 0,
            min_rtt_us: u32::MAX,
            rto: TCP_TIMEOUT_INIT,
            backoff: 0,
            retransmits: 0,
            probes_out: 0,
            timeout_at: None,
            pending_timer: timer::Pending::None,
            ack: AckState {
                pending: 0,
                quick: 0,
                pingpong: 0,
                ato: TCP_ATO_MIN,
                timeout: Instant::ZERO,
                lrcvtime: now,
                last_seg_size: 0,
                rcv_mss: TCP_MSS_DEFAULT,
            },
            sndbuf: stack.sysctl.tcp_wmem_default().max(4096) as usize,
            rcvbuf: stack.sysctl.tcp_rmem_default().max(4096) as usize,
            sndbuf_locked: false,
            rcvbuf_locked: false,
            wmem_queued: 0,
            rmem_alloc: 0,
            err: 0,
            err_soft: 0,
            shutdown: 0,
            nonagle: 0,
            linger: None,
            keepalive: false,
            keepalive_time: None,
            keepalive_intvl: None,
            keepalive_probes: None,
            user_timeout_ms: 0,
            user_mss: None,
            ip_opts: IpSockOpts::default(),
            dst: None,
            pmtu_cookie: 0,
            mtup: mtup::Mtup::default(),
            listen: None,
            parent: None,
            stats: TcpCounters::default(),
            lsndtime: now,
            rcv_tstamp: now,
            syn_retries: None,
            tsq_throttled: false,
            reuseaddr: false,
            reuseport: false,
            challenge: (0, 0),
            last_oow_ack: Instant::ZERO,
            dsack: None,
            sack_blocks: Vec::new(),
            rcvq_space: (0, 0, now),
            rcv_rtt_us: 0,
            rcv_rtt_seq: 0,
            rcv_rtt_time: Instant::MAX,
            rcv_rtt_last_tsecr: 0,
            rcvlowat: 1,
            notsent_lowat: 0,
            pacing_rate: 0,
            max_pacing_rate: u64::MAX,
            wstamp: Instant::ZERO,
            pacing_next: Instant::ZERO,
        }
    }
}

crate::mib::mib_group!(
    /// `Tcp:` counters (RFC 4022 `tcp` group, as `/proc/net/snmp`).
    Tcp, TcpMib, "Tcp",
    [RtoAlgorithm, RtoMin, RtoMax, MaxConn, ActiveOpens, PassiveOpens, AttemptFails,
     EstabResets, CurrEstab, InSegs, OutSegs, RetransSegs, InErrs, OutRsts, InCsumErrors]
);

crate::mib::mib_group!(
    /// `TcpExt:` counters (`/proc/net/netstat`), the ones this stack maintains.
    TcpExt, TcpExtMib, "TcpExt",
    [SyncookiesSent, SyncookiesRecv, SyncookiesFailed, EmbryonicRsts, PruneCalled,
     OfoPruned, OutOfWindowIcmps, TW, TWRecycled, DelayedACKs, DelayedACKLocked,
     DelayedACKLost, ListenOverflows, ListenDrops, TCPHPHits, TCPPureAcks, TCPHPAcks,
     TCPRenoRecovery, TCPSackRecovery, TCPSACKReneging, TCPSACKReorder, TCPRenoReorder,
     TCPTSReorder, TCPFullUndo, TCPPartialUndo, TCPDSACKUndo, TCPLossUndo, TCPLostRetransmit,
     TCPRenoFailures, TCPSackFailures, TCPLossFailures, TCPFastRetrans, TCPSlowStartRetrans,
     TCPTimeouts, TCPLossProbes, TCPLossProbeRecovery, TCPRenoRecoveryFail,
     TCPSackRecoveryFail, TCPRcvCollapsed, TCPDSACKOldSent, TCPDSACKOfoSent, TCPDSACKRecv,
     TCPDSACKOfoRecv, TCPAbortOnData, TCPAbortOnClose, TCPAbortOnMemory, TCPAbortOnTimeout,
     TCPAbortOnLinger, TCPAbortFailed, TCPMemoryPressures, TCPSACKDiscard, TCPDSACKIgnoredOld,
     TCPDSACKIgnoredNoUndo, TCPSpuriousRTOs, TCPSackShifted, TCPSackMerged,
     TCPBacklogDrop, PFMemallocDrop, TCPMinTTLDrop, TCPDeferAcceptDrop, IPReversePathFilter,
     TCPTimeWaitOverflow, TCPReqQFullDoCookies, TCPReqQFullDrop, TCPRetransFail,
     TCPRcvCoalesce, TCPOFOQueue, TCPOFODrop, TCPOFOMerge, TCPChallengeACK, TCPSYNChallenge,
     TCPSpuriousRtxHostQueues, BusyPollRxPackets, TCPAutoCorking, TCPFromZeroWindowAdv,
     TCPToZeroWindowAdv, TCPWantZeroWindowAdv, TCPSynRetrans, TCPOrigDataSent,
     TCPHystartTrainDetect, TCPHystartTrainCwnd, TCPHystartDelayDetect, TCPHystartDelayCwnd,
     TCPACKSkippedSynRecv, TCPACKSkippedPAWS, TCPACKSkippedSeq, TCPACKSkippedFinWait2,
     TCPACKSkippedTimeWait, TCPACKSkippedChallenge, TCPWinProbe, TCPKeepAlive,
     TCPMTUPFail, TCPMTUPSuccess, TCPDelivered, TCPAckCompressed, TCPZeroWindowDrop,
     TCPRcvQDrop, TCPWqueueTooBig, TCPFastOpenPassive, PAWSActive, PAWSEstab]
);

impl TcpSock {
    /// `bind`. `EADDRINUSE` for a taken port, `EADDRNOTAVAIL` for an address that is not
    /// ours, `EINVAL` if already bound.
    pub fn bind(self: &Arc<Self>, addr: SocketAddrV4) -> io::Result<SocketAddrV4> {
        let stack = self.stack()?;
        let t = self.lock_sock()?;
        if t.state != TcpState::Close || t.local.port() != 0 {
            return Err(os_err(errno::EINVAL));
        }
        let ip = *addr.ip();
        if !ip.is_unspecified() && crate::ipv4::addr::is_local(&stack, ip).is_none() {
            return Err(os_err(errno::EADDRNOTAVAIL));
        }
        let reuse = t.reuseaddr;
        drop(t);
        let port = if addr.port() == 0 {
            crate::ipv4::addr::local_ports(&stack)
                .find(|&p| !bind_conflict(&stack, self, SocketAddrV4::new(ip, p), reuse))
                .ok_or_else(|| os_err(errno::EADDRINUSE))?
        } else {
            if bind_conflict(&stack, self, addr, reuse) {
                return Err(os_err(errno::EADDRINUSE));
            }
            addr.port()
        };
        bhash_add(&stack, self, port);
        let mut t = self.lock_sock()?;
        t.local = SocketAddrV4::new(ip, port);
        Ok(t.local)
    }

    /// `listen(backlog)`.
    pub fn listen(self: &Arc<Self>, backlog: usize) -> io::Result<()> {
        let stack = self.stack()?;
        if self.with_tcb(|t| t.local.port()) == 0 {
            self.bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
        }
        let mut t = self.lock_sock()?;
        match t.state {
            TcpState::Close => {}
            TcpState::Listen => {
                if let Some(l) = &mut t.listen {
                    l.max_ack_backlog = backlog.min(stack.sysctl.somaxconn().max(0) as usize);
                }
                return Ok(());
            }
            _ => return Err(os_err(errno::EINVAL)),
        }
        t.state = TcpState::Listen;
        t.listen = Some(Box::new(ListenQueue {
            max_ack_backlog: backlog.min(stack.sysctl.somaxconn().max(0) as usize),
            syn_queue: HashMap::default(),
            cookies_sent: 0,
            last_overflow: None,
        }));
        let port = t.local.port();
        let entry = ListenEntry {
            ip: *t.local.ip(),
            reuseport: t.reuseport,
            sk: self.clone(),
        };
        drop(t);
        stack.tcp.lhash.write().entry(port).or_default().push(entry);
        Ok(())
    }

    /// `connect`: send the SYN and (unless non-blocking) wait for the handshake.
    /// `EINPROGRESS` when non-blocking; `ECONNREFUSED` on a reset; `ETIMEDOUT` after
    /// `tcp_syn_retries`; `ENETUNREACH` / `EHOSTUNREACH` without a route.
    pub fn connect(self: &Arc<Self>, remote: SocketAddrV4) -> io::Result<()> {
        let stack = self.stack()?;
        {
            let t = self.lock_sock()?;
            match t.state {
                TcpState::Close => {}
                TcpState::SynSent => return Err(os_err(114)), // EALREADY
                TcpState::Listen => return Err(os_err(errno::EINVAL)),
                _ => return Err(os_err(errno::EISCONN)),
            }
        }
        if remote.port() == 0
            || remote.ip().is_unspecified()
            || remote.ip().is_broadcast()
            || remote.ip().is_multicast()
        {
            return Err(os_err(errno::ENETUNREACH));
        }
        let dst = stack.ipv4.fib.route_output(
            &stack,
            &crate::ipv4::route::Flowi4 {
                daddr: Some(*remote.ip()),
                saddr: Some(*self.with_tcb(|t| t.local).ip()).filter(|a| !a.is_unspecified()),
                ..Default::default()
            },
        )?;
        let bound = self.with_tcb(|t| t.local);
        let local_ip = if bound.ip().is_unspecified() {
            dst.saddr
        } else {
            *bound.ip()
        };
        let port = if bound.port() != 0 {
            bound.port()
        } else {
            let p = pick_port(&stack, local_ip, remote)?;
            bhash_add(&stack, self, p);
            p
        };
        let local = SocketAddrV4::new(local_ip, port);
        {
            let mut eh = stack.tcp.ehash.write();
            if eh.contains_key(&(local, remote)) {
                return Err(os_err(errno::EADDRNOTAVAIL));
            }
            eh.insert((local, remote), self.clone());
        }
        {
            let mut t = self.lock_sock()?;
            t.local = local;
            t.remote = remote;
            t.dst = Some(dst);
            output::tcp_connect(&stack, self, &mut t);
        }
        stack.tcp.snmp.inc(Tcp::ActiveOpens);
        if self.is_nonblocking() {
            return Err(os_err(errno::EINPROGRESS));
        }
        self.wait_connected(None)
    }

    /// Wait for a connection in progress to finish (after a non-blocking `connect`).
    pub fn wait_connected(self: &Arc<Self>, timeout: Option<Duration>) -> io::Result<()> {
        let mut t = self.lock_sock()?;
        loop {
            if t.err != 0 {
                let e = std::mem::take(&mut t.err);
                return Err(os_err(e));
            }
            match t.state {
                TcpState::SynSent | TcpState::SynRecv => {}
                TcpState::Close => return Err(os_err(errno::ECONNREFUSED)),
                _ => return Ok(()),
            }
            if !t.wait(timeout, |t| {
                !matches!(t.state, TcpState::SynSent | TcpState::SynRecv) || t.err != 0
            }) {
                return Err(os_err(errno::EAGAIN));
            }
        }
    }

    /// `accept`: the next connection that finished its handshake. `EAGAIN` when none and
    /// non-blocking (or after `SO_RCVTIMEO`).
    pub fn accept(self: &Arc<Self>) -> io::Result<Arc<TcpSock>> {
        let timeout = self.rcvtimeo();
        let mut t = self.lock_sock()?;
        loop {
            if t.state != TcpState::Listen {
                return Err(os_err(errno::EINVAL));
            }
            if let Some(child) = self.accept_q.lock().pop_front() {
                drop(t);
                child.tcb.lock().parent = None;
                return Ok(child);
            }
            let me = self.clone();
            if !t.wait(timeout, |t| {
                t.listen.is_none() || !me.accept_q.lock().is_empty()
            }) {
                return Err(os_err(errno::EAGAIN));
            }
        }
    }

    /// Connections waiting in the accept queue.
    pub fn accept_queue_len(&self) -> usize {
        self.accept_q.lock().len()
    }

    /// `send` / `write` (`tcp_sendmsg`). Returns bytes queued. Blocks while the send
    /// buffer is full unless non-blocking (then `EAGAIN` if nothing fit); `EPIPE` after
    /// shutdown; the pending error if the connection broke.
    pub fn send(self: &Arc<Self>, data: &[u8]) -> io::Result<usize> {
        self.send_flags(&[data], 0)
    }

    /// `sendmsg` with an iovec and flags ([`msg`]).
    pub fn send_flags(self: &Arc<Self>, iov: &[&[u8]], flags: u32) -> io::Result<usize> {
        self.sendmsg_from(iov, flags)
    }

    /// `tcp_sendmsg` from `src`, blocking up to `SO_SNDTIMEO` unless `MSG_DONTWAIT`.
    fn sendmsg_from<S: sendmsg::SendSource + ?Sized>(
        self: &Arc<Self>,
        src: &S,
        flags: u32,
    ) -> io::Result<usize> {
        let timeout = if flags & msg::DONTWAIT != 0 {
            Some(Duration::ZERO)
        } else {
            self.sndtimeo()
        };
        let mut t = self.lock_sock()?;
        sendmsg::tcp_sendmsg(self, &mut t, src, flags, timeout)
    }

    /// `sendmsg(MSG_SPLICE_PAGES)`, what `sendfile` and `splice` do: queue `pages`
    /// as skb fragments without copying them. The stack keeps a reference to each
    /// page while any skb carries its bytes: until they are acknowledged and the
    /// driver is done with the frames — on loopback, where the receiver gets the skb
    /// itself, until the peer has read them. [`bytes::Bytes::is_unique`] tells when the
    /// stack has let a page go (Linux's `MSG_ZEROCOPY` completion, by ownership). The
    /// send buffer counts the bytes sent, not the allocation a slice keeps alive (a
    /// small slice of a large buffer holds all of it). Each page is a fragment of its
    /// own — adjacent slices are not merged, as Linux's `skb_can_coalesce` merges
    /// contiguous pages — so with many small pages an skb ends at 17 fragments
    /// (`MAX_SKB_FRAGS`) short of its size goal. Returns bytes queued; blocks and
    /// fails as [`TcpSock::send_flags`].
    pub fn send_pages(self: &Arc<Self>, pages: &[bytes::Bytes], flags: u32) -> io::Result<usize> {
        self.sendmsg_from(pages, flags)
    }

    /// `recv` / `read`: copy in-order data into `buf`. Returns 0 at end of stream.
    pub fn recv(self: &Arc<Self>, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_flags(buf, 0)
    }

    /// `recvmsg` with flags (`MSG_PEEK`, `MSG_WAITALL`, `MSG_DONTWAIT`).
    pub fn recv_flags(self: &Arc<Self>, buf: &mut [u8], flags: u32) -> io::Result<usize> {
        let timeout = if flags & msg::DONTWAIT != 0 {
            Some(Duration::ZERO)
        } else {
            self.rcvtimeo()
        };
        let mut t = self.lock_sock()?;
        recvmsg::tcp_recvmsg(self, &mut t, buf, flags, timeout)
    }

    /// `shutdown(SHUT_WR)` (send FIN), `SHUT_RD`, or both.
    pub fn shutdown(self: &Arc<Self>, how: std::net::Shutdown) -> io::Result<()> {
        let mut t = self.lock_sock()?;
        let stack = t.stack().clone();
        if matches!(
            t.state,
            TcpState::Close | TcpState::Listen | TcpState::SynSent
        ) {
            return Err(os_err(errno::ENOTCONN));
        }
        match how {
            std::net::Shutdown::Read => t.shutdown |= shutdown::RCV,
            std::net::Shutdown::Write => {
                t.shutdown |= shutdown::SEND;
                output::tcp_shutdown_send(&stack, self, &mut t);
            }
            std::net::Shutdown::Both => {
                t.shutdown |= shutdown::RCV | shutdown::SEND;
                output::tcp_shutdown_send(&stack, self, &mut t);
            }
        }
        drop(t);
        self.wq.wake_all();
        Ok(())
    }

    /// `close` (`tcp_close`): unread data → RST (RFC 2525); `SO_LINGER` 0 → RST;
    /// otherwise FIN after the queued data, and the connection finishes on its own.
    pub fn close(self: &Arc<Self>) {
        let Ok(mut t) = self.lock_sock() else {
            return;
        };
        let stack = t.stack().clone();
        output::tcp_close(&stack, self, &mut t);
        drop(t);
        self.wq.wake_all();
    }

    /// `getsockname`.
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.with_tcb(|t| t.local)
    }

    /// `getpeername`: `ENOTCONN` unless connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddrV4> {
        self.with_tcb(|t| match t.state {
            TcpState::Close | TcpState::Listen | TcpState::SynSent => Err(os_err(errno::ENOTCONN)),
            _ => Ok(t.remote),
        })
    }

    /// The connection state.
    pub fn state(&self) -> TcpState {
        self.with_tcb(|t| t.state)
    }

    /// `SO_ERROR`: take the pending error.
    pub fn take_error(self: &Arc<Self>) -> Option<io::Error> {
        let mut t = self.lock_sock().ok()?;
        let e = std::mem::take(&mut t.err);
        (e != 0).then(|| os_err(e))
    }

    /// Whether a read would not block (data, EOF, error or an incoming connection).
    pub fn readable(&self) -> bool {
        self.with_tcb(|t| {
            t.epollin_ready(t.rcvlowat)
                || t.shutdown & shutdown::RCV != 0
                || t.err != 0
                || (t.listen.is_some() && !self.accept_q.lock().is_empty())
                || matches!(
                    t.state,
                    TcpState::Close
                        | TcpState::CloseWait
                        | TcpState::LastAck
                        | TcpState::TimeWait
                        | TcpState::Closing
                )
        })
    }

    /// Whether the socket polls writable (`tcp_poll`'s `EPOLLOUT`): at least a third
    /// of the send buffer free (`sk_stream_is_writeable`). Not writable sets
    /// `SOCK_NOSPACE`, so the ACK that frees enough space wakes the poller.
    pub fn writable(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.with_tcb(|t| {
            if t.err != 0 || t.shutdown & shutdown::SEND != 0 {
                return true;
            }
            if !t.can_send() {
                return false;
            }
            let Some(stack) = self.stack.upgrade() else {
                return false;
            };
            if sendmsg::stream_is_writeable(&stack, t) {
                return true;
            }
            self.nospace.store(true, Ordering::Release);
            sendmsg::stream_is_writeable(&stack, t)
        })
    }

    /// Set an option on the control block (the `setsockopt` family).
    pub fn set_opt(self: &Arc<Self>, opt: SockOpt) -> io::Result<()> {
        let mut t = self.lock_sock()?;
        let stack = t.stack().clone();
        opt.apply(&stack, self, &mut t)
    }

    /// Connection information (`getsockopt(TCP_INFO)`).
    pub fn info(&self) -> info::TcpInfo {
        let stack = self.stack.upgrade();
        self.with_tcb(|t| info::TcpInfo::of(t, stack.as_ref().map(|s| s.now()).unwrap_or_default()))
    }
}

/// `MSG_*` flags.
pub mod msg {
    /// Don't wait.
    pub const DONTWAIT: u32 = 0x40;
    /// Look without consuming.
    pub const PEEK: u32 = 0x2;
    /// Wait for the whole buffer.
    pub const WAITALL: u32 = 0x100;
    /// More data follows: cork.
    pub const MORE: u32 = 0x8000;
    /// Don't raise SIGPIPE (there is none here; accepted for compatibility).
    pub const NOSIGNAL: u32 = 0x4000;
    /// Send out-of-band data (unsupported: `EOPNOTSUPP`).
    pub const OOB: u32 = 0x1;
}
