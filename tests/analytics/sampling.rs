//! Analytics' sampling over the running binary: windows keep about `max_spans_per_second`,
//! and whole traces.

use super::*;

/// A trace id's randomness (its last 56 bits), from its hex form.
fn randomness_of_hex(trace_id: &str) -> u64 {
    u64::from_str_radix(&trace_id[18..], 16).expect("hex trace id")
}

/// Scenario: 30 spans every 100 ms for 4 s against `max_spans_per_second: 30`, then none.
/// Guarantees: past `max_spans_per_second`, each window keeps the share of traces that fits the
/// rate (about 10 % here, halved within a window whose kept spans reach the cap), whole
/// traces of the sampling rule only, the window's recorded share; `history`
/// counts the window's spans scaled to estimates of all, and the spans kept; once the load
/// stops the windows keep every trace again; and the sink receives every span.
#[tokio::test]
async fn windows_keep_about_max_spans_per_second() {
    let setup = start(&[], "  max_spans_per_second: 30\n").await;
    let mut sampling_while_loaded = None;
    for tick in 0..40 {
        let spans = (0..10).flat_map(normal).collect();
        let request = fixtures::traces(&[("service.name", "planner-1")], spans);
        grpc_send(&setup.fleetpipe.grpc_endpoint(), Payload::Traces(request), None)
            .await
            .expect("accepted");
        if tick == 39 {
            sampling_while_loaded = Some(
                setup
                    .fleetpipe
                    .metric("fleetpipe_analytics_sampling_percentage", &[])
                    .await,
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sampling_while_loaded = sampling_while_loaded.expect("read at the last tick");
    assert!((2.0..=20.0).contains(&sampling_while_loaded), "{sampling_while_loaded}");
    tokio::time::sleep(Duration::from_millis(4000)).await;

    let windows = query(
        &setup,
        &[
            "--format",
            "csv",
            "SELECT CAST(window_start AS BIGINT) AS w, sampling_percentage FROM windows ORDER BY w",
        ],
    )
    .0;
    let windows: Vec<(i64, f64)> = windows
        .lines()
        .skip(1)
        .map(|line| {
            let (start, percentage) = line.split_once(',').expect("two columns");
            (start.parse().expect("start"), percentage.parse().expect("percentage"))
        })
        .collect();
    let lowest = windows.iter().map(|(_, p)| *p).fold(100.0, f64::min);
    assert!((2.0..=20.0).contains(&lowest), "{windows:?}");
    assert_eq!(windows.last().map(|w| w.1), Some(100.0), "{windows:?}");

    let sql = "SELECT CAST(window_start AS BIGINT) AS w, trace_id, count(*) AS spans FROM spans GROUP BY w, trace_id";
    let traces = query(&setup, &["--format", "csv", sql]).0;
    let history = "SELECT CAST(window_start AS BIGINT), sum(spans), sum(kept_spans) FROM history GROUP BY 1";
    let history: BTreeMap<i64, (i64, i64)> = query(&setup, &["--format", "csv", history])
        .0
        .lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<i64> = line.split(',').map(|f| f.parse().expect("a number")).collect();
            (fields[0], (fields[1], fields[2]))
        })
        .collect();
    let mut kept_spans: BTreeMap<i64, i64> = BTreeMap::new();
    for line in traces.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let start: i64 = fields[0].parse().expect("start");
        let percentage = windows.iter().find(|w| w.0 == start).expect("window of the span").1;
        let threshold = ((1.0 - percentage / 100.0) * (1u64 << 56) as f64).round() as u64;
        assert!(randomness_of_hex(fields[1]) >= threshold, "{line} at {percentage} %");
        assert_eq!(fields[2], "3", "a kept trace is whole: {line}");
        *kept_spans.entry(start).or_default() += 3;
    }
    for (start, percentage) in windows.iter().filter(|w| w.1 < 100.0) {
        let kept = kept_spans.get(start).copied().unwrap_or(0);
        let estimate = (kept as f64 * 100.0 / percentage).round() as i64;
        assert_eq!(
            history.get(start).copied().unwrap_or((0, 0)),
            (estimate, kept),
            "window {start} at {percentage} %"
        );
    }
    setup.sink.wait_for(Signal::Traces, 1200, Duration::from_secs(5)).await;
    assert_eq!(setup.sink.item_count(Signal::Traces), 1200);
}

/// Scenario: analytics samples half of the traces; 60 traces of three spans arrive.
/// Guarantees: the `spans` table holds every span of exactly the traces whose id's last 56
/// bits are at least 2^55 (OpenTelemetry's consistent probability sampling at 50%) and no
/// span of the others, while the sink receives every span.
#[tokio::test]
async fn sampling_keeps_the_spans_of_the_traces_the_rule_keeps() {
    let setup = start(&[], "  sampling_percentage: 50\n").await;
    let mut kept = Vec::new();
    for tick in 0..60 {
        let spans = normal(tick);
        let id = &spans[0].trace_id;
        let randomness = u64::from_be_bytes([&[0][..], &id[9..]].concat().try_into().expect("8 bytes"));
        if randomness >= 1 << 55 {
            kept.push(id.iter().map(|b| format!("{b:02x}")).collect::<String>());
        }
        let request = fixtures::traces(&[("service.name", "planner-1")], spans);
        grpc_send(&setup.fleetpipe.grpc_endpoint(), Payload::Traces(request), None)
            .await
            .expect("accepted");
    }
    assert!((15..=45).contains(&kept.len()), "{} of 60 traces at 50%", kept.len());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let sql = "SELECT trace_id, count(*) AS spans FROM spans GROUP BY trace_id ORDER BY trace_id";
    let csv = query(&setup, &["--format", "csv", sql]).0;
    kept.sort();
    let expected: String = kept.iter().map(|id| format!("{id},3\n")).collect();
    assert_eq!(csv, format!("trace_id,spans\n{expected}"));
    let sampling = "SELECT DISTINCT sampling_percentage FROM windows";
    assert_eq!(
        query(&setup, &["--format", "csv", sampling]).0,
        "sampling_percentage\n50.0\n"
    );
    setup.sink.wait_for(Signal::Traces, 180, Duration::from_secs(5)).await;
    assert_eq!(setup.sink.item_count(Signal::Traces), 180);
}

/// Scenario: `max_spans_per_second: 200` (1 s windows); right after start, a burst of 60
/// requests of 10 three-span traces (1,800 spans, nine times the cap) as fast as they are taken.
/// Guarantees: no window keeps more than the cap allows (200 spans, and 60 more for the
/// randomness of which traces fall above the share), each keeps whole traces of the share it
/// records, and the sink receives every span.
#[tokio::test]
async fn a_burst_right_after_start_stays_within_the_cap() {
    let setup = start(&[], "  max_spans_per_second: 200\n").await;
    for tick in 0..60 {
        let spans = (0..10).flat_map(|trace| normal(tick * 10 + trace)).collect();
        let request = fixtures::traces(&[("service.name", "planner-1")], spans);
        grpc_send(&setup.fleetpipe.grpc_endpoint(), Payload::Traces(request), None)
            .await
            .expect("accepted");
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let sql = "SELECT CAST(w.window_start AS BIGINT) AS w, w.sampling_percentage AS p, count(s.trace_id) AS spans \
               FROM windows w LEFT JOIN spans s ON s.window_start = w.window_start GROUP BY 1, 2 ORDER BY 1";
    let csv = query(&setup, &["--format", "csv", sql]).0;
    let windows: Vec<(f64, usize)> = csv
        .lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            (fields[1].parse().expect("share"), fields[2].parse().expect("spans"))
        })
        .collect();
    let kept: usize = windows.iter().map(|w| w.1).sum();
    assert!(kept > 0, "{csv}");
    assert!(windows.iter().all(|(_, spans)| *spans <= 260), "{csv}");
    assert!(
        windows.iter().any(|(share, _)| *share < 100.0),
        "the burst's window narrowed: {csv}"
    );
    let traces = "SELECT count(*) FROM (SELECT trace_id FROM spans GROUP BY trace_id HAVING count(*) <> 3)";
    assert_eq!(query(&setup, &["--format", "csv", traces]).0.lines().nth(1), Some("0"));
    setup.sink.wait_for(Signal::Traces, 1800, Duration::from_secs(10)).await;
    assert_eq!(setup.sink.item_count(Signal::Traces), 1800);
}
