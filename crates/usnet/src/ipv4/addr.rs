//! Interface addresses (Linux's `net/ipv4/devinet.c` and `fib_add_ifaddr`): adding an
//! address installs its `local` and `broadcast` routes in the local table and the
//! prefix route in the main table, as `ip addr add` does; [`select_addr`] is
//! `inet_select_addr`, the source-address choice for outgoing packets.

use std::io;
use std::net::Ipv4Addr;
use std::sync::Arc;

use super::route::{FibRoute, RouteProto, RtnType, Scope, TableId};
use crate::dev::{flags, IfAddr, NetDevice};
use crate::Stack;

/// The ephemeral ports to try, in order (`inet_get_local_port_range` and the random
/// starting offset of `inet_hash_connect` / `inet_csk_find_open_port`): every port of
/// `net.ipv4.ip_local_port_range`, from a random one, wrapping around.
pub(crate) fn local_ports(stack: &Stack) -> impl Iterator<Item = u16> {
    let lo = stack.sysctl.ip_local_port_range_min().clamp(1, 65535) as u32;
    let hi = stack
        .sysctl
        .ip_local_port_range_max()
        .clamp(lo as i64, 65535) as u32;
    let n = hi - lo + 1;
    let start = stack.rng.lock().below(n);
    (0..n).map(move |i| (lo + (start + i) % n) as u16)
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

fn host_route(
    dst: Ipv4Addr,
    kind: RtnType,
    dev: &NetDevice,
    src: Ipv4Addr,
    scope: Scope,
) -> FibRoute {
    FibRoute {
        dst,
        len: 32,
        kind,
        gateway: None,
        oif: Some(dev.ifindex),
        prefsrc: Some(src),
        mtu: None,
        metric: 0,
        scope,
        proto: RouteProto::Kernel,
        table: TableId::Local,
    }
}

/// `ip addr add ADDR/LEN dev DEV`: assign the address and install its routes.
pub fn addr_add(
    stack: &Stack,
    dev: &Arc<NetDevice>,
    addr: Ipv4Addr,
    prefix_len: u8,
) -> io::Result<()> {
    if prefix_len > 32 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "prefix length above 32",
        ));
    }
    if addr.is_unspecified() || addr.is_multicast() || addr.is_broadcast() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{addr} cannot be an interface address"),
        ));
    }
    {
        let mut ip = dev.ip.write();
        if ip.iter().any(|a| a.addr == addr) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "RTNETLINK answers: File exists",
            ));
        }
        ip.push(IfAddr { addr, prefix_len });
    }
    let fib = &stack.ipv4.fib;
    let m = mask(prefix_len);
    let net = Ipv4Addr::from(u32::from(addr) & m);
    let bcast = Ipv4Addr::from(u32::from(addr) | !m);
    let is_lo = dev.flags() & flags::LOOPBACK != 0;
    let _ = fib.add(host_route(addr, RtnType::Local, dev, addr, Scope::Host));
    if prefix_len < 31 {
        let _ = fib.add(host_route(
            bcast,
            RtnType::Broadcast,
            dev,
            addr,
            Scope::Link,
        ));
    }
    if prefix_len < 32 {
        let _ = fib.add(FibRoute {
            dst: net,
            len: prefix_len,
            kind: if is_lo {
                RtnType::Local
            } else {
                RtnType::Unicast
            },
            gateway: None,
            oif: Some(dev.ifindex),
            prefsrc: Some(addr),
            mtu: None,
            metric: 0,
            scope: if is_lo { Scope::Host } else { Scope::Link },
            proto: RouteProto::Kernel,
            table: if is_lo { TableId::Local } else { TableId::Main },
        });
    }
    Ok(())
}

/// `ip addr del ADDR/LEN dev DEV`: remove the address and its routes.
pub fn addr_del(
    stack: &Stack,
    dev: &Arc<NetDevice>,
    addr: Ipv4Addr,
    prefix_len: u8,
) -> io::Result<()> {
    {
        let mut ip = dev.ip.write();
        let before = ip.len();
        ip.retain(|a| !(a.addr == addr && a.prefix_len == prefix_len));
        if ip.len() == before {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "RTNETLINK answers: Cannot assign requested address",
            ));
        }
    }
    let fib = &stack.ipv4.fib;
    let m = mask(prefix_len);
    let _ = fib.del(TableId::Local, addr, 32, None);
    if prefix_len < 31 {
        let _ = fib.del(
            TableId::Local,
            Ipv4Addr::from(u32::from(addr) | !m),
            32,
            None,
        );
    }
    if prefix_len < 32 {
        let table = if dev.flags() & flags::LOOPBACK != 0 {
            TableId::Local
        } else {
            TableId::Main
        };
        let _ = fib.del(table, Ipv4Addr::from(u32::from(addr) & m), prefix_len, None);
    }
    fib.flush();
    Ok(())
}

/// The device holding `addr`, if it is one of ours (`inet_addr_type == RTN_LOCAL`).
pub fn is_local(stack: &Stack, addr: Ipv4Addr) -> Option<Arc<NetDevice>> {
    match stack.ipv4.fib.lookup(addr) {
        Some(r) if r.kind == RtnType::Local => r.oif.and_then(|i| stack.devs.by_index(i)),
        _ => None,
    }
}

/// Whether `addr` is a broadcast address of one of our subnets (or the limited
/// broadcast).
pub fn is_broadcast(stack: &Stack, addr: Ipv4Addr) -> bool {
    addr.is_broadcast()
        || matches!(stack.ipv4.fib.lookup(addr), Some(r) if r.kind == RtnType::Broadcast)
}

/// `inet_select_addr`: the address of `dev` on the subnet of `dst`, else its first
/// address whose scope fits.
pub fn select_addr(dev: &NetDevice, dst: Ipv4Addr, _scope: Scope) -> Option<Ipv4Addr> {
    let ip = dev.ip.read();
    ip.iter()
        .find(|a| {
            let m = mask(a.prefix_len);
            u32::from(a.addr) & m == u32::from(dst) & m
        })
        .or_else(|| ip.first())
        .map(|a| a.addr)
}

/// The address of the interface that routes to `dst` (the source for a reply to a
/// broadcast).
pub fn select_addr_for(stack: &Stack, dst: Ipv4Addr) -> Option<Ipv4Addr> {
    stack
        .ipv4
        .fib
        .route_output(
            stack,
            &super::route::Flowi4 {
                daddr: Some(dst),
                ..Default::default()
            },
        )
        .ok()
        .map(|d| d.saddr)
}

/// Some non-loopback address of this host.
pub fn any_addr(stack: &Stack) -> Option<Ipv4Addr> {
    stack
        .devs
        .list()
        .iter()
        .filter(|d| d.flags() & flags::LOOPBACK == 0)
        .find_map(|d| d.ip.read().first().map(|a| a.addr))
}

/// The loopback device.
pub fn loopback(stack: &Stack) -> Option<Arc<NetDevice>> {
    stack
        .devs
        .list()
        .into_iter()
        .find(|d| d.flags() & flags::LOOPBACK != 0)
}
