//! Parsing and printing of quantities the way `tc` and `ip` write them: rates
//! (`1gbit`, `100mbit`), sizes (`32kb`, `1m`), times (`5ms`, `1.5s`) and percentages
//! (`2`, `2%`, `0.5%`).
//!
//! ```
//! use usnet::util::*;
//! assert_eq!(parse_rate("1gbit").unwrap(), 1_000_000_000);
//! assert_eq!(parse_rate("100mbit").unwrap(), 100_000_000);
//! assert_eq!(parse_size("32kb").unwrap(), 32 * 1024);
//! assert_eq!(parse_time("5ms").unwrap(), std::time::Duration::from_millis(5));
//! assert_eq!(parse_percent("2%").unwrap(), 0.02);
//! assert_eq!(fmt_rate(1_000_000_000), "1Gbit");
//! ```

use std::time::Duration;

/// An error parsing a quantity, saying what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

fn split_num(s: &str) -> Result<(f64, String), ParseError> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (n, unit) = s.split_at(end);
    let v: f64 = n
        .parse()
        .map_err(|_| ParseError(format!("{s:?}: expected a number")))?;
    if !v.is_finite() || v < 0.0 {
        return Err(ParseError(format!("{s:?}: expected a non-negative number")));
    }
    Ok((v, unit.trim().to_ascii_lowercase()))
}

/// A rate as tc writes it, in bits per second: `bit`, `kbit`, `mbit`, `gbit`, `tbit`
/// (powers of 1000), `bps`/`kbps`/`mbps`/`gbps` (bytes per second), or a bare number
/// (bits per second).
pub fn parse_rate(s: &str) -> Result<u64, ParseError> {
    let (v, unit) = split_num(s)?;
    let mult = match unit.as_str() {
        "" | "bit" => 1.0,
        "kbit" | "k" => 1e3,
        "mbit" | "m" => 1e6,
        "gbit" | "g" => 1e9,
        "tbit" | "t" => 1e12,
        "bps" => 8.0,
        "kbps" => 8e3,
        "mbps" => 8e6,
        "gbps" => 8e9,
        _ => {
            return Err(ParseError(format!(
            "{s:?}: unknown rate unit (use bit, kbit, mbit, gbit, tbit or bps, kbps, mbps, gbps)"
        )))
        }
    };
    Ok((v * mult).round() as u64)
}

/// A size in bytes: `b`, `k`/`kb`, `m`/`mb`, `g`/`gb` (powers of 1024), or a bare
/// number of bytes.
pub fn parse_size(s: &str) -> Result<u64, ParseError> {
    let (v, unit) = split_num(s)?;
    let mult = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(ParseError(format!(
                "{s:?}: unknown size unit (use b, kb, mb, gb)"
            )))
        }
    };
    Ok((v * mult).round() as u64)
}

/// A time: `s`/`sec`, `ms`/`msec`, `us`/`usec`, `ns`; a bare number is microseconds
/// (as tc).
pub fn parse_time(s: &str) -> Result<Duration, ParseError> {
    let (v, unit) = split_num(s)?;
    let ns = match unit.as_str() {
        "s" | "sec" | "secs" => v * 1e9,
        "ms" | "msec" | "msecs" => v * 1e6,
        "" | "us" | "usec" | "usecs" => v * 1e3,
        "ns" | "nsec" => v,
        _ => {
            return Err(ParseError(format!(
                "{s:?}: unknown time unit (use s, ms, us, ns)"
            )))
        }
    };
    Ok(Duration::from_nanos(ns.round() as u64))
}

/// A percentage as a fraction: `2`, `2%` and `2.0%` all give 0.02. At most 100%.
pub fn parse_percent(s: &str) -> Result<f64, ParseError> {
    let t = s.trim().trim_end_matches('%');
    let (v, unit) = split_num(t)?;
    if !unit.is_empty() {
        return Err(ParseError(format!(
            "{s:?}: expected a percentage like 2 or 2%"
        )));
    }
    if v > 100.0 {
        return Err(ParseError(format!("{s:?}: a percentage is at most 100")));
    }
    Ok(v / 100.0)
}

/// A rate as tc prints it (`sprint_rate`): divide by 1000 while the result stays whole
/// (or is large), so `1Gbit`, `100Mbit`, `1500Kbit`, `8bit`.
pub fn fmt_rate(bps: u64) -> String {
    const UNITS: [&str; 5] = ["bit", "Kbit", "Mbit", "Gbit", "Tbit"];
    let mut rate = bps;
    let mut i = 0;
    while i < UNITS.len() - 1 {
        if rate < 1000 || (rate % 1000 != 0 && rate < 1_000_000) {
            break;
        }
        rate /= 1000;
        i += 1;
    }
    format!("{rate}{}", UNITS[i])
}

/// Bytes as a short human figure: `512B`, `1.5KiB`, `3.2MiB`, `1.0GiB`.
pub fn fmt_bytes(b: u64) -> String {
    let f = b as f64;
    if b < 1024 {
        format!("{b}B")
    } else if f < 1024.0 * 1024.0 {
        format!("{:.1}KiB", f / 1024.0)
    } else if f < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1}MiB", f / 1024.0 / 1024.0)
    } else {
        format!("{:.2}GiB", f / 1024.0 / 1024.0 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("8").unwrap(), 8);
        assert_eq!(parse_rate("1.5Mbit").unwrap(), 1_500_000);
        assert_eq!(parse_rate("10mbps").unwrap(), 80_000_000);
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("10 furlongs").is_err());
        assert_eq!(fmt_rate(100_000_000), "100Mbit");
        assert_eq!(fmt_rate(1_500_000), "1500Kbit");
        assert_eq!(fmt_rate(8), "8bit");
    }

    #[test]
    fn sizes_times_percents() {
        assert_eq!(parse_size("1500").unwrap(), 1500);
        assert_eq!(parse_size("1mb").unwrap(), 1 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_time("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_time("100").unwrap(), Duration::from_micros(100));
        assert_eq!(parse_percent("0.1%").unwrap(), 0.001);
        assert!(parse_percent("150").is_err());
        assert!(parse_percent("-1").is_err());
        assert!(parse_time("").is_err());
    }
}
