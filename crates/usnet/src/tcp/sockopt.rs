//! Socket options at `SOL_SOCKET`, `IPPROTO_IP` and `IPPROTO_TCP` for TCP sockets
//! (Linux's `do_tcp_setsockopt` and the socket-level options it sees), with Linux's
//! defaults, limits and errnos.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::*;

/// Socket options (`setsockopt` at `SOL_SOCKET`, `IPPROTO_IP`, `IPPROTO_TCP`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SockOpt {
    /// `TCP_NODELAY`.
    NoDelay(bool),
    /// `TCP_CORK`.
    Cork(bool),
    /// `TCP_MAXSEG`.
    MaxSeg(u32),
    /// `TCP_QUICKACK`.
    QuickAck(bool),
    /// `SO_SNDBUF` (bytes; Linux doubles it).
    SndBuf(usize),
    /// `SO_RCVBUF` (bytes; doubled).
    RcvBuf(usize),
    /// `SO_REUSEADDR`.
    ReuseAddr(bool),
    /// `SO_REUSEPORT`: several sockets may bind and listen on one address and port;
    /// incoming connections are spread over the listeners by a hash of their addresses.
    ReusePort(bool),
    /// `SO_KEEPALIVE`.
    KeepAlive(bool),
    /// `TCP_KEEPIDLE`.
    KeepIdle(Duration),
    /// `TCP_KEEPINTVL`.
    KeepIntvl(Duration),
    /// `TCP_KEEPCNT`.
    KeepCnt(u32),
    /// `SO_LINGER`.
    Linger(Option<Duration>),
    /// `TCP_USER_TIMEOUT`.
    UserTimeout(Duration),
    /// `SO_PRIORITY`.
    Priority(u32),
    /// `SO_MARK`.
    Mark(u32),
    /// `SO_MAX_PACING_RATE` (bytes per second; `u64::MAX` for none): caps the pacing
    /// rate and, without the fq qdisc, turns TCP's internal pacing on.
    MaxPacingRate(u64),
    /// `SO_BUSY_POLL`: µs to busy-poll before sleeping in a blocking call.
    BusyPoll(u32),
    /// `IP_TTL`.
    Ttl(u8),
    /// `IP_TOS`.
    Tos(u8),
    /// `IP_MTU_DISCOVER`.
    MtuDiscover(crate::ipv4::output::PmtuDisc),
    /// `TCP_CONGESTION`.
    Congestion(String),
    /// `TCP_SYNCNT`.
    SynCnt(u32),
    /// `TCP_NOTSENT_LOWAT`: writers wait while this many bytes are not yet sent (0:
    /// `net.ipv4.tcp_notsent_lowat`), and are woken below half of it.
    NotsentLowat(u32),
    /// `SO_RCVLOWAT`: a read waits for this many bytes (or the end of the stream), and
    /// the socket reads as readable only once they are there.
    RcvLowat(u32),
}

impl SockOpt {
    pub(super) fn apply(self, stack: &Stack, sk: &Arc<TcpSock>, t: &mut Tcb) -> io::Result<()> {
        match self {
            SockOpt::NoDelay(on) => {
                if on {
                    t.nonagle |= nagle::OFF | nagle::PUSH;
                    sendmsg::tcp_push_pending_frames(stack, sk, t);
                } else {
                    t.nonagle &= !nagle::OFF;
                }
            }
            SockOpt::Cork(on) => {
                if on {
                    t.nonagle |= nagle::CORK;
                } else {
                    t.nonagle &= !nagle::CORK;
                    if t.nonagle & nagle::OFF != 0 {
                        t.nonagle |= nagle::PUSH;
                    }
                    sendmsg::tcp_push_pending_frames(stack, sk, t);
                }
            }
            SockOpt::MaxSeg(m) => {
                if !(TCP_MIN_MSS..=65535).contains(&m) && m != 0 {
                    return Err(os_err(errno::EINVAL));
                }
                t.user_mss = (m != 0).then_some(m);
            }
            SockOpt::QuickAck(on) => {
                if on {
                    t.ack.exit_pingpong_mode();
                    if t.ack.pending & ack::SCHED != 0 {
                        output::tcp_send_ack(stack, sk, t);
                    }
                } else {
                    t.ack.enter_pingpong_mode(super::pingpong_thresh(stack));
                }
            }
            SockOpt::SndBuf(b) => {
                let max = stack.sysctl.wmem_max().max(0) as usize;
                t.sndbuf = (b.min(max) * 2).max(4608);
                t.sndbuf_locked = true;
                sk.wq.wake_all();
            }
            SockOpt::RcvBuf(b) => {
                let max = stack.sysctl.rmem_max().max(0) as usize;
                t.rcvbuf = (b.min(max) * 2).max(2304);
                t.rcvbuf_locked = true;
            }
            SockOpt::ReuseAddr(on) => t.reuseaddr = on,
            SockOpt::ReusePort(on) => t.reuseport = on,
            SockOpt::KeepAlive(on) => {
                t.keepalive = on;
                timer::reset_keepalive(stack, sk, t);
            }
            SockOpt::KeepIdle(d) => {
                if d.is_zero() || d > Duration::from_secs(32767) {
                    return Err(os_err(errno::EINVAL));
                }
                t.keepalive_time = Some(d);
                timer::reset_keepalive(stack, sk, t);
            }
            SockOpt::KeepIntvl(d) => {
                if d.is_zero() || d > Duration::from_secs(32767) {
                    return Err(os_err(errno::EINVAL));
                }
                t.keepalive_intvl = Some(d);
            }
            SockOpt::KeepCnt(n) => {
                if n == 0 || n > 127 {
                    return Err(os_err(errno::EINVAL));
                }
                t.keepalive_probes = Some(n as u8);
            }
            SockOpt::Linger(l) => t.linger = l,
            SockOpt::UserTimeout(d) => {
                t.user_timeout_ms = d.as_millis().min(u128::from(u32::MAX)) as u32;
            }
            SockOpt::Priority(p) => t.ip_opts.priority = p,
            SockOpt::MaxPacingRate(r) => {
                t.max_pacing_rate = r;
                if r != u64::MAX {
                    // TCP paces itself unless the fq qdisc has claimed the socket.
                    sk.wmem.pacing.request_internal();
                }
                output::tcp_update_pacing_rate(stack, t);
            }
            SockOpt::Mark(m) => t.ip_opts.mark = m,
            SockOpt::BusyPoll(us) => sk.busy_poll_us.store(us, Ordering::Relaxed),
            SockOpt::Ttl(ttl) => {
                if ttl == 0 {
                    return Err(os_err(errno::EINVAL));
                }
                t.ip_opts.ttl = Some(ttl);
            }
            SockOpt::Tos(tos) => t.ip_opts.tos = tos & !3,
            SockOpt::MtuDiscover(m) => t.ip_opts.pmtudisc = m,
            SockOpt::Congestion(name) => {
                let mut cc = cong::by_name(&name).ok_or_else(|| os_err(2))?; // ENOENT
                cc.init(&mut cong::CcCtx::of(t, stack.now()));
                if cc.wants_pacing() {
                    sk.wmem.pacing.request_internal();
                }
                t.cc = cc;
            }
            SockOpt::SynCnt(n) => {
                if n == 0 || n > 127 {
                    return Err(os_err(errno::EINVAL));
                }
                t.syn_retries = Some(n as u8);
            }
            SockOpt::NotsentLowat(v) => {
                t.notsent_lowat = v;
                // The limit may have risen: wake writers it now lets in
                // (sk_stream_write_space).
                if sendmsg::stream_is_writeable(stack, t) {
                    sk.wq.wake_all();
                }
            }
            SockOpt::RcvLowat(v) => {
                // tcp_set_rcvlowat: at most half the buffer it may have, and the buffer
                // grows to hold it unless SO_RCVBUF fixed it.
                let cap = if t.rcvbuf_locked {
                    t.rcvbuf / 2
                } else {
                    stack.sysctl.tcp_rmem_max().max(0) as usize / 2
                };
                let v = (v as usize).min(cap).max(1) as u32;
                t.rcvlowat = v;
                if !t.rcvbuf_locked {
                    let space = output::space_from_win(stack, v);
                    if space > t.rcvbuf {
                        t.rcvbuf = space;
                        t.window_clamp = v;
                    }
                }
                if t.epollin_ready(t.rcvlowat) {
                    sk.wq.wake_all();
                }
            }
        }
        Ok(())
    }
}
