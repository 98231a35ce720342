//! Acceptance 6 and the command line: `validate` lists every problem by key path and line
//! with a non-zero exit; `config default` prints a config that `validate` accepts.

use std::process::{Command, Output};

fn fleetpipe(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetpipe"))
        .args(args)
        .current_dir(dir)
        .env_remove("FLEETPIPE_CONFIG")
        .output()
        .expect("run fleetpipe")
}

/// Scenario: a config with three mistakes: a misspelt key, a URL that is not one, and a
/// pipeline naming an exporter that does not exist.
/// Guarantees: exit code 1 and all three reported by key path and line.
#[test]
fn validate_reports_every_mistake() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = "\
receivers:
  otlp:
    protocols:
      grpc:
        endpiont: 127.0.0.1:4317
exporters:
  otlp/datadog:
    endpoint: datadog intake
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp/datadog, otlp/honeycomb]
";
    std::fs::write(dir.path().join("bad.yaml"), config).expect("write");
    let output = fleetpipe(&["validate", "--config", "bad.yaml"], dir.path());
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.yaml has 3 problem(s)"), "{stderr}");
    assert!(
        stderr.contains("receivers.otlp.protocols.grpc.endpiont (line 5): unknown field `endpiont`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("exporters.otlp/datadog.endpoint (line 8): relative URL without a base"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "service.pipelines.traces.exporters (line 13): `otlp/honeycomb` is not defined under `exporters:`"
        ),
        "{stderr}"
    );
}

/// Guarantees: the printed default config validates, and `run` refuses a broken config
/// before binding anything, with exit code 1.
#[test]
fn default_config_round_trips_and_run_refuses_bad_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = fleetpipe(&["config", "default"], dir.path());
    assert!(output.status.success());
    std::fs::write(dir.path().join("default.yaml"), &output.stdout).expect("write");
    let output = fleetpipe(&["validate", "--config", "default.yaml"], dir.path());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    std::fs::write(dir.path().join("broken.yaml"), "service: [\n").expect("write");
    let output = fleetpipe(&["run", "--config", "broken.yaml"], dir.path());
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("broken.yaml has 1 problem(s)"));
}

/// Guarantees: a missing `${env:…}` variable is named, with the key that uses it.
#[test]
fn missing_environment_variable_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = "exporters:\n  otlp:\n    endpoint: https://otlp.example:4317\n    headers:\n      x-api-key: ${env:FLEETPIPE_TEST_UNSET_KEY}\nreceivers:\n  otlp:\nservice:\n  pipelines:\n    traces: {receivers: [otlp], exporters: [otlp]}\n";
    std::fs::write(dir.path().join("env.yaml"), config).expect("write");
    let output = fleetpipe(&["validate", "--config", "env.yaml"], dir.path());
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "exporters.otlp.headers.x-api-key (line 5): environment variable FLEETPIPE_TEST_UNSET_KEY is not set"
        ),
        "{stderr}"
    );
}
