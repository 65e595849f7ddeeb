//! `tcp_recvmsg` (Linux's `net/ipv4/tcp.c`): the application's read — copy from the
//! receive queue, advance `copied_seq`, then `tcp_cleanup_rbuf` sends the ACK or window
//! update the read made due, and `tcp_rcv_space_adjust` grows the receive buffer to
//! what the application drains per RTT (dynamic right-sizing).

use std::sync::Arc;
use std::time::Duration;

use super::output;
use super::*;
use crate::sock::{errno, os_err};
use crate::Stack;

/// `tcp_recvmsg`.
pub fn tcp_recvmsg(
    sk: &Arc<TcpSock>,
    t: &mut SockGuard<'_>,
    buf: &mut [u8],
    flags: u32,
    timeout: Option<Duration>,
) -> std::io::Result<usize> {
    let stack = t.stack().clone();
    if t.state == TcpState::Listen {
        return Err(os_err(errno::ENOTCONN));
    }
    let peek = flags & msg::PEEK != 0;
    let waitall = flags & msg::WAITALL != 0;
    // sock_rcvlowat: everything with MSG_WAITALL, else SO_RCVLOWAT (at most the buffer).
    let target = if waitall {
        buf.len()
    } else {
        (t.rcvlowat as usize).min(buf.len())
    }
    .max(1.min(buf.len()));
    let mut copied = 0usize;
    loop {
        // Copy what is there.
        let mut off = if peek { t.rx_head_off } else { 0 };
        let mut qi = 0;
        while copied < buf.len() {
            let Some(skb) = t.rx_queue.get(qi) else {
                break;
            };
            let start = if qi == 0 { t.rx_head_off } else { 0 };
            let start = if peek && qi == 0 { off } else { start };
            let avail = skb.len() - start;
            let n = avail.min(buf.len() - copied);
            skb.copy_bits(start, &mut buf[copied..copied + n]);
            let skb_len = skb.len();
            copied += n;
            if peek {
                qi += 1;
                off = 0;
                continue;
            }
            t.copied_seq = t.copied_seq.wrapping_add(n as u32);
            if start + n == skb_len {
                let skb = t.rx_queue.pop_front().expect("head");
                t.rmem_alloc = t.rmem_alloc.saturating_sub(skb.len());
                t.rx_head_off = 0;
            } else {
                t.rx_head_off = start + n;
                break;
            }
        }
        if copied >= target && copied > 0 {
            break;
        }
        if copied > 0 && !waitall {
            break;
        }
        // Nothing (more) to read: why?
        if t.err != 0 {
            if copied > 0 {
                break;
            }
            let e = std::mem::take(&mut t.err);
            return Err(os_err(e));
        }
        if t.shutdown & shutdown::RCV != 0
            || matches!(
                t.state,
                TcpState::Close
                    | TcpState::CloseWait
                    | TcpState::LastAck
                    | TcpState::Closing
                    | TcpState::TimeWait
            )
        {
            if t.state == TcpState::Close
                && t.rx_queue.is_empty()
                && copied == 0
                && t.err == 0
                && t.shutdown & shutdown::RCV == 0
            {
                return Err(os_err(errno::ENOTCONN));
            }
            break;
        }
        if buf.is_empty() {
            break;
        }
        // Let the peer know about the space we freed before sleeping.
        if copied > 0 {
            cleanup_rbuf(&stack, sk, t, copied);
        }
        if !t.wait(timeout, |t| {
            t.rx_readable() > 0
                || t.err != 0
                || t.shutdown & shutdown::RCV != 0
                || t.state == TcpState::Close
        }) {
            if copied > 0 {
                break;
            }
            return Err(os_err(errno::EAGAIN));
        }
    }
    if !peek && copied > 0 {
        rcv_space_adjust(&stack, t);
        cleanup_rbuf(&stack, sk, t, copied);
    }
    Ok(copied)
}

/// `tcp_cleanup_rbuf`: after reading, ACK if one is owed and the reader freed a lot of
/// the window (it at least doubled).
fn cleanup_rbuf(stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb, copied: usize) {
    let mut time_to_ack = false;
    if t.ack.pending & ack::SCHED != 0 {
        let pushed = t.ack.pending & ack::PUSHED2 != 0
            || (t.ack.pending & ack::PUSHED != 0
                && !t.ack.in_pingpong_mode(super::pingpong_thresh(stack)));
        if t.rcv_nxt.wrapping_sub(t.rcv_wup) > t.ack.rcv_mss
            || (copied > 0 && pushed && t.rmem_alloc == 0)
        {
            time_to_ack = true;
        }
    }
    if copied > 0 && !time_to_ack && t.shutdown & shutdown::RCV == 0 {
        let now_win = output::tcp_receive_window(t);
        if 2 * now_win <= t.window_clamp {
            let mss = t.ack.rcv_mss;
            let free = output::win_from_space(stack, t.rcvbuf.saturating_sub(t.rmem_alloc))
                .min(t.rcv_ssthresh);
            let new = if free < mss { 0 } else { free };
            if new > 0 && new >= 2 * now_win {
                time_to_ack = true;
            }
        }
    }
    if time_to_ack {
        output::tcp_send_ack(stack, sk, t);
    }
}

/// `tcp_rcv_space_adjust` (DRS, receive-buffer autotuning): once per receiver RTT
/// (`rcv_rtt_est`; nothing before the first estimate), size the receive buffer for
/// twice what the application read in that RTT, not counting what still waits in the
/// queue.
fn rcv_space_adjust(stack: &Stack, t: &mut Tcb) {
    let now = stack.now();
    let (space, seq, time) = t.rcvq_space;
    let rtt = Duration::from_micros(u64::from(t.rcv_rtt_us >> 3));
    if t.rcv_rtt_us == 0 || now.saturating_duration_since(time) < rtt {
        return;
    }
    let inq = t.rcv_nxt.wrapping_sub(t.copied_seq);
    let copied = t.copied_seq.wrapping_sub(seq).saturating_sub(inq);
    if copied > space {
        if stack.sysctl.tcp_moderate_rcvbuf() != 0 && !t.rcvbuf_locked {
            let mut rcvwin = (u64::from(copied) << 1) + 16 * u64::from(t.advmss);
            let grow = rcvwin * u64::from(copied - space) / u64::from(space.max(1));
            rcvwin += grow << 1;
            let rcvbuf = (rcvwin * 2).min(stack.sysctl.tcp_rmem_max().max(0) as u64) as usize;
            if rcvbuf > t.rcvbuf {
                t.rcvbuf = rcvbuf;
                t.window_clamp =
                    output::win_from_space(stack, rcvbuf).min(65535u32 << t.rcv_wscale);
            }
        }
        t.rcvq_space.0 = copied;
    }
    t.rcvq_space.1 = t.copied_seq;
    t.rcvq_space.2 = now;
}
