//! `pfifo_fast`: Linux's default qdisc. Three FIFO bands; a packet's band comes from
//! its priority through the priomap, and band 0 is always emptied before band 1, band 1
//! before band 2. Together the bands hold at most `txqueuelen` packets; beyond that new
//! packets are dropped.

use std::collections::VecDeque;

use super::{Dequeue, Qdisc};
use crate::dev::NetDevice;
use crate::skb::Skb;
use crate::time::Instant;

/// Linux's `prio2band`: `TC_PRIO_*` (skb priority & 15) → band.
pub const PRIO2BAND: [u8; 16] = [1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1];

/// Number of bands.
pub const BANDS: usize = 3;

/// The three-band priority FIFO.
#[derive(Debug, Default)]
pub struct PfifoFast {
    bands: [VecDeque<Skb>; BANDS],
    qlen: usize,
    backlog: usize,
}

impl PfifoFast {
    /// An empty qdisc.
    pub fn new() -> PfifoFast {
        PfifoFast::default()
    }

    /// The band a priority maps to.
    pub fn band_of(priority: u32) -> usize {
        usize::from(PRIO2BAND[(priority & 15) as usize])
    }

    /// Packets in each band.
    pub fn band_lens(&self) -> [usize; BANDS] {
        [
            self.bands[0].len(),
            self.bands[1].len(),
            self.bands[2].len(),
        ]
    }
}

impl Qdisc for PfifoFast {
    fn kind(&self) -> &'static str {
        "pfifo_fast"
    }

    fn enqueue(&mut self, skb: Skb, dev: &NetDevice, _now: Instant) -> Result<(), Skb> {
        if self.qlen >= dev.tx_queue_len() as usize {
            return Err(skb);
        }
        self.qlen += 1;
        self.backlog += skb.len();
        self.bands[Self::band_of(skb.priority)].push_back(skb);
        Ok(())
    }

    fn dequeue(&mut self, _now: Instant) -> Dequeue {
        for band in &mut self.bands {
            if let Some(skb) = band.pop_front() {
                self.qlen -= 1;
                self.backlog -= skb.len();
                return Dequeue::Packet(skb);
            }
        }
        Dequeue::Empty
    }

    fn qlen(&self) -> usize {
        self.qlen
    }

    fn backlog(&self) -> usize {
        self.backlog
    }

    fn reset(&mut self) -> usize {
        let n = self.qlen;
        for b in &mut self.bands {
            b.clear();
        }
        self.qlen = 0;
        self.backlog = 0;
        n
    }

    fn can_bypass(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        let map: Vec<String> = PRIO2BAND.iter().map(|b| b.to_string()).collect();
        format!("bands {} priomap {}", BANDS, map.join(" "))
    }
}
