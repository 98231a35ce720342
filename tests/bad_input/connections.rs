//! Connections that send no request cannot lock real clients out (issue 28, "Hostile
//! input"): idle connections past `max_connections` on the gRPC port, and slowloris headers on
//! the HTTP port.

use std::time::Duration;

use fleetpipe::otlp::{Payload, Signal};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use crate::support::sink::Sink;
use crate::support::{Body, Fleetpipe, fixtures, grpc_send, http_send, otlp_exporter, pipeline_config};

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
    let mut idle = Vec::new();
    for n in 0..40 {
        let mut stream = TcpStream::connect(fleetpipe.grpc).await.expect("connect");
        if n % 2 == 0 {
            stream.write_all(H2_PREFACE).await.expect("preface");
        }
        idle.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
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
    drop(idle);
}

/// Scenario: 40 connections to the HTTP port trickle a request's header, a byte every 2 s,
/// reconnecting when closed.
/// Guarantees: a real client's POST succeeds within 10 s while they do.
#[tokio::test]
async fn slowloris_headers_do_not_hold_the_http_port() {
    let (sink, fleetpipe) = start_with_twenty_places().await;
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
    attack.abort();
}
