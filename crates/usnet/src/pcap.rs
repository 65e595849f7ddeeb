//! Packet capture to pcap files that tcpdump, tshark and Wireshark read: a
//! [`PcapTap`] on a device records every frame it sends (at `xmit_one`) and receives
//! (at `__netif_receive_skb`), where tcpdump hooks into Linux.
//!
//! Frames whose checksum the device was to finish (`CHECKSUM_PARTIAL`) are recorded as
//! they are, as captures on a Linux host with checksum offload show them.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::dev::rx::{PacketTap, TapDir};
use crate::dev::NetDevice;
use crate::skb::Skb;
use crate::time::Instant;

/// pcap magic for nanosecond timestamps.
pub const MAGIC_NS: u32 = 0xa1b2_3c4d;
/// Link type Ethernet (`LINKTYPE_ETHERNET`).
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Bytes kept per frame.
pub const SNAPLEN: u32 = 262_144;

/// Writes pcap records.
pub struct PcapWriter<W: Write> {
    out: W,
    records: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Write the global header.
    pub fn new(mut out: W) -> io::Result<PcapWriter<W>> {
        out.write_all(&MAGIC_NS.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&SNAPLEN.to_le_bytes())?;
        out.write_all(&LINKTYPE_ETHERNET.to_le_bytes())?;
        Ok(PcapWriter { out, records: 0 })
    }

    /// Write one frame given as consecutive byte slices.
    pub fn write_frame<'a>(
        &mut self,
        at: Instant,
        parts: impl Iterator<Item = &'a [u8]> + Clone,
    ) -> io::Result<()> {
        let len: usize = parts.clone().map(<[u8]>::len).sum();
        let cap = len.min(SNAPLEN as usize);
        let ns = at.as_nanos();
        self.out
            .write_all(&((ns / 1_000_000_000) as u32).to_le_bytes())?;
        self.out
            .write_all(&((ns % 1_000_000_000) as u32).to_le_bytes())?;
        self.out.write_all(&(cap as u32).to_le_bytes())?;
        self.out.write_all(&(len as u32).to_le_bytes())?;
        let mut left = cap;
        for p in parts {
            let n = p.len().min(left);
            self.out.write_all(&p[..n])?;
            left -= n;
            if left == 0 {
                break;
            }
        }
        self.records += 1;
        Ok(())
    }

    /// Records written.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Flush the output.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A device tap writing a pcap file. Several devices may share one tap.
pub struct PcapTap {
    w: Mutex<PcapWriter<BufWriter<File>>>,
    /// Which directions to record.
    pub dirs: (bool, bool),
}

impl PcapTap {
    /// Create (truncate) `path` and record both directions.
    pub fn create(path: &Path) -> io::Result<Arc<PcapTap>> {
        let f = File::create(path)?;
        Ok(Arc::new(PcapTap {
            w: Mutex::new(PcapWriter::new(BufWriter::new(f))?),
            dirs: (true, true),
        }))
    }

    /// Create `path` recording only received frames (so a capture on both ends of a
    /// link shows each frame once).
    pub fn create_rx_only(path: &Path) -> io::Result<Arc<PcapTap>> {
        let f = File::create(path)?;
        Ok(Arc::new(PcapTap {
            w: Mutex::new(PcapWriter::new(BufWriter::new(f))?),
            dirs: (false, true),
        }))
    }

    /// Flush buffered records to the file.
    pub fn flush(&self) -> io::Result<()> {
        self.w.lock().flush()
    }

    /// Records written.
    pub fn records(&self) -> u64 {
        self.w.lock().records()
    }
}

impl PacketTap for PcapTap {
    fn tap(&self, _dev: &NetDevice, frame: &Skb, mac: usize, dir: TapDir, now: Instant) {
        let want = match dir {
            TapDir::Outgoing => self.dirs.0,
            TapDir::Incoming => self.dirs.1,
        };
        if !want {
            return;
        }
        let head = frame.head_buf();
        let lin = head.get(mac..).unwrap_or(&[]);
        let parts = std::iter::once(lin).chain(frame.frags().iter().map(|f| &f[..]));
        let _ = self.w.lock().write_frame(now, parts);
    }
}

impl Drop for PcapTap {
    fn drop(&mut self) {
        let _ = self.w.lock().flush();
    }
}
