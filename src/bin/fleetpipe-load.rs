//! Load generator: sends pre-encoded OTLP/gRPC trace requests of agent-like spans (GenAI and
//! MCP attributes, 100 spans a request) over N connections, at a fixed rate or flat out, and
//! reports accepted spans/s and request latency percentiles.
//!
//! `fleetpipe-load --endpoint http://127.0.0.1:4317 --connections 4 --seconds 20 [--rate 500] [--shape semconv|content]`

#[path = "../../tests/support/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;

use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use fleetpipe::grpc_codec::RawCodec;
use fleetpipe::otlp::Payload;
use http::uri::PathAndQuery;
use tonic::transport::Channel;

#[derive(Debug, Parser)]
struct Args {
    /// OTLP/gRPC endpoint of the system under test.
    #[arg(long, default_value = "http://127.0.0.1:4317")]
    endpoint: String,
    /// Concurrent connections, one sender each.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// How long to send.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Requests per second over all connections; 0 sends flat out.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Spans per request.
    #[arg(long, default_value_t = 100)]
    spans: usize,
    /// Distinct pre-encoded requests to cycle through.
    #[arg(long, default_value_t = 64)]
    distinct: usize,
    /// How the spans look.
    #[arg(long, value_enum, default_value_t = Shape::Minimal)]
    shape: Shape,
    /// Build every request anew, with trace and span ids never sent before (for an archive
    /// the report reads as a real fleet's), instead of cycling through `distinct` ones.
    #[arg(long)]
    fresh: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Shape {
    /// A few GenAI attributes a span, every span field set, one tool call in three.
    Minimal,
    /// The attributes the GenAI and MCP conventions recommend, two tool calls in three.
    Semconv,
    /// `minimal`, with 2 KiB of messages (`gen_ai.input.messages`, `gen_ai.output.messages`)
    /// on every model span: what content redaction has to take out.
    Content,
}

impl Shape {
    fn trace(self, service: &str, spans: usize) -> Payload {
        Payload::Traces(match self {
            Shape::Minimal => fixtures::agent_trace(service, spans),
            Shape::Semconv => fixtures::semconv_agent_trace(service, spans),
            Shape::Content => with_messages(fixtures::agent_trace(service, spans)),
        })
    }
}

/// The request with 1 KiB of input and 1 KiB of output messages on each model (`chat`) span.
fn with_messages(
    mut request: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
) -> opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
    let message = |role: &str| format!("[{{\"role\":\"{role}\",\"content\":\"{}\"}}]", "x".repeat(990));
    let spans = request
        .resource_spans
        .iter_mut()
        .flat_map(|r| &mut r.scope_spans)
        .flat_map(|s| &mut s.spans);
    for span in spans.filter(|span| span.name.starts_with("chat")) {
        span.attributes
            .push(fixtures::string("gen_ai.input.messages", &message("user")));
        span.attributes
            .push(fixtures::string("gen_ai.output.messages", &message("assistant")));
    }
    request
}

/// What one connection saw.
#[derive(Default)]
struct Tally {
    accepted: u64,
    refused: u64,
    latencies: Vec<Duration>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let agents = ["planner-1", "triage-agent", "code-reviewer", "deploy-executor"];
    let requests: Vec<Bytes> = (0..args.distinct)
        .map(|i| args.shape.trace(agents[i % agents.len()], args.spans).encode_protobuf())
        .collect();
    let path = PathAndQuery::from_static("/opentelemetry.proto.collector.trace.v1.TraceService/Export");
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let per_connection = if args.rate > 0.0 {
        Some(Duration::from_secs_f64(args.connections as f64 / args.rate))
    } else {
        None
    };
    let mut senders = Vec::new();
    for connection in 0..args.connections {
        let channel = Channel::from_shared(args.endpoint.clone())?.connect().await?;
        let requests = requests.clone();
        let path = path.clone();
        let (shape, spans, fresh) = (args.shape, args.spans, args.fresh);
        senders.push(tokio::spawn(async move {
            let mut client = tonic::client::Grpc::new(channel);
            let mut tally = Tally::default();
            let mut next = Instant::now();
            let mut index = connection;
            while Instant::now() < deadline {
                if let Some(interval) = per_connection {
                    tokio::time::sleep_until(next.into()).await;
                    next += interval;
                }
                let body = match fresh {
                    true => shape.trace(agents[index % agents.len()], spans).encode_protobuf(),
                    false => requests[index % requests.len()].clone(),
                };
                index += 1;
                let started = Instant::now();
                if client.ready().await.is_err() {
                    tally.refused += 1;
                    continue;
                }
                match client.unary(tonic::Request::new(body), path.clone(), RawCodec).await {
                    Ok(_) => {
                        tally.accepted += 1;
                        tally.latencies.push(started.elapsed());
                    }
                    Err(_) => tally.refused += 1,
                }
            }
            tally
        }));
    }
    let started = Instant::now();
    let mut total = Tally::default();
    for sender in senders {
        let tally = sender.await?;
        total.accepted += tally.accepted;
        total.refused += tally.refused;
        total.latencies.extend(tally.latencies);
    }
    let elapsed = started.elapsed().as_secs_f64();
    total.latencies.sort();
    let percentile = |p: f64| {
        let index = ((total.latencies.len() as f64 * p) as usize).min(total.latencies.len().saturating_sub(1));
        total.latencies.get(index).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let spans = total.accepted * args.spans as u64;
    println!(
        "{{\"accepted_requests\":{},\"refused_requests\":{},\"accepted_spans\":{spans},\"seconds\":{elapsed:.3},\"spans_per_second\":{:.0},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
        total.accepted,
        total.refused,
        spans as f64 / elapsed,
        percentile(0.50),
        percentile(0.99)
    );
    Ok(())
}
