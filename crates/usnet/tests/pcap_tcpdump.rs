//! Packet capture: frames sent and received on a vnic are written to a pcap file that
//! tcpdump decodes (Debian's tcpdump is installed by `.ci/run`).

use std::process::Command;
use std::time::Duration;

use usnet::dev::xmit::dev_queue_xmit;
use usnet::pcap::PcapTap;
use usnet::skb::Skb;
use usnet::testutil::{mac, Sink, TwoHosts};
use usnet_wire::checksum;

fn have_tcpdump() -> bool {
    Command::new("tcpdump").arg("--version").output().is_ok()
}

fn udp_frame(sport: u16, payload: &[u8]) -> Skb {
    let len = 14 + 20 + 8 + payload.len();
    let mut skb = Skb::alloc(len, 64);
    let d = skb.put(len);
    d[0..6].copy_from_slice(&mac(2).0);
    d[6..12].copy_from_slice(&mac(1).0);
    d[12..14].copy_from_slice(&[0x08, 0x00]);
    let tot = (20 + 8 + payload.len()) as u16;
    d[14] = 0x45;
    d[16..18].copy_from_slice(&tot.to_be_bytes());
    d[22] = 64;
    d[23] = 17;
    d[26..30].copy_from_slice(&[10, 0, 0, 1]);
    d[30..34].copy_from_slice(&[10, 0, 0, 2]);
    let c = checksum::checksum(&d[14..34]);
    d[24..26].copy_from_slice(&c.to_be_bytes());
    d[34..36].copy_from_slice(&sport.to_be_bytes());
    d[36..38].copy_from_slice(&9u16.to_be_bytes());
    d[38..40].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    d[42..].copy_from_slice(payload);
    let mut acc = checksum::Accumulator::with_initial(checksum::pseudo_header_v4(
        &[10, 0, 0, 1].into(),
        &[10, 0, 0, 2].into(),
        17,
        (8 + payload.len()) as u32,
    ));
    acc.add(&d[34..]);
    let c = acc.finish();
    d[40..42].copy_from_slice(&c.to_be_bytes());
    skb
}

fn arp_request() -> Skb {
    let mut skb = Skb::alloc(42, 64);
    let d = skb.put(42);
    d[0..6].copy_from_slice(&[0xff; 6]);
    d[6..12].copy_from_slice(&mac(1).0);
    d[12..14].copy_from_slice(&[0x08, 0x06]);
    d[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    d[22..28].copy_from_slice(&mac(1).0);
    d[28..32].copy_from_slice(&[10, 0, 0, 1]);
    d[32..38].copy_from_slice(&[0; 6]);
    d[38..42].copy_from_slice(&[10, 0, 0, 2]);
    skb
}

#[test]
fn tcpdump_reads_our_capture() {
    if !have_tcpdump() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "tcpdump must be installed under CI (see .ci/run)"
        );
        eprintln!("skipping: tcpdump is not installed (apt-get install tcpdump)");
        return;
    }
    let h = TwoHosts::new(11, |_| {});
    let _sink = Sink::install(&h.b, false);
    let dir = std::env::temp_dir().join(format!("usnet-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("a.pcap");
    let tap = PcapTap::create(&path).unwrap();
    h.da.add_tap(tap.clone());
    h.db.add_tap(PcapTap::create(&dir.join("b.pcap")).unwrap());
    for i in 0..3u16 {
        dev_queue_xmit(&h.a, &h.da, udp_frame(5000 + i, b"hello, tcpdump!!!!"));
    }
    dev_queue_xmit(&h.a, &h.da, arp_request());
    h.sim.run_for(Duration::from_millis(1));
    tap.flush().unwrap();
    h.da.clear_taps();
    h.db.clear_taps();
    drop(tap);
    // a's capture shows what it sent, b's what it received: the same four frames.
    for file in ["a.pcap", "b.pcap"] {
        let out = Command::new("tcpdump")
            .args(["-nn", "-vv", "-r"])
            .arg(dir.join(file))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "tcpdump failed: {err}");
        assert_eq!(
            text.lines().filter(|l| l.contains("10.0.0.1.500")).count(),
            3,
            "{file}: {text}"
        );
        assert!(
            text.contains("10.0.0.1.5000 > 10.0.0.2.9: [udp sum ok] UDP, length 18"),
            "{text}"
        );
        assert!(
            text.contains(
                "ARP, Ethernet (len 6), IPv4 (len 4), Request who-has 10.0.0.2 tell 10.0.0.1"
            ),
            "{text}"
        );
        assert!(!text.contains("incorrect"), "checksums must verify: {text}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
