//! Receiver security (issue 28, acceptance 1–4): TLS and mutual TLS with certificates the test
//! makes with `openssl`, bearer tokens on both transports, certificate and token rotation
//! without a restart, and no token in anything fleetpipe writes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fleetpipe::otlp::{Payload, Signal};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::support::sink::Sink;
use crate::support::tls::Authority;
use crate::support::{Fleetpipe, fixtures, otlp_exporter, pipeline_config};

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read pem")
}

/// What a gRPC client presents.
struct GrpcClient<'a> {
    trusted: &'a Path,
    identity: Option<(&'a Path, &'a Path)>,
    token: Option<&'a str>,
}

impl GrpcClient<'_> {
    async fn channel(&self, addr: std::net::SocketAddr) -> Result<Channel, tonic::transport::Error> {
        fleetpipe::export::install_crypto_provider();
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(self.trusted)))
            .domain_name("localhost");
        if let Some((cert, key)) = self.identity {
            tls = tls.identity(Identity::from_pem(read(cert), read(key)));
        }
        Channel::from_shared(format!("https://{addr}"))
            .expect("uri")
            .tls_config(tls)?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
    }

    /// Sends a few spans on `channel`.
    async fn export_on(&self, channel: Channel) -> Result<(), tonic::Status> {
        let mut request = tonic::Request::new(fixtures::agent_trace("secured", 2));
        if let Some(token) = self.token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().expect("metadata"));
        }
        TraceServiceClient::new(channel).export(request).await.map(drop)
    }

    /// Connects and sends; a refused handshake is UNAVAILABLE.
    async fn export(&self, addr: std::net::SocketAddr) -> Result<(), tonic::Status> {
        match self.channel(addr).await {
            Ok(channel) => self.export_on(channel).await,
            Err(error) => Err(tonic::Status::unavailable(format!("connect: {error:?}"))),
        }
    }
}

/// Posts spans over OTLP/HTTP with TLS; the status, or `None` when no answer came.
async fn https_post(
    addr: std::net::SocketAddr,
    trusted: &Path,
    identity: Option<(&Path, &Path)>,
    token: Option<&str>,
) -> Option<u16> {
    fleetpipe::export::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&read(trusted)).expect("ca"))
        .timeout(Duration::from_secs(5));
    if let Some((cert, key)) = identity {
        let pem = [read(cert), read(key)].concat();
        builder = builder.identity(reqwest::Identity::from_pem(&pem).expect("identity"));
    }
    let client = builder.build().expect("client");
    let body = Payload::Traces(fixtures::agent_trace("secured", 2))
        .encode_protobuf()
        .to_vec();
    let mut request = client
        .post(format!(
            "https://localhost:{}{}",
            addr.port(),
            Signal::Traces.http_path()
        ))
        .header("content-type", "application/x-protobuf")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.ok().map(|response| response.status().as_u16())
}

/// Whether `check` comes true within 10 s, asked every 100 ms.
async fn within_10s<F: Future<Output = bool>>(check: impl Fn() -> F) -> bool {
    for _ in 0..100 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

const TOKEN: &str = "tok-5f2e9a1c7d3b48e6a0c4";
const TOKEN_B: &str = "tok-b71c0e93d4a2f6581e3d";

/// Both receivers with TLS (`tls` YAML) and the token file `tokens`, logging at debug.
fn secured_config(sink: &Sink, tls: &str, tokens: &Path) -> String {
    pipeline_config(&otlp_exporter("otlp", &sink.endpoint()), &["otlp"], false)
        .replace(
            "grpc: {endpoint: '@GRPC@'}",
            &format!("grpc: {{endpoint: '@GRPC@', tls: {tls}}}"),
        )
        .replace(
            "http: {endpoint: '@HTTP@'}",
            &format!("http: {{endpoint: '@HTTP@', tls: {tls}}}"),
        )
        .replace(
            "    protocols:\n",
            &format!(
                "    auth: {{bearer_token_file: '{}', reload_interval: 200ms}}\n    protocols:\n",
                tokens.display()
            ),
        )
        .replace("  telemetry:\n", "  telemetry:\n    logs: {level: debug}\n")
}

/// What a secured fleetpipe starts from: a CA, a server certificate it signed (for localhost
/// and 127.0.0.1), a token file holding [`TOKEN`], and a sink.
struct Setup {
    certs: tempfile::TempDir,
    ca: Authority,
    server: (PathBuf, PathBuf),
    tokens: PathBuf,
    sink: Sink,
}

impl Setup {
    async fn new(ca: &str) -> Setup {
        let certs = tempfile::tempdir().expect("tempdir");
        let ca = Authority::new(certs.path(), ca);
        let server = ca.sign("server", true);
        let tokens = certs.path().join("tokens");
        std::fs::write(&tokens, format!("# rotated monthly\n{TOKEN}\n")).expect("tokens");
        Setup {
            certs,
            ca,
            server,
            tokens,
            sink: Sink::start().await,
        }
    }

    /// fleetpipe with TLS on both listeners (`more` settings added, e.g. `client_ca_file`)
    /// and the token file.
    async fn start(&self, more: &str) -> Fleetpipe {
        let (cert, key) = (self.server.0.display(), self.server.1.display());
        let tls = format!("{{cert_file: '{cert}', key_file: '{key}'{more}}}");
        Fleetpipe::start(&secured_config(&self.sink, &tls, &self.tokens)).await
    }

    /// The setting that requires client certificates signed by the CA.
    fn mutual(&self) -> String {
        format!(", client_ca_file: '{}'", self.ca.pem().display())
    }
}

#[tokio::test]
async fn tls_and_tokens_keep_out_who_has_neither() {
    let setup = Setup::new("ca").await;
    let (ca, sink) = (&setup.ca, &setup.sink);
    let other = Authority::new(setup.certs.path(), "other-ca");
    let (client_cert, client_key) = ca.sign("client", false);
    let (stranger_cert, stranger_key) = other.sign("stranger", false);
    let fleetpipe = setup.start(&setup.mutual()).await;
    let ca_pem = ca.pem();
    let client = |identity, token| GrpcClient {
        trusted: &ca_pem,
        identity,
        token,
    };
    let ours = Some((client_cert.as_path(), client_key.as_path()));
    let stranger = Some((stranger_cert.as_path(), stranger_key.as_path()));

    // gRPC: the right certificate and token get in; without a token or with a wrong one,
    // UNAUTHENTICATED, with the same message.
    client(ours, Some(TOKEN))
        .export(fleetpipe.grpc)
        .await
        .expect("accepted");
    let missing = client(ours, None).export(fleetpipe.grpc).await.expect_err("no token");
    let wrong = client(ours, Some("tok-wrong"))
        .export(fleetpipe.grpc)
        .await
        .expect_err("wrong token");
    assert_eq!(
        (missing.code(), wrong.code()),
        (Code::Unauthenticated, Code::Unauthenticated)
    );
    assert_eq!(
        missing.message(),
        wrong.message(),
        "a refusal does not say what was wrong"
    );
    // A client certificate from another CA, or none, is refused by TLS (with TLS 1.3 the
    // client learns it at its first request, as a failed or a closed connection): a transport
    // error, not a gRPC status.
    for identity in [stranger, None] {
        let refused = client(identity, Some(TOKEN))
            .export(fleetpipe.grpc)
            .await
            .expect_err("no cert");
        assert!(
            matches!(refused.code(), Code::Unavailable | Code::Unknown | Code::Cancelled),
            "{refused}"
        );
    }
    // Plain text on the TLS port is refused.
    let spans = Payload::Traces(fixtures::agent_trace("plain", 1));
    let plain = crate::support::grpc_send(&fleetpipe.grpc_endpoint(), spans.clone(), None).await;
    assert!(plain.is_err(), "plain text was accepted on a TLS port");

    // HTTP: the same rules.
    assert_eq!(https_post(fleetpipe.http, &ca_pem, ours, Some(TOKEN)).await, Some(200));
    assert_eq!(https_post(fleetpipe.http, &ca_pem, ours, None).await, Some(401));
    assert_eq!(
        https_post(fleetpipe.http, &ca_pem, ours, Some("tok-wrong")).await,
        Some(401)
    );
    assert_eq!(https_post(fleetpipe.http, &ca_pem, stranger, Some(TOKEN)).await, None);
    let plain = crate::support::http_client()
        .post(format!("http://{}/v1/traces", fleetpipe.http))
        .header("content-type", "application/x-protobuf")
        .body(spans.encode_protobuf().to_vec())
        .send()
        .await;
    assert!(
        plain.map_or(true, |r| !r.status().is_success()),
        "plain HTTP was accepted on a TLS port"
    );

    // Only the two authenticated requests reached the sink; the refusals are counted by reason.
    sink.wait_for(Signal::Traces, 4, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.item_count(Signal::Traces), 4);
    let metrics = fleetpipe.metrics_text().await;
    let refused = |reason: &str| {
        let label = format!("reason=\"{reason}\"");
        crate::support::metric_sum(&metrics, "fleetpipe_receiver_refused_requests_total", &[label.as_str()])
    };
    assert_eq!(refused("unauthenticated_missing"), 2.0, "{metrics}");
    assert_eq!(refused("unauthenticated_wrong"), 2.0);
    assert!(!metrics.contains(TOKEN) && !metrics.contains("tok-wrong"));

    // Acceptance 4: no token in the log or the metrics.
    let (_, log) = fleetpipe.terminate().await;
    assert!(log.contains("unauthenticated"), "refusals are logged at debug:\n{log}");
    for token in [TOKEN, "tok-wrong"] {
        assert!(!log.contains(token), "a token is in the log:\n{log}");
    }
}

#[tokio::test]
async fn certificates_and_tokens_rotate_without_a_restart() {
    let certs = tempfile::tempdir().expect("tempdir");
    let first = Authority::new(certs.path(), "first-ca");
    let second = Authority::new(certs.path(), "second-ca");
    let (old_cert, old_key) = first.sign("old", true);
    let (new_cert, new_key) = second.sign("new", true);
    let served_cert = certs.path().join("served.pem");
    let served_key = certs.path().join("served.key");
    let replace = |cert: &Path, key: &Path| {
        for (from, to) in [(key, &served_key), (cert, &served_cert)] {
            let staging = to.with_extension("staging");
            std::fs::copy(from, &staging).expect("copy");
            std::fs::rename(&staging, to).expect("rename");
        }
    };
    replace(&old_cert, &old_key);
    let tokens = certs.path().join("tokens");
    std::fs::write(&tokens, format!("{TOKEN}\n")).expect("tokens");
    let sink = Sink::start().await;
    let tls = format!(
        "{{cert_file: '{}', key_file: '{}', reload_interval: 200ms}}",
        served_cert.display(),
        served_key.display()
    );
    let fleetpipe = Fleetpipe::start(&secured_config(&sink, &tls, &tokens)).await;
    let (first_pem, second_pem) = (first.pem(), second.pem());
    let trusting = |ca, token| GrpcClient {
        trusted: ca,
        identity: None,
        token: Some(token),
    };
    let connected = trusting(&first_pem, TOKEN)
        .channel(fleetpipe.grpc)
        .await
        .expect("connect");
    trusting(&first_pem, TOKEN)
        .export_on(connected.clone())
        .await
        .expect("first export");

    // The certificate is replaced: new connections see the new one, the open one stays.
    replace(&new_cert, &new_key);
    let rotated = within_10s(|| async { trusting(&second_pem, TOKEN).export(fleetpipe.grpc).await.is_ok() }).await;
    assert!(rotated, "the new certificate was never served:\n{}", fleetpipe.log());
    assert!(
        trusting(&first_pem, TOKEN).export(fleetpipe.grpc).await.is_err(),
        "the old certificate is still served"
    );
    trusting(&first_pem, TOKEN)
        .export_on(connected.clone())
        .await
        .expect("the connection opened before the rotation still serves");

    // A broken replacement is refused, logged, and the certificate before it keeps serving.
    std::fs::write(
        &served_cert,
        "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n",
    )
    .expect("break");
    let logged = within_10s(|| async { fleetpipe.log().contains("do not load") }).await;
    assert!(logged, "a broken certificate was not reported:\n{}", fleetpipe.log());
    trusting(&second_pem, TOKEN)
        .export(fleetpipe.grpc)
        .await
        .expect("the last good certificate still serves");

    // Acceptance 3: a token rotated in the file takes effect without a restart.
    std::fs::write(&tokens, format!("{TOKEN_B}\n")).expect("rotate tokens");
    let swapped = within_10s(|| async { trusting(&second_pem, TOKEN_B).export(fleetpipe.grpc).await.is_ok() }).await;
    assert!(swapped, "the new token was never accepted:\n{}", fleetpipe.log());
    let old = trusting(&second_pem, TOKEN)
        .export(fleetpipe.grpc)
        .await
        .expect_err("old token");
    assert_eq!(old.code(), Code::Unauthenticated);
    let (_, log) = fleetpipe.terminate().await;
    for token in [TOKEN, TOKEN_B] {
        assert!(!log.contains(token), "a token is in the log:\n{log}");
    }
}

/// Scenario: an `otlp_http` destination that answers 503 with a 256 MiB body starting with a
/// line break, a NUL and a forged log line.
/// Guarantees: fleetpipe reads at most 1 MiB of each answer (RSS stays far below the body; an
/// unbounded read reached 2.2 GiB), keeps retrying, and logs the message escaped on one line.
#[tokio::test]
async fn a_hostile_destination_cannot_grow_memory_or_forge_log_lines() {
    use axum::body::Body;
    const FORGED: &str = "\n\0ERROR forged line from the destination";
    let chunk = bytes::Bytes::from(vec![b'x'; 1 << 20]);
    let router = axum::Router::new().fallback(move || {
        let chunks = std::iter::once(bytes::Bytes::from(FORGED)).chain(std::iter::repeat_n(chunk.clone(), 256));
        async move {
            let stream = futures::stream::iter(chunks.map(Ok::<_, std::io::Error>));
            (http::StatusCode::SERVICE_UNAVAILABLE, Body::from_stream(stream))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let destination = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    let exporter = format!(
        "otlp_http:\n  endpoint: http://{destination}\n  timeout: 20s\n  retry_on_failure: {{initial_interval: 50ms, max_interval: 100ms}}\n"
    );
    let fleetpipe = Fleetpipe::start(&pipeline_config(&exporter, &["otlp_http"], false)).await;
    let watch = fleetpipe.watch_rss();
    crate::support::grpc_send(
        &fleetpipe.grpc_endpoint(),
        Payload::Traces(fixtures::agent_trace("hostile", 2)),
        None,
    )
    .await
    .expect("accepted");
    let mut retried = false;
    for _ in 0..200 {
        if fleetpipe.log().matches("Export failed; retrying.").count() >= 5 {
            retried = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let peak = watch.peak();
    let log = fleetpipe.log();
    assert!(retried, "the destination's answers were not read and retried:\n{log}");
    assert!(peak < 200 << 20, "peak RSS {} MiB while answers were read", peak >> 20);
    assert!(
        log.contains(r"\n\u{0}ERROR forged line"),
        "the message is escaped:\n{log}"
    );
    assert!(
        !log.contains(FORGED),
        "a raw line break from the destination is in the log"
    );
}

/// Scenario: fleetpipe in a collector chain: one instance forwards over OTLP/gRPC and
/// OTLP/HTTP to another that requires a client certificate and a token.
/// Guarantees: with `tls.cert_file`/`key_file` and the token as a header, every span arrives
/// through both exporters.
#[tokio::test]
async fn exporters_present_client_certificates_to_a_mutual_tls_destination() {
    let setup = Setup::new("chain-ca").await;
    let (ca, sink) = (&setup.ca, &setup.sink);
    let (client_cert, client_key) = ca.sign("edge", false);
    let gateway = setup.start(&setup.mutual()).await;
    let client_tls = format!(
        "{{ca_file: '{}', cert_file: '{}', key_file: '{}'}}",
        ca.pem().display(),
        client_cert.display(),
        client_key.display()
    );
    let exporters = format!(
        "otlp:\n  endpoint: https://localhost:{}\n  tls: {client_tls}\n  headers: {{authorization: 'Bearer {TOKEN}'}}\n\
         otlp_http:\n  endpoint: https://localhost:{}\n  tls: {client_tls}\n  headers: {{authorization: 'Bearer {TOKEN}'}}\n",
        gateway.grpc.port(),
        gateway.http.port()
    );
    let edge = Fleetpipe::start(&pipeline_config(&exporters, &["otlp", "otlp_http"], false)).await;
    crate::support::grpc_send(
        &edge.grpc_endpoint(),
        Payload::Traces(fixtures::agent_trace("chain", 3)),
        None,
    )
    .await
    .expect("accepted");
    sink.wait_for(Signal::Traces, 6, Duration::from_secs(20)).await;
    let refused = gateway.metric("fleetpipe_receiver_refused_requests_total", &[]).await;
    assert_eq!(refused, 0.0, "{}", gateway.log());
}

/// Scenario: both OTLP exporters to a destination whose certificate no trusted CA signed,
/// with `tls.insecure_skip_verify` and a client certificate.
/// Guarantees: every span arrives through both; the warning is logged at start and printed by
/// `fleetpipe validate`.
#[tokio::test]
async fn insecure_skip_verify_reaches_an_untrusted_destination_with_a_warning() {
    let setup = Setup::new("untrusted-ca").await;
    let (client_cert, client_key) = setup.ca.sign("edge", false);
    let gateway = setup.start(&setup.mutual()).await;
    let tls = format!(
        "{{insecure_skip_verify: true, cert_file: '{}', key_file: '{}'}}",
        client_cert.display(),
        client_key.display()
    );
    let exporters = format!(
        "otlp:\n  endpoint: https://localhost:{}\n  tls: {tls}\n  headers: {{authorization: 'Bearer {TOKEN}'}}\n\
         otlp_http:\n  endpoint: https://localhost:{}\n  tls: {tls}\n  headers: {{authorization: 'Bearer {TOKEN}'}}\n",
        gateway.grpc.port(),
        gateway.http.port()
    );
    let config = pipeline_config(&exporters, &["otlp", "otlp_http"], false);
    let edge = Fleetpipe::start(&config).await;
    let spans = Payload::Traces(fixtures::agent_trace("untrusted", 3));
    crate::support::grpc_send(&edge.grpc_endpoint(), spans, None)
        .await
        .expect("accepted");
    setup.sink.wait_for(Signal::Traces, 6, Duration::from_secs(20)).await;
    let warning = "tls.insecure_skip_verify";
    assert_eq!(edge.log().matches(warning).count(), 2, "{}", edge.log());
    let validate = std::process::Command::new(env!("CARGO_BIN_EXE_fleetpipe"))
        .args(["validate", "--config"])
        .arg(edge.dir.path().join("fleetpipe.yaml"))
        .output()
        .expect("validate");
    let stderr = String::from_utf8_lossy(&validate.stderr);
    let expected = format!("warning: exporters.otlp.{warning}: the destination's certificate is not checked");
    assert!(validate.status.success() && stderr.contains(&expected), "{stderr}");
}

/// Scenario: a receiver with a named token (`team-a`) and an unnamed one; each client sends
/// spans whose resource already says `fleetpipe.client: team-b`.
/// Guarantees: the named token's spans arrive with `fleetpipe.client` = `team-a` only; the
/// unnamed token's arrive without it: no client passes as another.
#[tokio::test]
async fn named_tokens_tell_clients_apart_and_cannot_be_spoofed() {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
    let sink = Sink::start().await;
    let config = pipeline_config(&otlp_exporter("otlp", &sink.endpoint()), &["otlp"], false).replace(
        "    protocols:\n",
        &format!("    auth:\n      bearer_tokens: ['{TOKEN_B}']\n      tokens: [{{name: team-a, token: '{TOKEN}'}}]\n    protocols:\n"),
    );
    let fleetpipe = Fleetpipe::start(&config).await;
    for (token, span) in [(TOKEN, "named"), (TOKEN_B, "unnamed")] {
        let spans = fixtures::traces(
            &[("service.name", "agent"), ("fleetpipe.client", "team-b")],
            vec![fixtures::span(span, SpanKind::Client, &[])],
        );
        let response = crate::support::http_client()
            .post(format!("http://{}/v1/traces", fleetpipe.http))
            .header("content-type", "application/x-protobuf")
            .bearer_auth(token)
            .body(Payload::Traces(spans).encode_protobuf().to_vec())
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), 200);
    }
    sink.wait_for(Signal::Traces, 2, Duration::from_secs(10)).await;
    let mut clients = std::collections::BTreeMap::new();
    for payload in sink.received() {
        let Payload::Traces(request) = payload else { continue };
        for resource_spans in request.resource_spans {
            let named: Vec<String> = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .filter(|a| a.key == "fleetpipe.client")
                .filter_map(|a| match a.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .collect();
            let span = resource_spans.scope_spans[0].spans[0].name.clone();
            clients.insert(span, named);
        }
    }
    assert_eq!(clients["named"], ["team-a"]);
    assert!(clients["unnamed"].is_empty(), "{clients:?}");
}

/// Scenario: a TLS listener allowing 4 handshakes at once; 60 connections open and send
/// nothing, or the first bytes of a TLS record, then stall.
/// Guarantees: a real client's handshake and export succeed at once (within 3 s): stalled
/// connections take no handshake turn before their hello.
#[tokio::test]
async fn half_open_tls_connections_do_not_starve_handshakes() {
    use tokio::io::AsyncWriteExt as _;
    let setup = Setup::new("flood-ca").await;
    let fleetpipe = setup
        .start(", max_concurrent_handshakes: 4, handshake_timeout: 5s")
        .await;
    let mut stalled = Vec::new();
    for n in 0..60 {
        let mut stream = tokio::net::TcpStream::connect(fleetpipe.grpc).await.expect("connect");
        if n % 2 == 0 {
            stream.write_all(&[0x16, 0x03, 0x01]).await.expect("record start");
        }
        stalled.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ca_pem = setup.ca.pem();
    let client = GrpcClient {
        trusted: &ca_pem,
        identity: None,
        token: Some(TOKEN),
    };
    let exported = tokio::time::timeout(Duration::from_secs(3), client.export(fleetpipe.grpc)).await;
    assert!(matches!(exported, Ok(Ok(()))), "{exported:?}");
    drop(stalled);
}
