//! Routing (Linux's `net/ipv4/route.c` and `fib_frontend.c`): the FIB — `local` and
//! `main` tables, each a longest-prefix-match LC-trie ([`super::fib_trie`]) — and the
//! `dst`/`rtable` entries a lookup produces, which carry the output device, next hop,
//! preferred source and MTU.
//!
//! * [`Fib::route_output`] is `ip_route_output_key` (seed 000 §四:
//!   `ip_route_output_ports` → `fib_lookup` over the trie → `__mkroute_output`): the
//!   `local` table first (addresses of this host, via `lo`), then `main`.
//! * [`Fib::route_input`] is `ip_route_input_noref`: local delivery, broadcast,
//!   forwarding when `ip_forward` is on, or an error.
//! * Sockets cache their [`Dst`] and revalidate it with [`Fib::check`] (Linux's
//!   `__sk_dst_check`): every route change, address change or learned path MTU bumps
//!   the generation id, which makes every cached dst obsolete at once.
//! * Learned path MTUs (`ip_rt_update_pmtu`, from ICMP fragmentation-needed) are kept per
//!   destination with an expiry (`mtu_expires`, 600 s) and never below `min_pmtu` (552).

use crate::hash::HashMap;
use std::fmt;
use std::io;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use super::fib_trie::{FibTrie, MAX_PREFIXES};

/// Output route cache key: destination, source, output interface.
type DstKey = (Ipv4Addr, Option<Ipv4Addr>, Option<u32>);
use crate::dev::NetDevice;
use crate::time::Instant;
use crate::Stack;

/// Route types (Linux's `RTN_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RtnType {
    /// A gateway or direct route.
    Unicast,
    /// An address of this host: deliver locally.
    Local,
    /// A broadcast address: deliver locally and (on output) send as broadcast.
    Broadcast,
    /// Multicast.
    Multicast,
    /// Drop silently (`EINVAL` to local senders).
    Blackhole,
    /// Unreachable (`EHOSTUNREACH`, ICMP host unreachable).
    Unreachable,
    /// Administratively prohibited (`EACCES`, ICMP communication prohibited).
    Prohibit,
}

impl RtnType {
    /// The keyword `ip route` uses (empty for unicast).
    pub fn keyword(self) -> &'static str {
        match self {
            RtnType::Unicast => "",
            RtnType::Local => "local",
            RtnType::Broadcast => "broadcast",
            RtnType::Multicast => "multicast",
            RtnType::Blackhole => "blackhole",
            RtnType::Unreachable => "unreachable",
            RtnType::Prohibit => "prohibit",
        }
    }
}

/// Route scope (Linux's `RT_SCOPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Anywhere.
    Universe,
    /// On the attached link.
    Link,
    /// This host.
    Host,
}

/// Who installed a route (`proto` in `ip route`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteProto {
    /// Derived from an interface address.
    Kernel,
    /// Added by an administrator.
    Static,
    /// Added at boot.
    Boot,
}

/// Which table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TableId {
    /// `local` (255): addresses of this host and broadcasts.
    Local,
    /// `main` (254).
    Main,
}

/// One route (Linux's `fib_alias` + `fib_info` + `fib_nh`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FibRoute {
    /// Destination prefix.
    pub dst: Ipv4Addr,
    /// Prefix length.
    pub len: u8,
    /// Type.
    pub kind: RtnType,
    /// Gateway (next hop), if not directly connected.
    pub gateway: Option<Ipv4Addr>,
    /// Output device (ifindex).
    pub oif: Option<u32>,
    /// Preferred source address.
    pub prefsrc: Option<Ipv4Addr>,
    /// MTU metric (locks the path MTU for this route).
    pub mtu: Option<u32>,
    /// Priority (lower is preferred).
    pub metric: u32,
    /// Scope.
    pub scope: Scope,
    /// Origin.
    pub proto: RouteProto,
    /// Table.
    pub table: TableId,
}

impl FibRoute {
    /// A unicast route `dst/len` via `gateway` or directly on `oif`.
    pub fn unicast(
        dst: Ipv4Addr,
        len: u8,
        gateway: Option<Ipv4Addr>,
        oif: Option<u32>,
    ) -> FibRoute {
        FibRoute {
            dst,
            len,
            kind: RtnType::Unicast,
            gateway,
            oif,
            prefsrc: None,
            mtu: None,
            metric: 0,
            scope: if gateway.is_some() {
                Scope::Universe
            } else {
                Scope::Link
            },
            proto: RouteProto::Static,
            table: TableId::Main,
        }
    }
}

/// `dst_entry` + `rtable`: the result of a route lookup.
pub struct Dst {
    /// Route type.
    pub kind: RtnType,
    /// Output device (`lo` for local delivery).
    pub dev: Arc<NetDevice>,
    /// Destination the lookup was for.
    pub daddr: Ipv4Addr,
    /// Source address to use.
    pub saddr: Ipv4Addr,
    /// Gateway, if the next hop is not the destination.
    pub gateway: Option<Ipv4Addr>,
    /// MTU metric of the route, if set.
    pub mtu_metric: Option<u32>,
    /// Learned path MTU at creation, with its expiry.
    pub pmtu: Option<(u32, Instant)>,
    /// FIB generation this dst belongs to.
    pub genid: u32,
}

impl fmt::Debug for Dst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.describe())
    }
}

impl Dst {
    /// The next hop: the gateway, or the destination itself.
    #[inline]
    pub fn nexthop(&self) -> Ipv4Addr {
        self.gateway.unwrap_or(self.daddr)
    }

    /// `dst_mtu`: the learned path MTU while it lasts, else the route's MTU metric, else
    /// the device MTU.
    pub fn mtu(&self, now: Instant) -> u32 {
        let dev = self.dev.mtu();
        let base = self.mtu_metric.unwrap_or(dev).min(dev);
        match self.pmtu {
            Some((m, until)) if now < until => m.min(base),
            _ => base,
        }
    }

    /// Whether the route's MTU metric is locked (path MTU discovery off for it).
    pub fn mtu_locked(&self) -> bool {
        self.mtu_metric.is_some()
    }

    /// `ip route get` style: `10.0.0.2 via 10.0.0.254 dev eth0 src 10.0.0.1`.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        if !matches!(self.kind, RtnType::Unicast) {
            s.push_str(self.kind.keyword());
            s.push(' ');
        }
        s.push_str(&self.daddr.to_string());
        if let Some(g) = self.gateway {
            s.push_str(&format!(" via {g}"));
        }
        s.push_str(&format!(" dev {} src {}", self.dev.name(), self.saddr));
        if let Some((m, _)) = self.pmtu {
            s.push_str(&format!(" mtu {m}"));
        } else if let Some(m) = self.mtu_metric {
            s.push_str(&format!(" mtu lock {m}"));
        }
        s
    }
}

/// What an output lookup is for (Linux's `struct flowi4`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flowi4 {
    /// Destination.
    pub daddr: Option<Ipv4Addr>,
    /// Source, if bound.
    pub saddr: Option<Ipv4Addr>,
    /// Output interface, if bound (`SO_BINDTODEVICE`).
    pub oif: Option<u32>,
    /// TOS.
    pub tos: u8,
    /// Firewall mark.
    pub mark: u32,
}

/// What an input lookup decided.
#[derive(Clone, Debug)]
pub enum InputRoute {
    /// For this host.
    Local,
    /// A broadcast this host receives.
    Broadcast,
    /// To be forwarded along this dst.
    Forward(Arc<Dst>),
    /// Not routable: `code` is the ICMP unreachable code; `forwarding` says whether the
    /// host forwards (if not, the packet is dropped and counted as InAddrErrors).
    Unreachable {
        /// ICMP destination-unreachable code.
        code: u8,
        /// Whether forwarding is on.
        forwarding: bool,
    },
    /// Martian source or destination: drop.
    Martian,
}

struct Tables {
    local: FibTrie<Vec<FibRoute>>,
    main: FibTrie<Vec<FibRoute>>,
}

/// The FIB with its generation id, path-MTU exceptions and output route cache.
pub struct Fib {
    tables: RwLock<Tables>,
    genid: AtomicU32,
    pmtu: Mutex<HashMap<Ipv4Addr, (u32, Instant)>>,
    cache: Mutex<HashMap<DstKey, Arc<Dst>>>,
}

impl Default for Fib {
    fn default() -> Self {
        Fib {
            tables: RwLock::new(Tables {
                local: FibTrie::new(),
                main: FibTrie::new(),
            }),
            genid: AtomicU32::new(1),
            pmtu: Mutex::new(HashMap::default()),
            cache: Mutex::new(HashMap::default()),
        }
    }
}

impl fmt::Debug for Fib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.tables.read();
        f.debug_struct("Fib")
            .field("local", &t.local.len())
            .field("main", &t.main.len())
            .field("genid", &self.genid())
            .finish()
    }
}

fn err(kind: io::ErrorKind, msg: &str) -> io::Error {
    io::Error::new(kind, msg.to_string())
}

/// `ENETUNREACH`.
pub fn enetunreach() -> io::Error {
    io::Error::from_raw_os_error(101)
}

/// `EHOSTUNREACH`.
pub fn ehostunreach() -> io::Error {
    io::Error::from_raw_os_error(113)
}

/// The most entries the output route cache keeps before it is flushed.
pub const ROUTE_CACHE_MAX: usize = 4096;

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

impl Fib {
    /// The generation id; cached dsts of another generation are obsolete.
    pub fn genid(&self) -> u32 {
        self.genid.load(Ordering::Acquire)
    }

    /// Make every cached dst obsolete (`rt_cache_flush`).
    pub fn flush(&self) {
        self.genid.fetch_add(1, Ordering::AcqRel);
        self.cache.lock().clear();
    }

    /// `__sk_dst_check`: the cached dst if still current.
    #[inline]
    pub fn check(&self, dst: &Arc<Dst>) -> bool {
        dst.genid == self.genid()
    }

    /// Add a route (`ip route add`). `AlreadyExists` if an identical prefix, table and
    /// metric exist.
    pub fn add(&self, route: FibRoute) -> io::Result<()> {
        if route.len > 32 {
            return Err(err(io::ErrorKind::InvalidInput, "prefix length above 32"));
        }
        let key = u32::from(route.dst) & mask(route.len);
        {
            let mut t = self.tables.write();
            let table = match route.table {
                TableId::Local => &mut t.local,
                TableId::Main => &mut t.main,
            };
            let mut route = route;
            route.dst = Ipv4Addr::from(key);
            if let Some(list) = table.get_mut(key, route.len) {
                if list
                    .iter()
                    .any(|r| r.metric == route.metric && r.table == route.table)
                {
                    return Err(err(
                        io::ErrorKind::AlreadyExists,
                        "RTNETLINK answers: File exists",
                    ));
                }
                let pos = list.partition_point(|r| r.metric <= route.metric);
                list.insert(pos, route);
            } else {
                if table.len() >= MAX_PREFIXES {
                    return Err(err(
                        io::ErrorKind::OutOfMemory,
                        "RTNETLINK answers: Cannot allocate memory",
                    ));
                }
                table.insert(key, route.len, vec![route]);
            }
        }
        self.flush();
        Ok(())
    }

    /// Delete routes matching `dst/len` in `table` (and `metric`, if given). `NotFound`
    /// if none matched.
    pub fn del(
        &self,
        table: TableId,
        dst: Ipv4Addr,
        len: u8,
        metric: Option<u32>,
    ) -> io::Result<()> {
        let key = u32::from(dst) & mask(len);
        let removed = {
            let mut t = self.tables.write();
            let tr = match table {
                TableId::Local => &mut t.local,
                TableId::Main => &mut t.main,
            };
            match tr.get_mut(key, len) {
                None => false,
                Some(list) => {
                    let before = list.len();
                    match metric {
                        Some(m) => list.retain(|r| r.metric != m),
                        None => {
                            list.remove(0);
                        }
                    }
                    let changed = list.len() != before;
                    if list.is_empty() {
                        tr.remove(key, len);
                    }
                    changed
                }
            }
        };
        if !removed {
            return Err(err(
                io::ErrorKind::NotFound,
                "RTNETLINK answers: No such process",
            ));
        }
        self.flush();
        Ok(())
    }

    /// Delete every route whose output device is `ifindex` (`fib_disable_ip`).
    pub fn del_dev(&self, ifindex: u32) {
        {
            let mut t = self.tables.write();
            let t = &mut *t;
            for tr in [&mut t.local, &mut t.main] {
                let keys: Vec<(u32, u8)> = tr
                    .iter()
                    .filter(|(_, _, v)| v.iter().any(|r| r.oif == Some(ifindex)))
                    .map(|(k, l, _)| (k, l))
                    .collect();
                for (k, l) in keys {
                    if let Some(mut list) = tr.remove(k, l) {
                        list.retain(|r| r.oif != Some(ifindex));
                        if !list.is_empty() {
                            tr.insert(k, l, list);
                        }
                    }
                }
            }
        }
        self.flush();
    }

    /// Every route of a table, in prefix order (`ip route show table ...`).
    pub fn routes(&self, table: TableId) -> Vec<FibRoute> {
        let t = self.tables.read();
        let tr = match table {
            TableId::Local => &t.local,
            TableId::Main => &t.main,
        };
        tr.iter().flat_map(|(_, _, v)| v.iter().cloned()).collect()
    }

    /// `fib_lookup`: the best route for `daddr`, local table first.
    pub fn lookup(&self, daddr: Ipv4Addr) -> Option<FibRoute> {
        let t = self.tables.read();
        let a = u32::from(daddr);
        if let Some((_, _, v)) = t.local.lookup(a) {
            if let Some(r) = v.first() {
                return Some(r.clone());
            }
        }
        t.main.lookup(a).and_then(|(_, _, v)| v.first().cloned())
    }

    /// Record a learned path MTU for `daddr` (`__ip_rt_update_pmtu`). Values below
    /// `min_pmtu` are raised to it; a route with a locked MTU ignores it. Returns the MTU
    /// now in effect if it changed.
    pub fn update_pmtu(&self, stack: &Stack, daddr: Ipv4Addr, mtu: u32) -> Option<u32> {
        let now = stack.now();
        let min = stack.sysctl.route_min_pmtu().max(68) as u32;
        let mtu = mtu.max(min);
        if let Some(r) = self.lookup(daddr) {
            if r.mtu.is_some() {
                return None;
            }
            if let Some(dev) = r.oif.and_then(|i| stack.devs.by_index(i)) {
                if mtu >= dev.mtu() {
                    return None;
                }
            }
        }
        let expires = now + Duration::from_secs(stack.sysctl.route_mtu_expires().max(0) as u64);
        {
            let mut p = self.pmtu.lock();
            if let Some(&(old, until)) = p.get(&daddr) {
                if old <= mtu && now < until {
                    return None;
                }
            }
            p.insert(daddr, (mtu, expires));
        }
        self.flush();
        Some(mtu)
    }

    /// The learned path MTU for `daddr`, if current.
    pub fn pmtu(&self, daddr: Ipv4Addr, now: Instant) -> Option<u32> {
        self.pmtu
            .lock()
            .get(&daddr)
            .filter(|(_, until)| now < *until)
            .map(|(m, _)| *m)
    }

    /// `ip_route_output_key`: route a locally generated packet.
    ///
    /// Errors as Linux: no route → `ENETUNREACH`; an `unreachable` route →
    /// `EHOSTUNREACH`; `prohibit` → `EACCES`; `blackhole` → `EINVAL`; a source address
    /// that is not ours → `EINVAL` (`EADDRNOTAVAIL` for bind is the socket layer's).
    pub fn route_output(&self, stack: &Stack, fl: &Flowi4) -> io::Result<Arc<Dst>> {
        let daddr = fl.daddr.unwrap_or(Ipv4Addr::LOCALHOST);
        let key = (daddr, fl.saddr, fl.oif);
        if let Some(d) = self.cache.lock().get(&key) {
            if self.check(d) {
                return Ok(d.clone());
            }
        }
        let d = self.make_output(stack, daddr, fl)?;
        let mut c = self.cache.lock();
        if d.genid == self.genid() {
            if c.len() >= ROUTE_CACHE_MAX {
                c.clear();
            }
            c.insert(key, d.clone());
        }
        Ok(d)
    }

    fn make_output(&self, stack: &Stack, daddr: Ipv4Addr, fl: &Flowi4) -> io::Result<Arc<Dst>> {
        let genid = self.genid();
        let now = stack.now();
        if let Some(s) = fl.saddr {
            if !s.is_unspecified() && super::addr::is_local(stack, s).is_none() {
                return Err(io::Error::from_raw_os_error(22));
            }
        }
        let oif_dev = match fl.oif {
            Some(i) => Some(
                stack
                    .devs
                    .by_index(i)
                    .ok_or_else(|| io::Error::from_raw_os_error(19))?,
            ),
            None => None,
        };
        // Limited broadcast: out of the bound interface, or the default route's.
        if daddr.is_broadcast() || daddr.is_multicast() {
            let dev = match oif_dev {
                Some(d) => d,
                None => {
                    let r = self.lookup(daddr).ok_or_else(enetunreach)?;
                    r.oif
                        .and_then(|i| stack.devs.by_index(i))
                        .ok_or_else(enetunreach)?
                }
            };
            let saddr = fl
                .saddr
                .filter(|s| !s.is_unspecified())
                .or_else(|| super::addr::select_addr(&dev, daddr, Scope::Link))
                .unwrap_or(Ipv4Addr::UNSPECIFIED);
            return Ok(Arc::new(Dst {
                kind: if daddr.is_multicast() {
                    RtnType::Multicast
                } else {
                    RtnType::Broadcast
                },
                dev,
                daddr,
                saddr,
                gateway: None,
                mtu_metric: None,
                pmtu: None,
                genid,
            }));
        }
        let r = self.lookup(daddr).ok_or_else(enetunreach)?;
        let dev = match r.kind {
            RtnType::Local => super::addr::loopback(stack).ok_or_else(enetunreach)?,
            RtnType::Unreachable => return Err(ehostunreach()),
            RtnType::Prohibit => return Err(io::Error::from_raw_os_error(13)),
            RtnType::Blackhole => return Err(io::Error::from_raw_os_error(22)),
            _ => {
                let dev = r
                    .oif
                    .and_then(|i| stack.devs.by_index(i))
                    .ok_or_else(enetunreach)?;
                if let Some(o) = &oif_dev {
                    if o.ifindex != dev.ifindex && r.gateway.is_none() {
                        // Bound to another interface: treat the destination as on-link there.
                        o.clone()
                    } else {
                        dev
                    }
                } else {
                    dev
                }
            }
        };
        if !dev.is_up() {
            return Err(enetunreach());
        }
        let nexthop = r.gateway.unwrap_or(daddr);
        let saddr = match fl.saddr.filter(|s| !s.is_unspecified()) {
            Some(s) => s,
            None => match r.kind {
                RtnType::Local => daddr,
                _ => r
                    .prefsrc
                    .or_else(|| super::addr::select_addr(&dev, nexthop, r.scope))
                    .or_else(|| super::addr::any_addr(stack))
                    .unwrap_or(Ipv4Addr::UNSPECIFIED),
            },
        };
        let pmtu = self
            .pmtu
            .lock()
            .get(&daddr)
            .copied()
            .filter(|(_, until)| now < *until);
        Ok(Arc::new(Dst {
            kind: r.kind,
            dev,
            daddr,
            saddr,
            gateway: r.gateway,
            mtu_metric: r.mtu,
            pmtu,
            genid,
        }))
    }

    /// `ip_route_input_noref`: route a received packet.
    pub fn route_input(
        &self,
        stack: &Stack,
        daddr: Ipv4Addr,
        saddr: Ipv4Addr,
        dev: &Arc<NetDevice>,
    ) -> InputRoute {
        if saddr.is_multicast()
            || saddr.is_broadcast()
            || (saddr.is_loopback() && !dev.is_loopback())
        {
            return InputRoute::Martian;
        }
        if daddr.is_broadcast() {
            return InputRoute::Broadcast;
        }
        if daddr.is_loopback() && !dev.is_loopback() {
            return InputRoute::Martian;
        }
        let forwarding = stack.sysctl.ip_forward() != 0;
        match self.lookup(daddr) {
            Some(r) if r.kind == RtnType::Local => InputRoute::Local,
            Some(r) if r.kind == RtnType::Broadcast => InputRoute::Broadcast,
            _ if daddr.is_multicast() => InputRoute::Martian,
            _ if !forwarding => InputRoute::Unreachable {
                code: 1,
                forwarding: false,
            },
            None => InputRoute::Unreachable {
                code: 0,
                forwarding: true,
            },
            Some(r) => match r.kind {
                RtnType::Unreachable => InputRoute::Unreachable {
                    code: 1,
                    forwarding: true,
                },
                RtnType::Prohibit => InputRoute::Unreachable {
                    code: 13,
                    forwarding: true,
                },
                RtnType::Blackhole => InputRoute::Martian,
                _ => match self.route_output(
                    stack,
                    &Flowi4 {
                        daddr: Some(daddr),
                        ..Flowi4::default()
                    },
                ) {
                    Ok(d) => InputRoute::Forward(d),
                    Err(_) => InputRoute::Unreachable {
                        code: 0,
                        forwarding: true,
                    },
                },
            },
        }
    }
}

/// `ip route` style line for a route.
pub fn format_route(stack: &Stack, r: &FibRoute) -> String {
    let mut s = String::new();
    if r.kind != RtnType::Unicast {
        s.push_str(r.kind.keyword());
        s.push(' ');
    }
    if r.len == 0 {
        s.push_str("default");
    } else if r.len == 32 {
        s.push_str(&r.dst.to_string());
    } else {
        s.push_str(&format!("{}/{}", r.dst, r.len));
    }
    if let Some(g) = r.gateway {
        s.push_str(&format!(" via {g}"));
    }
    if let Some(d) = r.oif.and_then(|i| stack.devs.by_index(i)) {
        s.push_str(&format!(" dev {}", d.name()));
    }
    match r.proto {
        RouteProto::Kernel => s.push_str(" proto kernel"),
        RouteProto::Boot => s.push_str(" proto boot"),
        RouteProto::Static => s.push_str(" proto static"),
    }
    match r.scope {
        Scope::Link => s.push_str(" scope link"),
        Scope::Host => s.push_str(" scope host"),
        Scope::Universe => {}
    }
    if let Some(p) = r.prefsrc {
        s.push_str(&format!(" src {p}"));
    }
    if r.metric != 0 {
        s.push_str(&format!(" metric {}", r.metric));
    }
    if let Some(m) = r.mtu {
        s.push_str(&format!(" mtu lock {m}"));
    }
    s
}
