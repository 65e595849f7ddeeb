//! Time-series plots of a transfer, as `tcp_probe` or `ss -i` sampling would give them:
//! cwnd and ssthresh (packets), srtt (ms) and throughput (Mbit/s) against virtual time,
//! one panel each. SVG (with labels and axes) or PNG (the same curves, no text; encoded
//! here with stored deflate blocks, so no image library is needed).

use std::fmt::Write as _;

/// One sample of the sender's state.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Virtual seconds since the transfer started.
    pub t: f64,
    /// Congestion window, packets.
    pub cwnd: u32,
    /// Slow-start threshold, packets (`u32::MAX/2` and above: not set yet).
    pub ssthresh: u32,
    /// Smoothed RTT, µs.
    pub srtt_us: u32,
    /// Bytes the receiver has read so far.
    pub received: u64,
}

/// A named curve in a panel.
struct Series {
    name: &'static str,
    color: &'static str,
    rgb: [u8; 3],
    points: Vec<(f64, f64)>,
}

/// A panel: a quantity with its unit and one or more curves.
struct Panel {
    title: &'static str,
    series: Vec<Series>,
}

/// At most this many points per curve (samples are thinned evenly).
const MAX_POINTS: usize = 1500;

fn thin(samples: &[Sample]) -> Vec<Sample> {
    let step = samples.len().div_ceil(MAX_POINTS).max(1);
    let mut v: Vec<Sample> = samples.iter().step_by(step).copied().collect();
    if let (Some(l), Some(s)) = (samples.last(), v.last()) {
        if l.t != s.t {
            v.push(*l);
        }
    }
    v
}

fn panels(samples: &[Sample]) -> Vec<Panel> {
    let s = thin(samples);
    let cwnd = s.iter().map(|x| (x.t, f64::from(x.cwnd))).collect();
    let ssthresh = s
        .iter()
        .filter(|x| x.ssthresh < u32::MAX / 2)
        .map(|x| (x.t, f64::from(x.ssthresh)))
        .collect();
    let srtt = s
        .iter()
        .filter(|x| x.srtt_us > 0)
        .map(|x| (x.t, f64::from(x.srtt_us) / 1000.0))
        .collect();
    // Throughput over a sliding window of about 1/50 of the run.
    let span = s.last().map_or(0.0, |l| l.t) / 50.0;
    let mut thr = Vec::with_capacity(s.len());
    let mut j = 0;
    for i in 0..s.len() {
        while j < i && s[i].t - s[j].t > span {
            j += 1;
        }
        let dt = s[i].t - s[j].t;
        if dt > 0.0 {
            let mbit = (s[i].received - s[j].received) as f64 * 8.0 / dt / 1e6;
            thr.push((s[i].t, mbit));
        }
    }
    vec![
        Panel {
            title: "cwnd and ssthresh (packets)",
            series: vec![
                Series {
                    name: "cwnd",
                    color: "#1f77b4",
                    rgb: [0x1f, 0x77, 0xb4],
                    points: cwnd,
                },
                Series {
                    name: "ssthresh",
                    color: "#d62728",
                    rgb: [0xd6, 0x27, 0x28],
                    points: ssthresh,
                },
            ],
        },
        Panel {
            title: "srtt (ms)",
            series: vec![Series {
                name: "srtt",
                color: "#2ca02c",
                rgb: [0x2c, 0xa0, 0x2c],
                points: srtt,
            }],
        },
        Panel {
            title: "throughput at the receiver (Mbit/s)",
            series: vec![Series {
                name: "throughput",
                color: "#9467bd",
                rgb: [0x94, 0x67, 0xbd],
                points: thr,
            }],
        },
    ]
}

const W: f64 = 900.0;
const PANEL_H: f64 = 200.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const GAP: f64 = 40.0;

/// The x and y ranges of a panel: time from 0, values from 0, with a little headroom.
fn ranges(t_max: f64, p: &Panel) -> (f64, f64) {
    let y_max = p
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|q| q.1))
        .fold(0.0f64, f64::max);
    (t_max.max(1e-9), (y_max * 1.1).max(1e-9))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The plot as an SVG document.
pub fn svg(title: &str, samples: &[Sample]) -> String {
    let ps = panels(samples);
    let t_max = samples.last().map_or(0.0, |s| s.t);
    let height = TOP + ps.len() as f64 * (PANEL_H + GAP);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(
        out,
        "<rect width=\"{W}\" height=\"{height}\" fill=\"white\"/>\n<text x=\"{LEFT}\" y=\"22\" font-size=\"15\">{}</text>",
        escape(title)
    );
    for (i, p) in ps.iter().enumerate() {
        let y0 = TOP + i as f64 * (PANEL_H + GAP);
        let (tx, ty) = ranges(t_max, p);
        let pw = W - LEFT - RIGHT;
        let _ = writeln!(
            out,
            "<g class=\"panel\" data-title=\"{}\">\n<text x=\"{LEFT}\" y=\"{:.1}\">{}</text>\n<rect x=\"{LEFT}\" y=\"{y0:.1}\" width=\"{pw:.1}\" height=\"{PANEL_H}\" fill=\"none\" stroke=\"#888\"/>",
            escape(p.title),
            y0 - 6.0,
            escape(p.title)
        );
        // Axis ticks: 5 on each axis.
        for k in 0..=4 {
            let f = f64::from(k) / 4.0;
            let x = LEFT + f * pw;
            let y = y0 + PANEL_H - f * PANEL_H;
            let _ = writeln!(
                out,
                "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#444\">{:.3}s</text>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#444\">{}</text>\n<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/>",
                y0 + PANEL_H + 14.0,
                f * tx,
                LEFT - 4.0,
                y + 4.0,
                tick(f * ty),
                LEFT + pw
            );
        }
        for (j, s) in p.series.iter().enumerate() {
            let mut pts = String::with_capacity(s.points.len() * 14);
            for &(t, v) in &s.points {
                let x = LEFT + t / tx * pw;
                let y = y0 + PANEL_H - v / ty * PANEL_H;
                let _ = write!(pts, "{x:.1},{y:.1} ");
            }
            let _ = writeln!(
                out,
                "<polyline class=\"series\" data-series=\"{}\" points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.3\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{}\">{}</text>",
                s.name,
                pts.trim_end(),
                s.color,
                W - RIGHT - 90.0,
                y0 + 16.0 + 14.0 * j as f64,
                s.color,
                s.name
            );
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    out
}

fn tick(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// The same plot as a PNG image (curves, panel frames and grid; no text).
pub fn png(samples: &[Sample]) -> Vec<u8> {
    let ps = panels(samples);
    let t_max = samples.last().map_or(0.0, |s| s.t);
    let (w, h) = (
        W as usize,
        (TOP + ps.len() as f64 * (PANEL_H + GAP)) as usize,
    );
    let mut img = vec![255u8; w * h * 3];
    let mut put = |x: i64, y: i64, c: [u8; 3]| {
        if x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h {
            let i = (y as usize * w + x as usize) * 3;
            img[i..i + 3].copy_from_slice(&c);
        }
    };
    let pw = W - LEFT - RIGHT;
    for (i, p) in ps.iter().enumerate() {
        let y0 = TOP + i as f64 * (PANEL_H + GAP);
        let (tx, ty) = ranges(t_max, p);
        let frame = [0x88, 0x88, 0x88];
        let grid = [0xee, 0xee, 0xee];
        for k in 1..4 {
            let y = y0 + PANEL_H - f64::from(k) / 4.0 * PANEL_H;
            line(&mut put, (LEFT, y), (LEFT + pw, y), grid);
        }
        line(&mut put, (LEFT, y0), (LEFT + pw, y0), frame);
        line(
            &mut put,
            (LEFT, y0 + PANEL_H),
            (LEFT + pw, y0 + PANEL_H),
            frame,
        );
        line(&mut put, (LEFT, y0), (LEFT, y0 + PANEL_H), frame);
        line(&mut put, (LEFT + pw, y0), (LEFT + pw, y0 + PANEL_H), frame);
        for s in &p.series {
            let xy = |&(t, v): &(f64, f64)| (LEFT + t / tx * pw, y0 + PANEL_H - v / ty * PANEL_H);
            for pair in s.points.windows(2) {
                line(&mut put, xy(&pair[0]), xy(&pair[1]), s.rgb);
            }
        }
    }
    encode_png(w, h, &img)
}

/// A straight line (Bresenham).
fn line(put: &mut impl FnMut(i64, i64, [u8; 3]), a: (f64, f64), b: (f64, f64), c: [u8; 3]) {
    let (mut x0, mut y0) = (a.0.round() as i64, a.1.round() as i64);
    let (x1, y1) = (b.0.round() as i64, b.1.round() as i64);
    let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
    let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
    let mut err = dx + dy;
    loop {
        put(x0, y0, c);
        if x0 == x1 && y0 == y1 {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x0 += sx;
        }
        if e2 <= dx {
            err += dx;
            y0 += sy;
        }
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// An 8-bit RGB PNG with the pixel data in stored (uncompressed) deflate blocks.
fn encode_png(w: usize, h: usize, rgb: &[u8]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(h * (w * 3 + 1));
    for row in rgb.chunks(w * 3) {
        raw.push(0); // filter: none
        raw.extend_from_slice(row);
    }
    let mut z = vec![0x78, 0x01];
    let mut blocks = raw.chunks(65535).peekable();
    while let Some(b) = blocks.next() {
        z.push(u8::from(blocks.peek().is_none()));
        z.extend_from_slice(&(b.len() as u16).to_le_bytes());
        z.extend_from_slice(&(!(b.len() as u16)).to_le_bytes());
        z.extend_from_slice(b);
    }
    z.extend_from_slice(&adler32(&raw).to_be_bytes());
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&(w as u32).to_be_bytes());
    ihdr.extend_from_slice(&(h as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_and_adler_match_their_reference_values() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }
}
