//! Findings over the running binary: one signal file per ongoing anomaly, one OTLP record
//! when it opens and one when it resolves (across a restart), webhooks with retries.

use super::*;

/// Scenario: shadow calls continue for 6 windows, then stop.
/// Guarantees: one signal file for the whole anomaly, updated on each run, then resolved.
#[tokio::test]
async fn ongoing_anomaly_keeps_one_signal_file() {
    let setup = start(&[], "").await;
    drive(&setup, "planner-1", 6.0, |_| {
        vec![call("confluence_search", StatusCode::Ok, 20, vec![])]
    })
    .await;
    let files = signal_files(&setup, "shadow-integration");
    assert_eq!(files.len(), 1, "{files:?}");
    let front = files.values().next().expect("file");
    assert_eq!(front["status"], "active");
    assert!(front["runs"].parse::<u32>().expect("runs") >= 5, "{front:?}");
    assert_ne!(front["first_seen"], front["last_seen"]);
    for _ in 0..40 {
        if signal_files(&setup, "shadow-integration")
            .values()
            .any(|f| f["status"] == "resolved")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let files = signal_files(&setup, "shadow-integration");
    assert_eq!(files.len(), 1, "still one file: {files:?}");
    let front = files.values().next().expect("file");
    assert_eq!(front["status"], "resolved");
    assert!(front.contains_key("resolved_at"));
}

/// The lifecycle states of the anomaly records of `detector` for `key`, in the order sent,
/// with their finding ids and first sightings.
fn lifecycle_of(sink: &Sink, detector: &str, key: &str) -> Vec<(String, String, String)> {
    anomalies(sink)
        .into_iter()
        .filter(|(d, a)| d == detector && a["fleetpipe.key"] == key)
        .map(|(_, a)| {
            let field = |name: &str| a.get(name).cloned().unwrap_or_default();
            (
                field("fleetpipe.finding.state"),
                field("fleetpipe.finding.id"),
                field("fleetpipe.finding.first_seen"),
            )
        })
        .collect()
}

/// Waits until 50 ms into the next second, when a 1 s window starts: traffic sent from then
/// on fills whole windows, so the count a window sees does not double from a partial first.
async fn at_a_window_start() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    tokio::time::sleep(Duration::from_millis(1050) - Duration::from_nanos(u64::from(now.subsec_nanos()))).await;
}

/// Scenario: a shadow tool is called through ten detector runs, with fleetpipe restarted
/// after the fifth, then no more.
/// Guarantees: exactly one `open` record, none while it lasts (the reminder is 15 min away),
/// one `resolved` record after it stops, all with one finding id and first sighting; the
/// restart continues the anomaly from its signal file instead of opening it again;
/// `/metrics` counts it open while it lasts.
#[tokio::test]
async fn an_ongoing_anomaly_is_announced_when_it_opens_and_resolves() {
    let setup = start(&[], "").await;
    let shadow = |_| vec![call("confluence_search", StatusCode::Ok, 20, vec![])];
    at_a_window_start().await;
    drive(&setup, "planner-1", 5.0, shadow).await;
    let open = setup
        .fleetpipe
        .metric(
            "fleetpipe_findings_open",
            &["detector=\"shadow-integration\"", "severity=\"high\""],
        )
        .await;
    assert_eq!(open, 1.0);
    let Setup {
        sink,
        fleetpipe,
        signals,
        queries,
        config,
        _dir,
    } = setup;
    let (status, log) = fleetpipe.terminate().await;
    assert!(status.success(), "{log}");
    let setup = Setup {
        fleetpipe: Fleetpipe::start(&config).await,
        sink,
        signals,
        queries,
        config,
        _dir,
    };
    drive(&setup, "planner-1", 5.0, shadow).await;
    for _ in 0..80 {
        if lifecycle_of(&setup.sink, "shadow-integration", "confluence_search/planner-1").len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let records = lifecycle_of(&setup.sink, "shadow-integration", "confluence_search/planner-1");
    let states: Vec<&str> = records.iter().map(|(state, _, _)| state.as_str()).collect();
    assert_eq!(states, ["open", "resolved"], "{records:?}\n{}", setup.fleetpipe.log());
    assert_eq!(records[0].1, records[1].1, "one finding id");
    assert_eq!(records[0].1.len(), 16);
    assert_eq!(records[0].2, records[1].2, "one first sighting");
    let files = signal_files(&setup, "shadow-integration");
    let front = files.values().next().expect("signal file");
    assert_eq!(
        (front["status"].as_str(), front["state"].as_str()),
        ("resolved", "resolved")
    );
    assert_eq!(front["id"], records[0].1);
    assert!(front["runs"].parse::<u32>().expect("runs") >= 8, "{front:?}");
    let open = setup
        .fleetpipe
        .metric("fleetpipe_findings_open", &["shadow-integration"])
        .await;
    assert_eq!(open, 0.0);
}

/// Scenario: a webhook for `high` findings that answers 503 to its first request.
/// Guarantees: a high-severity finding is POSTed as JSON, retried after the 503; medium
/// findings are not sent to it.
#[tokio::test]
async fn webhook_receives_findings_with_retry() {
    use std::sync::{Arc, Mutex};
    let received: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = {
        let received = Arc::clone(&received);
        let attempts = Arc::clone(&attempts);
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: String| {
                let received = Arc::clone(&received);
                let attempts = Arc::clone(&attempts);
                async move {
                    if attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                        return http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    received
                        .lock()
                        .expect("lock")
                        .push(serde_json::from_str(&body).expect("JSON body"));
                    http::StatusCode::OK
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind hook");
    let hook = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let setup = start(
        &[],
        &format!("  webhooks:\n    - {{url: '{hook}', min_severity: high}}\n"),
    )
    .await;
    let looping = fixtures::span("x", SpanKind::Internal, &[]).trace_id;
    let mut spans: Vec<Span> = (0..12)
        .map(|_| {
            let mut span = call("jira_search", StatusCode::Ok, 20, vec![]);
            span.trace_id = looping.clone();
            span
        })
        .collect();
    spans.push(call("confluence_search", StatusCode::Ok, 20, vec![]));
    send(&setup, "planner-1", spans).await;
    finding(&setup, "shadow-integration").await;
    finding(&setup, "tool-call-loop").await;
    for _ in 0..50 {
        if !received.lock().expect("lock").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bodies = received.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 1, "only the high finding, once: {bodies:?}");
    assert_eq!(bodies[0]["detector"], "shadow-integration");
    assert_eq!(bodies[0]["severity"], "high");
    assert_eq!(bodies[0]["findings"][0]["attributes"]["target"], "confluence_search");
    assert_eq!(
        attempts.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "retried once after the 503"
    );
}
