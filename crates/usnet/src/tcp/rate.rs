//! Delivery-rate sampling (Linux's `net/ipv4/tcp_rate.c`; draft-cheng-iccrg-delivery-rate-estimation).
//!
//! Every transmission snapshots the connection's delivery counters into the skb
//! ([`skb_sent`]): how many packets were delivered so far (`tp->delivered`), when the
//! last of them was (`delivered_mstamp`), when the current send flight began
//! (`first_tx_mstamp`) and whether the sender was application-limited. When the skb is
//! ACKed or SACKed ([`skb_delivered`]), the most recently sent of the newly delivered
//! skbs becomes the reference of the ACK's [`RateSample`]; [`rate_gen`] then turns it
//! into `delivered / interval`, where the interval is the longer of the send phase
//! (first to last transmission of the flight) and the ACK phase (reference delivery to
//! now) — so neither ACK compression nor a burst of sends inflates the rate.
//!
//! A sample is *application-limited* when the data it measured was sent while the
//! application had nothing more to send ([`check_app_limited`], from `tcp_sendmsg`):
//! such samples can only underestimate the path, and congestion controls treat them
//! as such.

use super::Tcb;
use crate::skb::TcpSkbCb;
use crate::time::Instant;

/// Connection-wide rate-sampling state (the `tcp_sock` fields `tcp_rate.c` keeps).
#[derive(Clone, Copy, Debug, Default)]
pub struct RateState {
    /// When the last packet was delivered (`delivered_mstamp`).
    pub delivered_mstamp: Instant,
    /// Send time of the packet that started the current flight (`first_tx_mstamp`).
    pub first_tx_mstamp: Instant,
    /// Application-limited until `delivered` passes this (0: not limited;
    /// `app_limited`).
    pub app_limited: u32,
    /// Packets marked lost over the connection's life (`tp->lost`).
    pub lost: u32,
    /// Delivered count of the last sample kept for `TCP_INFO` (`rate_delivered`).
    pub rate_delivered: u32,
    /// Interval of that sample in µs (`rate_interval_us`).
    pub rate_interval_us: u32,
    /// Whether that sample was application-limited (`rate_app_limited`).
    pub rate_app_limited: bool,
}

impl RateState {
    /// `tcpi_delivery_rate`: the last kept sample in bytes per second (0: none yet).
    pub fn delivery_rate(&self, mss: u32) -> u64 {
        if self.rate_interval_us == 0 {
            return 0;
        }
        u64::from(self.rate_delivered) * u64::from(mss) * 1_000_000
            / u64::from(self.rate_interval_us)
    }
}

/// One ACK's delivery-rate sample (Linux's `struct rate_sample`).
#[derive(Clone, Copy, Debug, Default)]
pub struct RateSample {
    /// Send time of the reference skb's flight start, once one is found
    /// (`prior_mstamp`; `None`: no timing information in this ACK).
    pub prior_mstamp: Option<Instant>,
    /// `tp->delivered` when the reference skb was sent (`prior_delivered`).
    pub prior_delivered: u32,
    /// Packets delivered over the interval (negative: invalid sample).
    pub delivered: i32,
    /// The sampling interval in µs: max(send phase, ACK phase) (negative: invalid).
    pub interval_us: i64,
    /// The send phase in µs (`snd_interval_us`).
    pub snd_interval_us: u32,
    /// The ACK phase in µs (`rcv_interval_us`).
    pub rcv_interval_us: u32,
    /// RTT of the most recently sent packet this ACK delivered, in µs (negative: none).
    pub rtt_us: i64,
    /// Packets newly marked lost by this ACK (`losses`).
    pub losses: u32,
    /// Packets newly ACKed or SACKed by this ACK (`acked_sacked`).
    pub acked_sacked: u32,
    /// Packets in flight before this ACK (`prior_in_flight`).
    pub prior_in_flight: u32,
    /// Whether the reference skb was sent while application-limited.
    pub is_app_limited: bool,
    /// Whether the reference skb was a retransmission.
    pub is_retrans: bool,
    /// The ACK may have been delayed by the receiver (`FLAG_ACK_MAYBE_DELAYED`: one
    /// small packet acknowledged alone), so its RTT may be inflated.
    pub is_ack_delayed: bool,
    /// Reference skb's send time and end sequence, to find the most recently sent.
    last_tx: Option<(Instant, u32, u32)>,
}

impl RateSample {
    /// An empty sample for an ACK arriving with `prior_in_flight` packets in flight.
    pub fn new(prior_in_flight: u32) -> RateSample {
        RateSample {
            rtt_us: -1,
            delivered: -1,
            interval_us: -1,
            prior_in_flight,
            ..RateSample::default()
        }
    }

    /// Whether the sample measured a rate (`delivered >= 0 && interval_us > 0`).
    pub fn is_valid(&self) -> bool {
        self.delivered >= 0 && self.interval_us > 0
    }
}

/// `tcp_rate_skb_sent`: snapshot the delivery state into an skb being (re)transmitted
/// at `now`. With nothing in flight a new flight starts here: its first send and the
/// last delivery both date from now, so idle time never counts as an interval.
pub fn skb_sent(t: &mut Tcb, cb: &mut TcpSkbCb, now: Instant) {
    if t.packets_out == 0 {
        t.rate.first_tx_mstamp = now;
        t.rate.delivered_mstamp = now;
    }
    cb.tx_first_tx = t.rate.first_tx_mstamp;
    cb.tx_delivered_mstamp = Some(t.rate.delivered_mstamp);
    cb.tx_delivered = t.stats.delivered;
    cb.tx_app_limited = t.rate.app_limited != 0;
}

/// `tcp_rate_skb_delivered`: an skb was ACKed or SACKed (for the first time). If it was
/// sent after the current reference, it becomes the reference: its snapshot is what
/// this ACK's rate is measured from, and the flight's start moves to its send time.
/// The skb's snapshot is cleared, so a later cumulative ACK of a SACKed skb adds
/// nothing.
pub fn skb_delivered(rate: &mut RateState, cb: &mut TcpSkbCb, rs: &mut RateSample) {
    let Some(dmstamp) = cb.tx_delivered_mstamp else {
        return;
    };
    let me = (cb.tx_time, cb.tx_order, cb.end_seq);
    if rs
        .last_tx
        .is_none_or(|l| super::recovery::sent_after(me, l))
    {
        rs.prior_delivered = cb.tx_delivered;
        rs.prior_mstamp = Some(dmstamp);
        rs.is_app_limited = cb.tx_app_limited;
        rs.is_retrans = cb.sacked & super::input::sacked::RETRANS != 0;
        rs.last_tx = Some(me);
        // The send phase: from the flight's first send to this skb's.
        rate.first_tx_mstamp = cb.tx_time;
        rs.interval_us = cb
            .tx_time
            .saturating_duration_since(cb.tx_first_tx)
            .as_micros() as i64;
    }
    if cb.sacked & super::input::sacked::ACKED != 0 {
        cb.tx_delivered_mstamp = None;
    }
}

/// `tcp_rate_gen`: finish the ACK's sample. `delivered` and `lost` are the packets this
/// ACK newly delivered and marked lost.
pub fn rate_gen(t: &mut Tcb, delivered: u32, lost: u32, rs: &mut RateSample, now: Instant) {
    // The application-limited bubble is gone once it is delivered.
    if t.rate.app_limited != 0 && super::seq::after(t.stats.delivered, t.rate.app_limited) {
        t.rate.app_limited = 0;
    }
    if delivered > 0 {
        t.rate.delivered_mstamp = now;
    }
    rs.acked_sacked = delivered;
    rs.losses = lost;
    let Some(prior) = rs.prior_mstamp else {
        rs.delivered = -1;
        rs.interval_us = -1;
        return;
    };
    rs.delivered = t.stats.delivered.wrapping_sub(rs.prior_delivered) as i32;
    // Sending and ACKing are two pipeline phases of one flight: the longer one is the
    // interval (ACK compression shortens the ACK phase, send bursts the send phase).
    let snd_us = rs.interval_us.max(0);
    let ack_us = now.saturating_duration_since(prior).as_micros() as i64;
    rs.interval_us = snd_us.max(ack_us);
    rs.snd_interval_us = snd_us.min(i64::from(u32::MAX)) as u32;
    rs.rcv_interval_us = ack_us.min(i64::from(u32::MAX)) as u32;
    // An interval below min_rtt cannot be right (a spurious retransmission ACKed
    // early): no sample.
    if t.min_rtt_us != u32::MAX && rs.interval_us < i64::from(t.min_rtt_us) {
        rs.interval_us = -1;
        return;
    }
    if rs.interval_us <= 0 || rs.delivered < 0 {
        return;
    }
    // Keep for TCP_INFO the last sample not application-limited, or a limited one
    // that shows a higher rate.
    let interval = rs.interval_us.min(i64::from(u32::MAX)) as u64;
    if !rs.is_app_limited
        || u64::from(rs.delivered as u32) * u64::from(t.rate.rate_interval_us)
            >= u64::from(t.rate.rate_delivered) * interval
    {
        t.rate.rate_delivered = rs.delivered as u32;
        t.rate.rate_interval_us = interval as u32;
        t.rate.rate_app_limited = rs.is_app_limited;
    }
}

/// `tcp_rate_check_app_limited`: called when the application writes. If there is less
/// than a packet to send, nothing below TCP, room in cwnd and no lost packet waiting for
/// retransmission, the sender is application-limited until what is in flight now has
/// been delivered.
pub fn check_app_limited(t: &mut Tcb, below_tcp_bytes: usize) {
    let in_flight = t.packets_in_flight();
    if t.notsent_bytes() < t.mss_cache
        && below_tcp_bytes < super::output::SKB_TRUESIZE_BASE + 1
        && in_flight < t.snd_cwnd
        && t.lost_out <= t.retrans_out
    {
        t.rate.app_limited = t.stats.delivered.wrapping_add(in_flight).max(1);
    }
}
