//! The loopback device `lo` (Linux's `drivers/net/loopback.c`): what it is sent it
//! receives, through the input backlog (`netif_rx`). No qdisc (`noqueue`), every offload
//! on, MTU 65536, and a checksum left for the hardware counts as verified on the way
//! back in.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use usnet_wire::EthernetAddress;

use crate::dev::backlog::netif_rx;
use crate::dev::rx::eth_type_trans;
use crate::dev::{
    flags, Features, NetDevice, NetDeviceConfig, NetDeviceOps, NetdevQueue, NetdevTx,
};
use crate::skb::IpSummed;
use crate::stack::WeakStack;
use crate::Stack;

/// The loopback driver.
#[derive(Default)]
pub struct Loopback {
    stack: OnceLock<WeakStack>,
    dev: OnceLock<std::sync::Weak<NetDevice>>,
}

/// Register and open `lo` on `stack`.
pub fn create(stack: &Stack) -> io::Result<Arc<NetDevice>> {
    let drv = Arc::new(Loopback::default());
    let mut cfg = NetDeviceConfig::ethernet("lo", EthernetAddress([0; 6]));
    cfg.mtu = 65536;
    cfg.max_mtu = 65536;
    cfg.tx_queue_len = 0; // noqueue
    cfg.flags = flags::LOOPBACK;
    let all = Features::SG | Features::IP_CSUM | Features::RXCSUM | Features::TSO | Features::GSO;
    cfg.hw_features = all;
    cfg.features = all;
    cfg.gso_max_size = crate::dev::GSO_LEGACY_MAX_SIZE;
    cfg.tso_max_size = crate::dev::GSO_MAX_SIZE;
    let dev = stack.devs.register(stack, cfg, drv.clone())?;
    let _ = drv.stack.set(stack.downgrade());
    let _ = drv.dev.set(Arc::downgrade(&dev));
    crate::dev::dev_open(stack, &dev)?;
    Ok(dev)
}

impl NetDeviceOps for Loopback {
    fn open(&self, _stack: &Stack, dev: &Arc<NetDevice>) -> io::Result<()> {
        for q in dev.txqs.iter() {
            q.start();
        }
        dev.carrier_on();
        Ok(())
    }

    fn stop(&self, _stack: &Stack, _dev: &Arc<NetDevice>) {}

    /// `loopback_xmit`.
    fn start_xmit(
        &self,
        mut skb: crate::skb::Skb,
        dev: &NetDevice,
        _txq: &NetdevQueue,
    ) -> NetdevTx {
        let (Some(stack), Some(me)) = (
            self.stack.get().and_then(|s| s.upgrade()),
            self.dev.get().and_then(|d| d.upgrade()),
        ) else {
            return NetdevTx::Ok;
        };
        skb.orphan();
        let len = skb.len() as u64;
        if skb.ip_summed == IpSummed::Partial {
            skb.ip_summed = IpSummed::Unnecessary;
        }
        let now = stack.now();
        skb.reset_for_rx_keep_csum(now);
        if eth_type_trans(&mut skb, dev).is_none() {
            return NetdevTx::Ok;
        }
        if netif_rx(&stack, &me, skb) {
            dev.stats.tx_packets.fetch_add(1, Ordering::Relaxed);
            dev.stats.tx_bytes.fetch_add(len, Ordering::Relaxed);
            dev.stats.rx_packets.fetch_add(1, Ordering::Relaxed);
            dev.stats.rx_bytes.fetch_add(len, Ordering::Relaxed);
        }
        NetdevTx::Ok
    }

    fn driver_name(&self) -> &'static str {
        "loopback"
    }
}
