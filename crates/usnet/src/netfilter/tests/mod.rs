//! Tests of the netfilter hooks, the filter table and the iptables parser, one submodule
//! per topic; the packet builders and iptables helpers they share are here.

use super::*;

mod cmdline;
mod hooks;
mod listing;
mod matches;
mod properties;
mod rules;
mod traversal;

// ---------------------------------------------------------------------------------------
// Packet builders
// ---------------------------------------------------------------------------------------

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;

/// An IPv4 header (IHL 5) with `frag` as the flags + fragment offset word, then `l4`.
fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, frag: u16, l4: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + l4.len()).unwrap();
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 1]);
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(l4);
    p
}

/// A TCP segment header (20 bytes) with the given ports.
fn tcp_hdr(sport: u16, dport: u16) -> Vec<u8> {
    let mut h = vec![0; 20];
    h[0..2].copy_from_slice(&sport.to_be_bytes());
    h[2..4].copy_from_slice(&dport.to_be_bytes());
    h[12] = 5 << 4;
    h
}

/// A UDP header (8 bytes) with the given ports.
fn udp_hdr(sport: u16, dport: u16) -> Vec<u8> {
    let mut h = vec![0; 8];
    h[0..2].copy_from_slice(&sport.to_be_bytes());
    h[2..4].copy_from_slice(&dport.to_be_bytes());
    h[4..6].copy_from_slice(&8u16.to_be_bytes());
    h
}

fn tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    ipv4(src, dst, TCP, 0, &tcp_hdr(sport, dport))
}

fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    ipv4(src, dst, UDP, 0, &udp_hdr(sport, dport))
}

fn icmp(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    ipv4(src, dst, ICMP, 0, &[8, 0, 0, 0, 0, 1, 0, 1])
}

/// A packet arriving on `dev` (INPUT).
fn inp<'a>(data: &'a [u8], dev: &'a str) -> NfPacket<'a> {
    NfPacket {
        hook: NfHook::LocalIn,
        data,
        len: data.len(),
        in_dev: Some(dev),
        out_dev: None,
    }
}

/// A packet leaving on `dev` (OUTPUT).
fn outp<'a>(data: &'a [u8], dev: &'a str) -> NfPacket<'a> {
    NfPacket {
        hook: NfHook::LocalOut,
        data,
        len: data.len(),
        in_dev: None,
        out_dev: Some(dev),
    }
}

fn with_len(mut p: NfPacket<'_>, len: usize) -> NfPacket<'_> {
    p.len = len;
    p
}

/// Run iptables command lines against a table.
fn ipt(table: &FilterTable, lines: &[&str]) {
    for line in lines {
        let args: Vec<&str> = line.split_whitespace().collect();
        parse_command(&args)
            .unwrap_or_else(|e| panic!("{line}: {e}"))
            .apply(table)
            .unwrap_or_else(|e| panic!("{line}: {e}"));
    }
}

fn nf_with(lines: &[&str]) -> Netfilter {
    let nf = Netfilter::new();
    ipt(nf.filter(), lines);
    nf
}

fn parse_err(line: &str) -> ParseError {
    let args: Vec<&str> = line.split_whitespace().collect();
    match parse_command(&args) {
        Ok(cmd) => panic!("{line}: parsed as {cmd:?}"),
        Err(e) => e,
    }
}

fn rule(line: &str) -> Rule {
    let args: Vec<&str> = line.split_whitespace().collect();
    match parse_command(&args).unwrap_or_else(|e| panic!("{line}: {e}")) {
        Command::Append { rule, .. } => rule,
        other => panic!("{line}: not -A: {other:?}"),
    }
}

const REJECT_PORT: Verdict = Verdict::Reject(RejectWith::IcmpPortUnreachable);
