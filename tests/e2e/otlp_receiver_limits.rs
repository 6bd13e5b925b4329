//! The OTLP receiver under compressed bodies that inflate hugely ("zip bombs"), as a real
//! `sextant collector` process: each is refused with 413, and the process never holds more than
//! `max_in_flight_bytes` for them, however many arrive at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::*;

/// A status line field of `/proc/<pid>/status`, in KiB.
fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn post_raw(port: u16, encoding: &str, body: &[u8]) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "POST /v1/logs HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: {encoding}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn eight_bombs_at_once_are_refused_413_with_memory_under_the_in_flight_bound() {
    let zeros = vec![0u8; 512 << 20];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&zeros).unwrap();
    let gzip_bomb = gz.finish().unwrap();
    let zstd_bomb = zstd::bulk::compress(&zeros, 19).unwrap();
    // The same bombs hiding their size: a second, empty gzip member (whose trailer says 0), a
    // zstd stream without a content size in its header. These must be inflated to be refused.
    let mut empty = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    empty.write_all(b"").unwrap();
    let hidden_gzip_bomb = [gzip_bomb.clone(), empty.finish().unwrap()].concat();
    let mut z = zstd::stream::Encoder::new(Vec::new(), 19).unwrap();
    z.include_contentsize(false).unwrap();
    z.write_all(&zeros).unwrap();
    let hidden_zstd_bomb = z.finish().unwrap();
    drop(zeros);
    assert!(gzip_bomb.len() < 600_000, "{}", gzip_bomb.len());

    let dir = tempfile::tempdir().unwrap();
    let (port, admin) = (free_port(), free_port());
    let cfg = crate::common::hop::collector_config(
        dir.path(),
        admin,
        port,
        "    void: { type: blackhole, inputs: [otlp] }\n",
    );
    let collector = start_sextant("collector", &cfg, &dir.path().join("collector.log"));
    wait_http_ok(
        &format!("http://127.0.0.1:{admin}/readyz"),
        Duration::from_secs(10),
    );
    let pid = collector.pid();

    for (encoding, bomb) in [("gzip", &gzip_bomb), ("zstd", &zstd_bomb)] {
        let answers: Vec<u16> = std::thread::scope(|s| {
            let senders: Vec<_> = (0..8)
                .map(|_| s.spawn(|| post_raw(port, encoding, bomb)))
                .collect();
            senders.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(answers, [413; 8], "{encoding}: stated sizes over the limit");
    }
    for (encoding, bomb) in [("gzip", &hidden_gzip_bomb), ("zstd", &hidden_zstd_bomb)] {
        // The peak of this round alone, against the process's size just before it.
        let idle_kib = proc_status_kib(pid, "VmRSS:");
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
        let answers: Vec<u16> = std::thread::scope(|s| {
            let senders: Vec<_> = (0..8)
                .map(|_| s.spawn(|| post_raw(port, encoding, bomb)))
                .collect();
            senders.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // Each is too large (413), or, while the others hold the in-flight bytes, retry-later
        // (503); none is taken, none is "malformed".
        assert!(
            answers.iter().all(|a| *a == 413 || *a == 503),
            "{encoding} (hidden size): {answers:?}"
        );
        let again = post_raw(port, encoding, bomb);
        assert_eq!(again, 413, "{encoding}: alone, it is too large");
        let peak_kib = proc_status_kib(pid, "VmHWM:");
        eprintln!("{encoding}: idle {idle_kib} KiB, peak {peak_kib} KiB");
        // What the bombs may take is max_in_flight_bytes (64 MiB: bodies, decoders, inflated
        // chunks); beyond it only what serving 8 connections at once costs anyway (their
        // read buffers, the blocking threads), a few MiB. 533 MiB before the fix.
        assert!(
            peak_kib < idle_kib + (64 + 8) * 1024,
            "{encoding}: peak {peak_kib} KiB, idle {idle_kib} KiB: over max_in_flight_bytes (64 MiB)"
        );
        // And it goes back: nothing of the inflated output stays resident.
        assert!(
            eventually(Duration::from_secs(5), || proc_status_kib(pid, "VmRSS:")
                < idle_kib + 24 * 1024),
            "{encoding}: still {} KiB resident after the bombs (idle {idle_kib} KiB)",
            proc_status_kib(pid, "VmRSS:")
        );
    }
}
