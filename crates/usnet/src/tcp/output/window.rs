//! The receive window a segment advertises (`tcp_select_window`, `__tcp_select_window`,
//! `tcp_select_initial_window`): what the buffer can take, scaled, never shrinking what
//! was offered.

use super::super::{Tcb, TcpExt, TCP_MAX_WSCALE};
use crate::Stack;

/// `tcp_select_window`: the window to advertise, never shrinking what was offered.
pub fn tcp_select_window(stack: &Stack, t: &mut Tcb) -> u16 {
    let old = t.rcv_wnd;
    let cur = tcp_receive_window(t);
    let mut new = select_window_raw(stack, t);
    if new < cur {
        if new == 0 {
            stack.tcp.mib.inc(TcpExt::TCPWantZeroWindowAdv);
        }
        let align = 1u32 << t.rcv_wscale;
        new = cur.div_ceil(align) * align;
    }
    t.rcv_wnd = new;
    t.rcv_wup = t.rcv_nxt;
    let max = 65535u32 << t.rcv_wscale;
    let w = new.min(max) >> t.rcv_wscale;
    if w == 0 {
        if old != 0 {
            stack.tcp.mib.inc(TcpExt::TCPToZeroWindowAdv);
        }
    } else if old == 0 {
        stack.tcp.mib.inc(TcpExt::TCPFromZeroWindowAdv);
    }
    w as u16
}

/// `tcp_receive_window`: what is left of the window advertised.
pub fn tcp_receive_window(t: &Tcb) -> u32 {
    let w = t.rcv_wup.wrapping_add(t.rcv_wnd).wrapping_sub(t.rcv_nxt) as i32;
    w.max(0) as u32
}

/// `tcp_win_from_space`: usable window from buffer space (`tcp_adv_win_scale`).
pub fn win_from_space(stack: &Stack, space: usize) -> u32 {
    let s = stack.sysctl.tcp_adv_win_scale();
    let space = space as i64;
    let w = if s <= 0 {
        space >> (-s)
    } else {
        space - (space >> s)
    };
    w.clamp(0, i64::from(u32::MAX)) as u32
}

/// `tcp_space_from_win`: buffer space that yields a usable window of `win` bytes.
pub fn space_from_win(stack: &Stack, win: u32) -> usize {
    let s = stack.sysctl.tcp_adv_win_scale();
    let win = u64::from(win);
    let space = if s <= 0 {
        win << (-s).min(31)
    } else {
        let s = s.min(31);
        (win << s).div_ceil((1u64 << s) - 1)
    };
    space.min(usize::MAX as u64) as usize
}

/// `__tcp_select_window`: the window the buffer allows now, before the never-shrink
/// rule (drops the quick-ACK budget when the buffer is over half full, as Linux).
pub fn select_window_raw(stack: &Stack, t: &mut Tcb) -> u32 {
    let mut mss = t.ack.rcv_mss;
    let free_space = win_from_space(stack, t.rcvbuf.saturating_sub(t.rmem_alloc));
    let allowed = win_from_space(stack, t.rcvbuf);
    let full = t.window_clamp.min(allowed);
    if mss > full {
        mss = full;
        if mss == 0 {
            return 0;
        }
    }
    let mut free = free_space;
    if free < full >> 1 {
        t.ack.quick = 0;
        free &= !((1u32 << t.rcv_wscale) - 1);
        if free < allowed >> 4 || free < mss {
            return 0;
        }
    }
    if free > t.rcv_ssthresh {
        free = t.rcv_ssthresh;
    }
    if t.rcv_wscale > 0 {
        let a = 1u32 << t.rcv_wscale;
        free.div_ceil(a) * a
    } else {
        let window = t.rcv_wnd;
        if window + mss <= free || window > free {
            (free / mss.max(1)) * mss.max(1)
        } else if mss == full && free > window + (full >> 1) {
            free
        } else {
            window
        }
    }
}

/// `tcp_select_initial_window`: the first window and our window scale.
pub fn select_initial_window(stack: &Stack, t: &mut Tcb, wscale_ok: bool) {
    let mss = t.advmss.max(1);
    let mut clamp = if t.window_clamp == 0 {
        65535u32 << TCP_MAX_WSCALE
    } else {
        t.window_clamp
    };
    let mut space = win_from_space(stack, t.rcvbuf).min(clamp);
    if space > mss {
        space = (space / mss) * mss;
    }
    t.rcv_wnd = space.min(65535);
    t.rcv_wscale = 0;
    if wscale_ok {
        let mut s = space
            .max(stack.sysctl.tcp_rmem_max().max(0) as u32)
            .max(stack.sysctl.rmem_max().max(0) as u32);
        s = s.min(clamp);
        let ilog2 = 31 - s.max(1).leading_zeros();
        t.rcv_wscale = (ilog2.saturating_sub(15) as u8).min(TCP_MAX_WSCALE);
    }
    clamp = clamp.min(65535u32 << t.rcv_wscale);
    t.window_clamp = clamp;
    t.rcv_ssthresh = t.rcv_wnd;
}
