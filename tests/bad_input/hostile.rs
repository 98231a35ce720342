//! Hostile requests (issue 28, "Hostile input"): decompression bombs on both encodings and
//! transports, values nested 100,000 deep over gRPC and OTLP/JSON, a million attributes in one
//! span, and HTTP/2 floods (rapid reset, CONTINUATION,
//! empty DATA, SETTINGS) on the gRPC port. Each gets its documented answer while fleetpipe's
//! resident size stays under a bound, and the next good request succeeds.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::sink::Sink;
use crate::support::{Fleetpipe, forwarding_to, http_client};
use crate::{TRACE_EXPORT, good_request_still_works, raw_grpc};

/// The resident size fleetpipe stays under through each attack here.
pub(crate) const RSS_BOUND: usize = 256 << 20;

async fn start() -> (Sink, Fleetpipe) {
    let sink = Sink::start().await;
    let fleetpipe = forwarding_to(&sink, false).await;
    (sink, fleetpipe)
}

fn assert_bounded(peak: usize, attack: &str) {
    assert!(peak < RSS_BOUND, "{attack}: resident size reached {} MiB", peak >> 20);
}

/// A protobuf field of wire type LEN.
fn len_field(number: u32, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 8);
    put_varint(&mut out, u64::from(number << 3 | 2));
    put_varint(&mut out, content.len() as u64);
    out.extend_from_slice(content);
    out
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A trace export request of one span with the given encoded attributes (`KeyValue`s).
fn span_request(attributes: &[u8]) -> Bytes {
    let mut span = len_field(1, &[7; 16]);
    span.extend(len_field(2, &[9; 8]));
    span.extend(len_field(5, b"hostile"));
    span.extend_from_slice(attributes);
    let scope_spans = len_field(2, &span);
    let resource_spans = len_field(2, &scope_spans);
    Bytes::from(len_field(1, &resource_spans))
}

/// Scenario: bodies that inflate to 1 GiB of zeros (sixteen gzip members or zstd frames of
/// 64 MiB each), gzip and zstd, over gRPC and over HTTP, against the default 64 MiB limit.
/// Guarantees: RESOURCE_EXHAUSTED / 413 saying the limit was passed after decompression;
/// resident size under 384 MiB (each refusal first inflates up to the limit, in buffers that
/// double, which the allocator keeps for a while: about 210 MiB measured); good requests
/// succeed after.
#[tokio::test]
async fn decompression_bombs_on_every_encoding_and_transport() {
    let (sink, fleetpipe) = start().await;
    let zeros = vec![0u8; 64 << 20];
    let mut zstd = Vec::new();
    fleetpipe::compression::compress(fleetpipe::compression::Encoding::Zstd, 3, &[&zeros], &mut zstd).expect("zstd");
    let gzip = fleetpipe::compression::gzip(&zeros).expect("gzip");
    let watch = fleetpipe.watch_rss();
    let grpc = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    for (encoding, member) in [("gzip", &gzip), ("zstd", &zstd)] {
        let bomb = member.repeat(16);
        let response = http_client()
            .post(format!("http://{}/v1/traces", fleetpipe.http))
            .header("content-type", "application/x-protobuf")
            .header("content-encoding", encoding)
            .body(bomb.clone())
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), 413, "HTTP {encoding}");
        let body = response.bytes().await.expect("body");
        assert!(
            String::from_utf8_lossy(&body).contains("after decompression"),
            "HTTP {encoding}"
        );

        let mut message = vec![1];
        message.extend_from_slice(&(bomb.len() as u32).to_be_bytes());
        message.extend_from_slice(&bomb);
        let response = grpc
            .post(format!("http://{}{TRACE_EXPORT}", fleetpipe.grpc))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("grpc-encoding", encoding)
            .body(message)
            .send()
            .await
            .expect("gRPC POST");
        let status = response.headers().get("grpc-status").cloned();
        let message = response.headers().get("grpc-message").cloned();
        // RESOURCE_EXHAUSTED is 8.
        assert_eq!(
            status.as_ref().and_then(|s| s.to_str().ok()),
            Some("8"),
            "gRPC {encoding}: {message:?}"
        );
    }
    let peak = watch.peak();
    assert!(
        peak < 384 << 20,
        "decompression bombs: resident size reached {} MiB",
        peak >> 20
    );
    good_request_still_works(&sink, &fleetpipe).await;
}

/// Scenario: a span attribute whose value is an array in an array … 100,000 deep, sent as
/// protobuf over gRPC (the data path does not decode values, so it is taken and forwarded; a
/// destination that refuses it costs only that span) and as OTLP/JSON over HTTP (refused,
/// 400, past JSON's nesting limit of 128).
/// Guarantees: those answers; resident size under 256 MiB; good requests succeed after.
#[tokio::test]
async fn values_nested_a_hundred_thousand_deep() {
    let (sink, fleetpipe) = start().await;
    let watch = fleetpipe.watch_rss();
    let mut value = Vec::new();
    for _ in 0..100_000 {
        let array = len_field(1, &value);
        value = len_field(5, &array);
    }
    let mut attribute = len_field(1, b"deep");
    attribute.extend(len_field(2, &value));
    let request = span_request(&len_field(9, &attribute));
    raw_grpc(&fleetpipe.grpc_endpoint(), TRACE_EXPORT, request, false)
        .await
        .expect("taken over gRPC");

    let depth = 100_000;
    let json = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"0102030405060708090a0b0c0d0e0f10",
        "spanId":"0102030405060708","name":"deep","attributes":[{{"key":"deep","value":{}{}}}]}}]}}]}}]}}"#,
        r#"{"arrayValue":{"values":["#.repeat(depth),
        "]}}".repeat(depth)
    );
    let response = http_client()
        .post(format!("http://{}/v1/traces", fleetpipe.http))
        .header("content-type", "application/json")
        .body(json)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 400);
    let body = response.text().await.expect("body");
    assert!(body.contains("recursion limit exceeded"), "{body}");
    assert_bounded(watch.peak(), "nesting");
    good_request_still_works(&sink, &fleetpipe).await;
}

/// Scenario: one span with a million attributes of one byte each (about 9 MB) over gRPC.
/// Guarantees: taken; resident size under 256 MiB; good requests succeed after.
#[tokio::test]
async fn a_million_attributes_in_one_span() {
    let (sink, fleetpipe) = start().await;
    let watch = fleetpipe.watch_rss();
    let mut attribute = len_field(1, b"k");
    attribute.extend(len_field(2, &len_field(1, b"v")));
    let one = len_field(9, &attribute);
    let request = span_request(&one.repeat(1_000_000));
    raw_grpc(&fleetpipe.grpc_endpoint(), TRACE_EXPORT, request, false)
        .await
        .expect("taken");
    good_request_still_works(&sink, &fleetpipe).await;
    assert_bounded(watch.peak(), "a million attributes");
}

/// An HTTP/2 frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const CONTINUATION: u8 = 9;
const END_HEADERS: u8 = 4;

/// HPACK for a gRPC export request's header: `:method POST`, `:scheme http` from the static
/// table; `:path`, `:authority` and `content-type` as literals with indexed names; `te`.
fn export_headers() -> Vec<u8> {
    let mut block = vec![0x83, 0x86];
    let literal = |block: &mut Vec<u8>, name_prefix: &[u8], value: &[u8]| {
        block.extend_from_slice(name_prefix);
        block.push(value.len() as u8);
        block.extend_from_slice(value);
    };
    literal(&mut block, &[0x04], TRACE_EXPORT.as_bytes());
    literal(&mut block, &[0x01], b"fleetpipe");
    literal(&mut block, &[0x0f, 0x10], b"application/grpc");
    literal(&mut block, &[0x00, 0x02, b't', b'e'], b"trailers");
    block
}

/// Connects to `address`, sends the client preface and SETTINGS, then `frames` for up to
/// `seconds` or until fleetpipe closes the connection; reads (and drops) what it answers
/// only when `read` says so. Whether fleetpipe closed the connection.
async fn flood(address: SocketAddr, seconds: u64, read: bool, mut frames: impl FnMut(u32) -> Vec<u8>) -> bool {
    let stream = TcpStream::connect(address).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let drain = tokio::spawn(async move {
        let mut buffer = vec![0u8; 64 << 10];
        while read && matches!(reader.read(&mut buffer).await, Ok(n) if n > 0) {}
        // Not reading is the attack: the socket's receive buffer fills.
        if !read {
            std::future::pending::<()>().await;
        }
    });
    let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    preface.extend(frame(SETTINGS, 0, 0, &[]));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let mut closed = writer.write_all(&preface).await.is_err();
    let mut n = 0;
    while !closed && tokio::time::Instant::now() < deadline {
        let write = tokio::time::timeout_at(deadline, writer.write_all(&frames(n))).await;
        closed = matches!(write, Ok(Err(_)));
        n += 1;
    }
    drain.abort();
    closed
}

/// Scenario: HTTP/2 floods on the gRPC port, 5 s each: rapid reset (a request opened and
/// cancelled at once, over and over: CVE-2023-44487), a CONTINUATION flood (a header block
/// that never ends), an empty-DATA flood (a request body of endless empty frames), a SETTINGS
/// flood (SETTINGS frames without reading their ACKs).
/// Guarantees: fleetpipe closes the rapid-reset and CONTINUATION connections; resident size
/// stays under 256 MiB through all four; good requests succeed after each.
#[tokio::test]
async fn http2_floods() {
    let (sink, fleetpipe) = start().await;
    let address = fleetpipe.grpc;
    let headers = export_headers();

    let watch = fleetpipe.watch_rss();
    let closed = flood(address, 5, true, |n| {
        let stream = 2 * n + 1;
        let mut frames = frame(HEADERS, END_HEADERS, stream, &headers);
        frames.extend(frame(RST_STREAM, 0, stream, &8u32.to_be_bytes()));
        frames
    })
    .await;
    assert!(closed, "rapid reset: the connection was left open");
    assert_bounded(watch.peak(), "rapid reset");
    good_request_still_works(&sink, &fleetpipe).await;

    let watch = fleetpipe.watch_rss();
    let junk = [b'a'; 16 << 10];
    let closed = flood(address, 5, true, |n| match n {
        0 => frame(HEADERS, 0, 1, &headers),
        _ => frame(CONTINUATION, 0, 1, &junk),
    })
    .await;
    assert!(closed, "CONTINUATION flood: the connection was left open");
    assert_bounded(watch.peak(), "CONTINUATION flood");
    good_request_still_works(&sink, &fleetpipe).await;

    let watch = fleetpipe.watch_rss();
    flood(address, 5, true, |n| match n {
        0 => frame(HEADERS, END_HEADERS, 1, &headers),
        _ => frame(DATA, 0, 1, &[]),
    })
    .await;
    assert_bounded(watch.peak(), "empty DATA flood");
    good_request_still_works(&sink, &fleetpipe).await;

    let watch = fleetpipe.watch_rss();
    flood(address, 5, false, |_| frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100])).await;
    assert_bounded(watch.peak(), "SETTINGS flood");
    good_request_still_works(&sink, &fleetpipe).await;
}
