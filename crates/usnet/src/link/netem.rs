//! Impairments on an emulated link, as Linux's `netem` qdisc applies them: delay with
//! jitter, rate, random and Gilbert-Elliott loss, duplication, reordering, corruption and
//! a queue limit — all drawn from a seeded generator, so a run repeats exactly.
//!
//! Decisions follow `netem_enqueue`: a duplicate is decided first, then loss; a
//! surviving packet may be corrupted; the queue limit is checked; then it is either
//! delayed (`delay ± jitter`, after the previous packet when a rate is set) or, with the
//! reorder probability, sent at once ahead of the delayed ones.

use std::time::Duration;

use crate::rng::Rng;
use crate::time::Instant;

/// Loss model (`netem loss random P` or `loss gemodel P R 1-H 1-K`).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Loss {
    /// No loss.
    #[default]
    None,
    /// Each packet lost independently with this probability.
    Random(f64),
    /// Gilbert-Elliott bursty loss: `p` = good→bad, `r` = bad→good transition
    /// probability; `loss_bad` (1-h) and `loss_good` (1-k) are the loss probabilities in
    /// each state.
    GilbertElliott {
        /// Probability of moving from the good to the bad state.
        p: f64,
        /// Probability of moving from the bad to the good state.
        r: f64,
        /// Loss probability in the bad state (`1-h`, default 1).
        loss_bad: f64,
        /// Loss probability in the good state (`1-k`, default 0).
        loss_good: f64,
    },
}

/// Impairments for one direction of a link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Netem {
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Uniform jitter: each delay is drawn from `delay ± jitter`.
    pub jitter: Duration,
    /// Link rate in bits per second (0: unlimited).
    pub rate_bps: u64,
    /// Bytes added to each packet for the rate (framing: preamble, FCS, gap).
    pub rate_overhead: u32,
    /// Loss model.
    pub loss: Loss,
    /// Duplication probability.
    pub duplicate: f64,
    /// Probability that a packet skips the delay (is reordered ahead).
    pub reorder: f64,
    /// Corruption probability (one random bit flipped).
    pub corrupt: f64,
    /// Most packets waiting on the link; beyond this, drops (netem's `limit`, 1000).
    pub limit: usize,
}

impl Default for Netem {
    fn default() -> Self {
        Netem {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            rate_bps: 0,
            rate_overhead: 0,
            loss: Loss::None,
            duplicate: 0.0,
            reorder: 0.0,
            corrupt: 0.0,
            limit: 1000,
        }
    }
}

impl Netem {
    /// Whether any impairment is set.
    pub fn is_clean(&self) -> bool {
        *self
            == Netem {
                limit: self.limit,
                ..Netem::default()
            }
    }
}

/// Mutable state of one direction's impairments.
#[derive(Debug)]
pub(crate) struct NetemState {
    pub rng: Rng,
    ge_bad: bool,
    /// When the last rate-limited packet finishes (its time to send).
    last_tts: Instant,
}

/// What netem decided for one packet.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Copies to send (0: lost, 2: duplicated).
    pub copies: u8,
    /// Corrupt the (first) copy.
    pub corrupt: bool,
    /// Send at once, ahead of delayed packets.
    pub reorder: bool,
}

impl NetemState {
    pub fn new(seed: u64) -> NetemState {
        NetemState {
            rng: Rng::new(seed),
            ge_bad: false,
            last_tts: Instant::ZERO,
        }
    }

    fn loss_event(&mut self, loss: &Loss) -> bool {
        match *loss {
            Loss::None => false,
            Loss::Random(p) => self.rng.chance(p),
            Loss::GilbertElliott {
                p,
                r,
                loss_bad,
                loss_good,
            } => {
                if self.ge_bad {
                    if self.rng.chance(r) {
                        self.ge_bad = false;
                    }
                } else if self.rng.chance(p) {
                    self.ge_bad = true;
                }
                let lp = if self.ge_bad { loss_bad } else { loss_good };
                self.rng.chance(lp)
            }
        }
    }

    /// Decide duplicate / loss / corruption / reorder for one packet.
    pub fn decide(&mut self, cfg: &Netem) -> Verdict {
        let mut copies: u8 = 1;
        if cfg.duplicate > 0.0 && self.rng.chance(cfg.duplicate) {
            copies += 1;
        }
        if self.loss_event(&cfg.loss) {
            copies -= 1;
        }
        let corrupt = copies > 0 && cfg.corrupt > 0.0 && self.rng.chance(cfg.corrupt);
        let reorder =
            copies > 0 && cfg.reorder > 0.0 && !cfg.delay.is_zero() && self.rng.chance(cfg.reorder);
        Verdict {
            copies,
            corrupt,
            reorder,
        }
    }

    /// When a packet of `len` bytes entering now leaves (its `time_to_send`).
    pub fn time_to_send(&mut self, cfg: &Netem, len: usize, now: Instant) -> Instant {
        let mut delay = cfg.delay;
        if !cfg.jitter.is_zero() {
            let j = cfg.jitter.as_nanos() as u64;
            let r = self.rng.next_u64() % (2 * j);
            delay = Duration::from_nanos((delay.as_nanos() as u64 + r).saturating_sub(j));
        }
        if cfg.rate_bps == 0 {
            return now + delay;
        }
        let bits = (len as u64 + u64::from(cfg.rate_overhead)) * 8;
        let tx = Duration::from_nanos(
            ((u128::from(bits) * 1_000_000_000) / u128::from(cfg.rate_bps)) as u64,
        );
        let start = (now + delay).max(self.last_tts);
        let tts = start + tx;
        self.last_tts = tts;
        tts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_loss_rate_is_close() {
        let cfg = Netem {
            loss: Loss::Random(0.05),
            ..Netem::default()
        };
        let mut st = NetemState::new(1);
        let lost = (0..100_000).filter(|_| st.decide(&cfg).copies == 0).count();
        assert!((4_500..5_500).contains(&lost), "{lost}");
    }

    #[test]
    fn gilbert_elliott_losses_come_in_bursts() {
        let cfg = Netem {
            loss: Loss::GilbertElliott {
                p: 0.01,
                r: 0.25,
                loss_bad: 1.0,
                loss_good: 0.0,
            },
            ..Netem::default()
        };
        let mut st = NetemState::new(2);
        let seq: Vec<bool> = (0..200_000).map(|_| st.decide(&cfg).copies == 0).collect();
        let losses = seq.iter().filter(|&&l| l).count();
        let bursts = seq.windows(2).filter(|w| !w[0] && w[1]).count();
        // Stationary loss p/(p+r) ≈ 3.8%; mean burst 1/r = 4.
        assert!((6_000..9_500).contains(&losses), "{losses}");
        let mean_burst = losses as f64 / bursts as f64;
        assert!(mean_burst > 3.0 && mean_burst < 5.0, "{mean_burst}");
    }

    #[test]
    fn rate_spaces_packets() {
        let cfg = Netem {
            rate_bps: 1_000_000_000,
            ..Netem::default()
        };
        let mut st = NetemState::new(3);
        let t0 = Instant::ZERO;
        let a = st.time_to_send(&cfg, 1250, t0);
        let b = st.time_to_send(&cfg, 1250, t0);
        assert_eq!(a, t0 + Duration::from_micros(10));
        assert_eq!(b, t0 + Duration::from_micros(20));
    }

    #[test]
    fn jitter_stays_in_range_and_duplicates_happen() {
        let cfg = Netem {
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(2),
            duplicate: 0.1,
            ..Netem::default()
        };
        let mut st = NetemState::new(4);
        let mut dups = 0;
        for _ in 0..10_000 {
            let t = st.time_to_send(&cfg, 100, Instant::ZERO);
            assert!(t >= Instant::from_millis(8) && t < Instant::from_millis(12));
            if st.decide(&cfg).copies == 2 {
                dups += 1;
            }
        }
        assert!((800..1200).contains(&dups), "{dups}");
    }

    #[test]
    fn no_reorder_without_delay() {
        let cfg = Netem {
            reorder: 1.0,
            ..Netem::default()
        };
        let mut st = NetemState::new(5);
        assert!(!st.decide(&cfg).reorder);
    }
}
