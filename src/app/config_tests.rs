//! The configuration as the component table types it: every section's problems with their
//! key paths and lines.

use super::components::Config;
use crate::config::{ConfigError, ConfigIssue, DEFAULT_CONFIG};
use crate::export::config::OtlpGrpcExporterConfig;
use crate::receiver::config::OtlpReceiverConfig;

fn otlp_receiver(config: &Config) -> &OtlpReceiverConfig {
    config.receivers["otlp"]
        .as_any()
        .downcast_ref()
        .expect("an otlp receiver")
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn issues_of(text: &str) -> Vec<ConfigIssue> {
    match Config::parse(text, "test.yaml", &no_env) {
        Ok(_) => Vec::new(),
        Err(ConfigError::Invalid { issues, .. }) => issues,
        Err(other) => panic!("unexpected error {other}"),
    }
}

/// Guarantees: the embedded defaults are valid, enrich every signal with ./CONFIG.yaml when
/// it exists, archive everything, and run the built-in detectors over the spans.
#[test]
fn default_config_is_valid() {
    let config = Config::parse(DEFAULT_CONFIG, "default", &no_env).expect("default config");
    assert_eq!(config.service.pipelines.len(), 3);
    for (name, pipeline) in &config.service.pipelines {
        assert_eq!(pipeline.processors, ["enrich", "batch"], "{name}");
        let analytics = name == "traces";
        let exporters = [
            &["debug", "file", "archive"][..],
            if analytics { &["analytics"] } else { &[] },
        ]
        .concat();
        assert_eq!(pipeline.exporters, exporters, "{name}");
    }
    let registry = config.registry.as_ref().expect("a registry");
    assert!(registry.optional, "runs without an operating model");
    assert_eq!(registry.path, std::path::Path::new("CONFIG.yaml"));
    let otlp = otlp_receiver(&config);
    assert_eq!(otlp.protocols.grpc.as_ref().map(|g| g.endpoint.port()), Some(4317));
    assert_eq!(otlp.protocols.http.as_ref().map(|h| h.endpoint.port()), Some(4318));
    assert_eq!(otlp.max_request_bytes(), 64 << 20);
}

/// Guarantees: misspelt keys are refused in every section, each with its path and line.
#[test]
fn unknown_keys_are_refused_everywhere() {
    let text = "\
receivers:
  otlp:
    protocols:
      grpc:
        endpont: 127.0.0.1:4317
processors:
  batch:
    send_batch_sise: 10
exporters:
  debug:
    verbosty: basic
  otlp:
    endpoint: http://localhost:4317
    sending_queue:
      size: 3
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
      procesors: []
";
    let issues = issues_of(text);
    let got: Vec<(String, Option<usize>)> = issues.iter().map(|i| (i.path.clone(), i.line)).collect();
    assert_eq!(
        got,
        [
            ("receivers.otlp.protocols.grpc.endpont".to_owned(), Some(5)),
            ("processors.batch.send_batch_sise".to_owned(), Some(8)),
            ("exporters.debug.verbosty".to_owned(), Some(11)),
            ("exporters.otlp.sending_queue.size".to_owned(), Some(15)),
            ("service.pipelines.traces.procesors".to_owned(), Some(21)),
        ]
    );
}

/// Guarantees: semantic problems are all reported together, with paths and lines.
#[test]
fn collects_every_problem() {
    let text = "\
exporters:
  otlp/vendor:
    endpoint: not a url
  otlp_http:
    endpoint: ftp://x
  splunk_hec: {}
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp_http, missing]
";
    let rendered: Vec<String> = issues_of(text).iter().map(ToString::to_string).collect();
    assert_eq!(rendered.len(), 5, "{rendered:#?}");
    assert!(
        rendered[0].starts_with("exporters.otlp/vendor.endpoint (line 3): relative URL"),
        "{}",
        rendered[0]
    );
    assert!(
        rendered[1].starts_with("exporters.splunk_hec (line 6): unknown exporter type `splunk_hec`"),
        "{}",
        rendered[1]
    );
    assert!(
        rendered[2].starts_with("service.pipelines.traces.receivers (line 10): `otlp` is not defined"),
        "{}",
        rendered[2]
    );
    assert!(
        rendered[3].starts_with("service.pipelines.traces.exporters (line 11): `missing` is not defined"),
        "{}",
        rendered[3]
    );
    assert!(
        rendered[4].starts_with("exporters.otlp_http.endpoint (line 5): not an http"),
        "{}",
        rendered[4]
    );
}

/// Guarantees: `${env:…}` values are substituted before typing, and a missing one is named.
#[test]
fn environment_substitution() {
    let text = "\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:${env:GRPC_PORT}
exporters:
  otlp:
    endpoint: http://localhost:4317
    headers:
      api-key: ${env:VENDOR_KEY}
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [otlp]}
";
    let env = |name: &str| (name == "GRPC_PORT").then(|| "5317".to_owned());
    let Err(ConfigError::Invalid { issues, .. }) = Config::parse(text, "t", &env) else {
        panic!("VENDOR_KEY is unset");
    };
    assert_eq!(issues.len(), 1);
    assert_eq!(
        issues[0].to_string(),
        "exporters.otlp.headers.api-key (line 10): environment variable VENDOR_KEY is not set"
    );
    let env = |name: &str| match name {
        "GRPC_PORT" => Some("5317".to_owned()),
        "VENDOR_KEY" => Some("k".to_owned()),
        _ => None,
    };
    let config = Config::parse(text, "t", &env).expect("valid with both set");
    let otlp = otlp_receiver(&config);
    assert_eq!(otlp.protocols.grpc.as_ref().map(|g| g.endpoint.port()), Some(5317));
    let exporter: &OtlpGrpcExporterConfig = config.exporters["otlp"].as_any().downcast_ref().expect("otlp exporter");
    assert_eq!(exporter.0.headers["api-key"], "k");
}

/// Guarantees: YAML syntax errors carry their line.
#[test]
fn syntax_errors_have_lines() {
    let issues = issues_of("service:\n  pipelines:\n    traces: [unclosed\n");
    assert_eq!(issues.len(), 1);
    assert!(issues[0].line.is_some(), "{issues:?}");
}

/// Guarantees: exporter compression levels outside the algorithm's range and an empty byte
/// budget are refused at their key paths.
#[test]
fn compression_level_and_queue_bytes_are_checked() {
    let text = "\
receivers:
  otlp:
    protocols:
      grpc: {}
exporters:
  otlp:
    endpoint: http://127.0.0.1:4317
    compression_params: {level: 12}
    sending_queue: {max_megabytes: 0}
  otlp_http:
    endpoint: http://127.0.0.1:4318
    compression: zstd
    compression_params: {level: 12}
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp, otlp_http]
";
    let rendered: Vec<String> = issues_of(text).iter().map(ToString::to_string).collect();
    assert_eq!(
        rendered,
        vec![
            "exporters.otlp.compression_params.level (line 8): 12 is not a level of gzip compression (1..=9)",
            "exporters.otlp.sending_queue (line 9): queue_size, num_consumers and max_megabytes must be at least 1",
        ],
        "zstd level 12 is valid"
    );
}

/// Guarantees: analytics settings that cannot work are reported with key path and line, and
/// the edges of the valid range pass.
#[test]
fn analytics_settings_out_of_range_are_located() {
    let config = |percentage: &str| {
        format!(
            "\
receivers:
  otlp:
    protocols:
      grpc: {{}}
exporters:
  analytics:
    window: 0s
    queue_size: 0
    sampling_percentage: {percentage}
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [analytics]
"
        )
    };
    let rendered =
        |percentage: &str| -> Vec<String> { issues_of(&config(percentage)).iter().map(ToString::to_string).collect() };
    let fixed = [
        "exporters.analytics.window (line 7): must be longer than 0s",
        "exporters.analytics.queue_size (line 8): must be at least 1",
    ];
    for bad in ["0", "100.5", "-3"] {
        let mut expected = fixed.to_vec();
        expected.push("exporters.analytics.sampling_percentage (line 9): must be above 0 and at most 100");
        assert_eq!(rendered(bad), expected, "sampling_percentage: {bad}");
    }
    for good in ["100", "0.01"] {
        assert_eq!(rendered(good), fixed, "sampling_percentage: {good}");
    }
}
