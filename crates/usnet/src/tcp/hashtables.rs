//! The socket tables of a stack (Linux's `inet_hashtables.c` and `inet_csk_get_port`):
//! established sockets by four-tuple (`ehash`), listeners by port (`lhash`), bound ports
//! (`bhash`) with their conflict rules, and ephemeral port selection.

use super::*;

/// A listener in `lhash`: its bound address and `SO_REUSEPORT` flag (fixed while it
/// listens) beside the socket.
#[derive(Clone)]
pub struct ListenEntry {
    /// Bound address (0.0.0.0 for any).
    pub ip: Ipv4Addr,
    /// In an `SO_REUSEPORT` group.
    pub reuseport: bool,
    /// The listening socket.
    pub sk: Arc<TcpSock>,
}

/// Per-stack TCP state: socket tables, counters, the default congestion control.
pub struct TcpTables {
    /// Established (and connecting) sockets by (local, remote) (`ehash`).
    pub ehash: RwLock<HashMap<(SocketAddrV4, SocketAddrV4), Arc<TcpSock>>>,
    /// Listening sockets by local port (`lhash2`), with what the lookup needs so it
    /// never takes a listener's lock (a busy application may hold it).
    pub lhash: RwLock<HashMap<u16, Vec<ListenEntry>>>,
    /// Ports in use by bound sockets, with their owners (`bhash`).
    pub bhash: Mutex<HashMap<u16, Vec<Weak<TcpSock>>>>,
    /// TIME_WAIT entries.
    pub tw: minisocks::TimeWaitTable,
    /// `Tcp:` counters.
    pub snmp: TcpMib,
    /// `TcpExt:` counters.
    pub mib: TcpExtMib,
    /// Name of the default congestion control (`net.ipv4.tcp_congestion_control`).
    pub default_cc: RwLock<String>,
    /// Secret for ISNs and SYN cookies (RFC 6528).
    pub secret: [u64; 2],
    /// Sockets TSQ wants to run (the per-CPU TSQ tasklet list).
    pub tsq_list: Mutex<Vec<Arc<TcpSock>>>,
    /// Page fragments `tcp_sendmsg` filled, kept to be refilled once every skb using
    /// them is freed (the page allocator's role for `sk_page_frag`).
    pub page_pool: sendmsg::PagePool,
}

impl fmt::Debug for TcpTables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpTables")
            .field("ehash", &self.ehash.read().len())
            .field("listeners", &self.lhash.read().len())
            .finish()
    }
}

impl TcpTables {
    /// Set `net.ipv4.tcp_congestion_control`: the algorithm new sockets start with
    /// (`ENOENT` for an unknown name, as Linux).
    pub fn set_congestion_control(&self, name: &str) -> io::Result<()> {
        if cong::by_name(name).is_none() {
            return Err(os_err(2));
        }
        *self.default_cc.write() = name.to_string();
        Ok(())
    }

    /// `net.ipv4.tcp_congestion_control`.
    pub fn congestion_control(&self) -> String {
        self.default_cc.read().clone()
    }

    /// Empty tables keyed by `secret`.
    pub fn new(secret: [u64; 2]) -> TcpTables {
        let snmp = TcpMib::default();
        snmp.set(Tcp::RtoAlgorithm, 1);
        snmp.set(Tcp::RtoMin, TCP_RTO_MIN.as_millis() as u64);
        snmp.set(Tcp::RtoMax, TCP_RTO_MAX.as_millis() as u64);
        snmp.set(Tcp::MaxConn, u64::MAX);
        TcpTables {
            ehash: RwLock::new(HashMap::default()),
            lhash: RwLock::new(HashMap::default()),
            bhash: Mutex::new(HashMap::default()),
            tw: minisocks::TimeWaitTable::default(),
            snmp,
            mib: TcpExtMib::default(),
            default_cc: RwLock::new("cubic".to_string()),
            secret,
            page_pool: sendmsg::PagePool::default(),
            tsq_list: Mutex::new(Vec::new()),
        }
    }

    /// Every socket (listening and connected), for `ss`.
    pub fn sockets(&self) -> Vec<Arc<TcpSock>> {
        let mut v: Vec<Arc<TcpSock>> = self
            .lhash
            .read()
            .values()
            .flatten()
            .map(|e| e.sk.clone())
            .collect();
        v.extend(self.ehash.read().values().cloned());
        v
    }

    /// `CurrEstab`: connections in ESTABLISHED or CLOSE_WAIT.
    pub fn curr_estab(&self) -> u64 {
        self.ehash
            .read()
            .values()
            .filter(|s| {
                s.tcb
                    .try_lock()
                    .map(|t| matches!(t.state, TcpState::Established | TcpState::CloseWait))
                    .unwrap_or(true)
            })
            .count() as u64
    }
}

/// Register TCP with IPv4 (`inet_add_protocol(&tcp_protocol, IPPROTO_TCP)`).
pub fn init(stack: &Stack) {
    let _ = stack.ipv4.tcp_rcv.set(Box::new(input::tcp_v4_rcv));
    let _ = stack.ipv4.tcp_err.set(Box::new(input::tcp_v4_err));
    let _ = stack.ipv4.tcp_rst.set(Box::new(|stack, skb| {
        output::tcp_v4_send_reset_to(stack, skb)
    }));
}

// ---------------------------------------------------------------------------
// The socket calls (process context).
// ---------------------------------------------------------------------------

pub(super) fn bind_conflict(
    stack: &Stack,
    sk: &Arc<TcpSock>,
    addr: SocketAddrV4,
    reuse: bool,
) -> bool {
    let b = stack.tcp.bhash.lock();
    let Some(v) = b.get(&addr.port()) else {
        return false;
    };
    v.iter().filter_map(|w| w.upgrade()).any(|o| {
        if Arc::ptr_eq(&o, sk) {
            return false;
        }
        let (ol, ost, oreuse, oport) = o.with_tcb(|t| (t.local, t.state, t.reuseaddr, t.reuseport));
        let same = ol.ip().is_unspecified() || addr.ip().is_unspecified() || ol.ip() == addr.ip();
        // SO_REUSEADDR on both lets a port be reused unless the other is listening;
        // SO_REUSEPORT on both lets it be shared, listening or not.
        let mine = sk.with_tcb(|t| t.reuseport);
        same && !(reuse && oreuse && ost != TcpState::Listen) && !(mine && oport)
    })
}

pub(super) fn bhash_add(stack: &Stack, sk: &Arc<TcpSock>, port: u16) {
    let mut b = stack.tcp.bhash.lock();
    let v = b.entry(port).or_default();
    v.retain(|w| w.strong_count() > 0);
    v.push(Arc::downgrade(sk));
}

pub(crate) fn bhash_add_child(stack: &Stack, sk: &Arc<TcpSock>, port: u16) {
    bhash_add(stack, sk, port);
}

pub(crate) fn bhash_remove(stack: &Stack, sk: &TcpSock, port: u16) {
    let mut b = stack.tcp.bhash.lock();
    if let Some(v) = b.get_mut(&port) {
        v.retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), sk));
        if v.is_empty() {
            b.remove(&port);
        }
    }
}

/// Pick a free ephemeral port for a connection to `remote` (`inet_hash_connect`): a
/// port is free for this 4-tuple if no established socket uses the same tuple and no
/// listener or exclusively bound socket holds it.
pub(super) fn pick_port(
    stack: &Stack,
    local_ip: Ipv4Addr,
    remote: SocketAddrV4,
) -> io::Result<u16> {
    let ports = crate::ipv4::addr::local_ports(stack);
    let ehash = stack.tcp.ehash.read();
    let bhash = stack.tcp.bhash.lock();
    for port in ports {
        if bhash
            .get(&port)
            .is_some_and(|v| v.iter().any(|w| w.strong_count() > 0))
        {
            continue;
        }
        let local = SocketAddrV4::new(local_ip, port);
        if ehash.contains_key(&(local, remote)) || stack.tcp.tw.contains(local, remote) {
            continue;
        }
        return Ok(port);
    }
    Err(os_err(errno::EADDRNOTAVAIL))
}
