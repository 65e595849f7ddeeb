//! The per-CPU input backlog (Linux's `softnet_data.input_pkt_queue` and
//! `process_backlog`): `netif_rx` queues packets from contexts that are not a NAPI poll
//! (the loopback device, software tunnels), bounded by `netdev_max_backlog` (drops are
//! counted in `softnet_stat`), and a NAPI instance delivers them in NET_RX.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::napi::{napi_complete_done, napi_schedule, Napi, NapiPoll};
use super::rx::netif_receive_skb;
use super::NetDevice;
use crate::skb::Skb;
use crate::Stack;

/// The backlog queue and its NAPI context.
pub struct Backlog {
    napi: Napi,
    queue: Mutex<VecDeque<(Arc<NetDevice>, Skb)>>,
    me: Weak<Backlog>,
}

impl std::fmt::Debug for Backlog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Backlog({} queued)", self.queue.lock().len())
    }
}

impl Backlog {
    /// A new, empty backlog with NAPI weight `weight`.
    pub fn new(weight: usize) -> Arc<Backlog> {
        Arc::new_cyclic(|me| Backlog {
            napi: Napi::new(weight),
            queue: Mutex::new(VecDeque::new()),
            me: me.clone(),
        })
    }

    /// Packets waiting.
    pub fn len(&self) -> usize {
        self.queue.lock().len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `netif_rx`: queue a received packet for NET_RX (`enqueue_to_backlog`). Dropped and
/// counted when `netdev_max_backlog` packets already wait.
pub fn netif_rx(stack: &Stack, dev: &Arc<NetDevice>, skb: Skb) -> bool {
    let b = &stack.backlog;
    {
        let mut q = b.queue.lock();
        if q.len() >= stack.sysctl.netdev_max_backlog().max(1) as usize {
            drop(q);
            stack.softnet.stats.dropped.fetch_add(1, Ordering::Relaxed);
            dev.stats.rx_dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        q.push_back((dev.clone(), skb));
    }
    if let Some(me) = b.me.upgrade() {
        let n: Arc<dyn NapiPoll> = me;
        napi_schedule(&stack.softnet, &n);
    }
    true
}

impl NapiPoll for Backlog {
    fn napi(&self) -> &Napi {
        &self.napi
    }

    /// `process_backlog`.
    fn poll(&self, stack: &Stack, budget: usize) -> usize {
        let mut work = 0;
        while work < budget {
            let Some((dev, skb)) = self.queue.lock().pop_front() else {
                break;
            };
            netif_receive_skb(stack, &dev, skb);
            work += 1;
        }
        if work < budget {
            let empty = self.queue.lock().is_empty();
            if empty {
                napi_complete_done(stack, &self.napi, work);
                // A packet queued between the check and the completion re-schedules.
                if !self.queue.lock().is_empty() {
                    if let Some(me) = self.me.upgrade() {
                        let n: Arc<dyn NapiPoll> = me;
                        napi_schedule(&stack.softnet, &n);
                    }
                }
            } else {
                return budget;
            }
        }
        work
    }
}
