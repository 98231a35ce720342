//! Connections that send no request cannot lock real clients out (issue 28, "Hostile
//! input"): idle connections past `max_connections` on the gRPC port (40 past 20, and 2,000
//! past the default 1,024), and slowloris headers and bodies on the HTTP port.

use std::time::Duration;

use fleetpipe::otlp::{Payload, Signal};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::hostile::RSS_BOUND;
use crate::support::sink::Sink;
use crate::support::{
    Body, Fleetpipe, RssWatch, fixtures, forwarding_to, grpc_send, http_send, otlp_exporter, pipeline_config,
};

/// HTTP/2's connection preface and an empty SETTINGS frame: what a client sends first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// fleetpipe whose listeners hold at most 20 connections each.
async fn start_with_twenty_places() -> (Sink, Fleetpipe) {
    let sink = Sink::start().await;
    let config = pipeline_config(&otlp_exporter("otlp", &sink.endpoint()), &["otlp"], false)
        .replace(
            "grpc: {endpoint: '@GRPC@'}",
            "grpc: {endpoint: '@GRPC@', max_connections: 20}",
        )
        .replace(
            "http: {endpoint: '@HTTP@'}",
            "http: {endpoint: '@HTTP@', max_connections: 20}",
        );
    (sink.clone(), Fleetpipe::start(&config).await)
}

/// Scenario: 40 connections to the gRPC port (twice `max_connections`), half sending nothing,
/// half the HTTP/2 preface and SETTINGS, then nothing; all kept open.
/// Guarantees: a real client's export succeeds within 10 s, twice (before this, it timed out
/// for as long as the idle connections stayed open).
#[tokio::test]
async fn idle_connections_past_the_limit_do_not_lock_clients_out() {
    let (sink, fleetpipe) = start_with_twenty_places().await;
    let idle = open_idle(fleetpipe.grpc, 40).await;
    real_client_gets_in(&sink, &fleetpipe).await;
    drop(idle);
}

/// Scenario: the same with 2,000 connections against the default limit of 1,024.
/// Guarantees: a real client's export succeeds within 10 s, twice; fleetpipe's resident size
/// stays under 256 MiB while it holds them.
#[tokio::test]
async fn two_thousand_idle_connections_at_the_default_limit() {
    let sink = Sink::start().await;
    let fleetpipe = forwarding_to(&sink, false).await;
    let watch = fleetpipe.watch_rss();
    let idle = open_idle(fleetpipe.grpc, 2000).await;
    real_client_gets_in(&sink, &fleetpipe).await;
    assert_resident_size_bounded(watch);
    drop(idle);
}

/// Opens `count` connections to `address`, every other one sending the HTTP/2 preface and
/// SETTINGS, and lets them idle past the second after which a full listener may close them.
async fn open_idle(address: std::net::SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut idle = Vec::new();
    for n in 0..count {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        if n % 2 == 0 {
            // A connection waiting in the listen queue takes the bytes too.
            stream.write_all(H2_PREFACE).await.expect("preface");
        }
        idle.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    idle
}

/// A real client exports twice, each within 10 s, and both requests arrive.
async fn real_client_gets_in(sink: &Sink, fleetpipe: &Fleetpipe) {
    for round in 1..=2 {
        let spans = Payload::Traces(fixtures::agent_trace("real", 2));
        let sent = tokio::time::timeout(
            Duration::from_secs(10),
            grpc_send(&fleetpipe.grpc_endpoint(), spans, None),
        )
        .await;
        assert!(matches!(sent, Ok(Ok(_))), "round {round}: {sent:?}");
    }
    sink.wait_for(Signal::Traces, 4, Duration::from_secs(10)).await;
}

/// Scenario: 40 connections to the HTTP port trickle a request's header, a byte every 2 s,
/// reconnecting when closed.
/// Guarantees: a real client's POST succeeds within 10 s while they do; resident size under 256 MiB.
#[tokio::test]
async fn slowloris_headers_do_not_hold_the_http_port() {
    let (sink, fleetpipe) = start_with_twenty_places().await;
    let watch = fleetpipe.watch_rss();
    let address = fleetpipe.http;
    let attack = tokio::spawn(async move {
        let header = b"POST /v1/traces HTTP/1.1\r\nHost: fleetpipe\r\nContent-Type: application/x-protobuf\r\n";
        let mut streams = Vec::new();
        for _ in 0..40 {
            streams.push(TcpStream::connect(address).await.ok());
        }
        for byte in header.iter().cycle() {
            for stream in &mut streams {
                let alive = match stream {
                    Some(s) => s.write_all(&[*byte]).await.is_ok(),
                    None => false,
                };
                if !alive {
                    *stream = TcpStream::connect(address).await.ok();
                }
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(2500)).await;
    real_http_client_gets_in(&sink, address).await;
    attack.abort();
    assert_resident_size_bounded(watch);
}

/// Scenario: 40 connections to the HTTP port each send a whole header declaring a 100 kB body,
/// then trickle the body a byte a second, reconnecting when closed.
/// Guarantees: each is answered 408 within a few seconds (a body must arrive at 1 KiB/s on
/// average after 2 s), so a real client's POST succeeds within 10 s while they do (before,
/// each held its place for the 30 s read timeout); resident size under 256 MiB.
#[tokio::test]
async fn slowloris_bodies_do_not_hold_the_http_port() {
    let (sink, fleetpipe) = start_with_twenty_places().await;
    let watch = fleetpipe.watch_rss();
    let address = fleetpipe.http;
    let header = b"POST /v1/traces HTTP/1.1\r\nHost: fleetpipe\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100000\r\n\r\n";
    let connect = move || async move {
        let mut stream = TcpStream::connect(address).await.ok()?;
        stream.write_all(header).await.ok()?;
        Some(stream)
    };
    let attack = tokio::spawn(async move {
        let mut streams = Vec::new();
        for _ in 0..40 {
            streams.push(connect().await);
        }
        loop {
            for stream in &mut streams {
                let alive = match stream {
                    Some(s) => s.write_all(b"\x0a").await.is_ok(),
                    None => false,
                };
                if !alive {
                    *stream = connect().await;
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // What one of them is answered.
    let mut slow = connect().await.expect("connect");
    let answer = tokio::time::timeout(Duration::from_secs(15), async {
        let mut answer = Vec::new();
        loop {
            let _ = slow.write_all(b"\x0a").await;
            let mut chunk = [0u8; 512];
            match tokio::time::timeout(Duration::from_secs(1), slow.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return answer,
                Ok(Ok(n)) => answer.extend_from_slice(&chunk[..n]),
                Err(_) => {}
            }
        }
    })
    .await
    .expect("answered within 15 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("slower than 1024 bytes a second"), "{answer}");
    real_http_client_gets_in(&sink, address).await;
    attack.abort();
    assert_resident_size_bounded(watch);
}

/// The resident size stayed under the bound of every hostile input while `watch` watched.
fn assert_resident_size_bounded(watch: RssWatch) {
    let peak = watch.peak();
    eprintln!("peak resident size: {} MiB", peak >> 20);
    assert!(peak < RSS_BOUND, "resident size reached {} MiB", peak >> 20);
}

/// A real client POSTs twice over HTTP, each answered 200 within 10 s, and both arrive.
async fn real_http_client_gets_in(sink: &Sink, address: std::net::SocketAddr) {
    for round in 1..=2 {
        let spans = Payload::Traces(fixtures::agent_trace("real", 2));
        let sent = tokio::time::timeout(
            Duration::from_secs(10),
            http_send(address, &spans, Body::Protobuf, false),
        )
        .await;
        assert_eq!(sent.map(|r| r.status().as_u16()).ok(), Some(200), "round {round}");
    }
    sink.wait_for(Signal::Traces, 4, Duration::from_secs(10)).await;
}
