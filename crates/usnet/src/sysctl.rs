//! Tunables under their Linux names (`net.core.*`, `net.ipv4.*`), with Linux's defaults.
//!
//! ```
//! let s = usnet::sysctl::Sysctl::default();
//! assert_eq!(s.get("net.core.dev_weight"), Some(64));
//! s.set("net.core.dev_weight", 32).unwrap();
//! assert_eq!(s.dev_weight(), 32);
//! assert!(s.set("net.core.no_such_knob", 1).is_err());
//! ```

use std::io;
use std::sync::atomic::{AtomicI64, Ordering};

macro_rules! sysctls {
    ($( $(#[$doc:meta])* $field:ident = $name:literal, $default:expr, $min:expr, $max:expr; )*) => {
        /// The stack's sysctl table. Each knob is read with its accessor on the hot path
        /// and by name with [`Sysctl::get`] / [`Sysctl::set`].
        #[derive(Debug)]
        pub struct Sysctl {
            $( $field: AtomicI64, )*
        }

        impl Default for Sysctl {
            fn default() -> Self {
                Sysctl { $( $field: AtomicI64::new($default), )* }
            }
        }

        impl Sysctl {
            $(
                $(#[$doc])*
                #[inline]
                pub fn $field(&self) -> i64 {
                    self.$field.load(Ordering::Relaxed)
                }
            )*

            /// Every knob: (Linux name, current value).
            pub fn all(&self) -> Vec<(&'static str, i64)> {
                vec![ $( ($name, self.$field()), )* ]
            }

            /// Read a knob by its Linux name.
            pub fn get(&self, name: &str) -> Option<i64> {
                match name {
                    $( $name => Some(self.$field()), )*
                    _ => None,
                }
            }

            /// Set a knob by its Linux name. `NotFound` for an unknown name,
            /// `InvalidInput` for a value outside the knob's range.
            pub fn set(&self, name: &str, value: i64) -> io::Result<()> {
                match name {
                    $( $name => {
                        if !($min..=$max).contains(&value) {
                            return Err(io::Error::new(io::ErrorKind::InvalidInput,
                                format!("{}: {} is outside {}..={}", name, value, $min, $max)));
                        }
                        self.$field.store(value, Ordering::Relaxed);
                        Ok(())
                    } )*
                    _ => Err(io::Error::new(io::ErrorKind::NotFound,
                        format!("sysctl: cannot stat {}: No such file or directory", name))),
                }
            }
        }
    };
}

sysctls! {
    /// `net.core.dev_weight`: NAPI poll weight per device (64).
    dev_weight = "net.core.dev_weight", 64, 1, 1 << 20;
    /// `net.core.dev_weight_tx_bias`: multiplier giving `dev_tx_weight` (1).
    dev_weight_tx_bias = "net.core.dev_weight_tx_bias", 1, 1, 1 << 20;
    /// `net.core.netdev_budget`: packets per `net_rx_action` run (300).
    netdev_budget = "net.core.netdev_budget", 300, 1, 1 << 30;
    /// `net.core.netdev_budget_usecs`: time limit of one `net_rx_action` run (2000 µs).
    netdev_budget_usecs = "net.core.netdev_budget_usecs", 2000, 1, 1 << 30;
    /// `net.core.netdev_max_backlog`: per-CPU input backlog limit (1000).
    netdev_max_backlog = "net.core.netdev_max_backlog", 1000, 1, 1 << 30;
}

impl Sysctl {
    /// `dev_tx_weight` = `dev_weight * dev_weight_tx_bias`: the qdisc quota per run.
    pub fn dev_tx_weight(&self) -> i64 {
        self.dev_weight() * self.dev_weight_tx_bias()
    }
}
