//! Buffers for zero-copy sending: a sender fills a buffer, hands it to the stack with
//! `send_pages` (`MSG_SPLICE_PAGES`), and refills it once the stack has let it go —
//! Linux's `MSG_ZEROCOPY` completion notice, told here by ownership
//! ([`bytes::Bytes::is_unique`]) instead of the socket's error queue.
//!
//! ```
//! use usnet::socket::pages::PageRing;
//!
//! let mut ring = PageRing::new(4);
//! let mut page = ring.take(1 << 16);
//! page[..5].copy_from_slice(b"hello");
//! let page = page.freeze();
//! let in_flight = page.clone(); // as an skb of the stack would hold it
//! ring.lend(page);
//! assert_ne!(ring.take(1 << 16).as_ptr(), in_flight.as_ptr(), "still lent: a new one");
//! drop(in_flight); // acknowledged: the stack lets it go
//! let again = ring.take(1 << 16);
//! assert_eq!(&again[..5], b"hello", "the same buffer, to refill");
//! assert_eq!(ring.refilled(), 1);
//! ```

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

/// Buffers lent to the stack, oldest first, each taken back to refill once the stack
/// holds no reference to it. Bounded: beyond `max` lent buffers the oldest is let go
/// (freed when the stack is done with it) rather than waited for.
#[derive(Debug)]
pub struct PageRing {
    lent: VecDeque<Bytes>,
    max: usize,
    refilled: u64,
}

impl PageRing {
    /// A ring keeping at most `max` lent buffers (at least one).
    pub fn new(max: usize) -> PageRing {
        PageRing {
            lent: VecDeque::new(),
            max: max.max(1),
            refilled: 0,
        }
    }

    /// A buffer of `len` bytes to fill: the oldest lent one if the stack has let it go
    /// and it is that long (its old bytes still in it), else a new, zeroed one. Only
    /// the oldest is looked at: a stream's buffers come back in the order they went.
    pub fn take(&mut self, len: usize) -> BytesMut {
        let free = self
            .lent
            .front()
            .is_some_and(|b| b.len() == len && b.is_unique());
        if free {
            if let Some(Ok(page)) = self.lent.pop_front().map(Bytes::try_into_mut) {
                self.refilled += 1;
                return page;
            }
        }
        BytesMut::zeroed(len)
    }

    /// Keep `page`, just handed to the stack, to refill once the stack lets it go.
    pub fn lend(&mut self, page: Bytes) {
        self.lent.push_back(page);
        while self.lent.len() > self.max {
            self.lent.pop_front();
        }
    }

    /// Buffers taken back to refill so far.
    pub fn refilled(&self) -> u64 {
        self.refilled
    }
}
