//! `epoll`: a set of watched sockets, level- or edge-triggered (`EPOLLET`).
//!
//! Each watched socket gets an entry on its wait queue (Linux's `ep_poll_callback`):
//! a wake-up marks the item and signals the set. Level-triggered items are reported
//! while ready; edge-triggered ones once per wake-up that finds them ready (and once
//! when added, if already ready).

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::{poll, Fd, File, Sys};
use crate::sock::{os_err, Notify};

/// `EEXIST`.
const EEXIST: i32 = 17;
/// `ENOENT`.
const ENOENT: i32 = 2;

struct Item {
    file: Arc<File>,
    events: u32,
    edge: bool,
    notify: Arc<Notify>,
    /// The item notifier's generation when last reported (edge-triggered).
    seen: Option<u64>,
}

/// An epoll set (`epoll_create`).
pub struct Epoll {
    notify: Arc<Notify>,
    items: Mutex<BTreeMap<Fd, Item>>,
}

impl Default for Epoll {
    fn default() -> Self {
        Epoll {
            notify: Arc::new(Notify::default()),
            items: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Epoll {
    /// A new, empty set.
    pub fn new() -> Epoll {
        Epoll::default()
    }

    /// `EPOLL_CTL_ADD`: watch `fd` for `events` (`POLLIN`, `POLLOUT`, ...);
    /// `edge` is `EPOLLET`. `EEXIST` if already watched.
    pub fn add(&self, sys: &Sys, fd: Fd, events: u32, edge: bool) -> io::Result<()> {
        let file = sys.file(fd)?;
        let mut items = self.items.lock();
        if items.contains_key(&fd) {
            return Err(os_err(EEXIST));
        }
        let notify = Arc::new(Notify::with_parent(self.notify.clone()));
        file.ops.wait_queue().add_poller(&notify);
        items.insert(
            fd,
            Item {
                file,
                events,
                edge,
                notify,
                seen: None,
            },
        );
        drop(items);
        self.notify.notify();
        Ok(())
    }

    /// `EPOLL_CTL_MOD`: change the events (re-arms an edge-triggered item).
    pub fn modify(&self, fd: Fd, events: u32, edge: bool) -> io::Result<()> {
        let mut items = self.items.lock();
        let it = items.get_mut(&fd).ok_or_else(|| os_err(ENOENT))?;
        it.events = events;
        it.edge = edge;
        it.seen = None;
        Ok(())
    }

    /// `EPOLL_CTL_DEL`.
    pub fn delete(&self, fd: Fd) -> io::Result<()> {
        let it = self
            .items
            .lock()
            .remove(&fd)
            .ok_or_else(|| os_err(ENOENT))?;
        it.file.ops.wait_queue().remove_poller(&it.notify);
        Ok(())
    }

    /// `epoll_wait`: up to `max` ready (fd, events), waiting up to `timeout` (`None`:
    /// forever; zero: just look).
    pub fn wait(&self, max: usize, timeout: Option<Duration>) -> Vec<(Fd, u32)> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            let seen = self.notify.generation();
            let mut out = Vec::new();
            {
                let mut items = self.items.lock();
                for (fd, it) in items.iter_mut() {
                    if out.len() >= max {
                        break;
                    }
                    let gen = it.notify.generation();
                    if it.edge && it.seen == Some(gen) {
                        continue;
                    }
                    let rev = it.file.ops.poll() & (it.events | poll::POLLERR | poll::POLLHUP);
                    if rev != 0 {
                        it.seen = Some(gen);
                        out.push((*fd, rev));
                    }
                }
            }
            if !out.is_empty() || deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return out;
            }
            self.notify.wait_change(seen, deadline);
        }
    }

    /// Watched descriptors.
    pub fn len(&self) -> usize {
        self.items.lock().len()
    }

    /// Whether nothing is watched.
    pub fn is_empty(&self) -> bool {
        self.items.lock().is_empty()
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        for it in self.items.get_mut().values() {
            it.file.ops.wait_queue().remove_poller(&it.notify);
        }
    }
}
