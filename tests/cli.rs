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

/// Scenario: a config with four mistakes: a misspelt key, a URL that is not one, a memory
/// queue told to drop its oldest batches, and a pipeline naming an exporter that does not exist.
/// Guarantees: exit code 1 and all four reported by key path and line.
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
  otlp/vendor:
    endpoint: http://127.0.0.1:4317
    sending_queue: {when_full: drop_oldest}
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
    assert!(stderr.contains("bad.yaml has 4 problem(s)"), "{stderr}");
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
            "service.pipelines.traces.exporters (line 16): `otlp/honeycomb` is not defined under `exporters:`"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("exporters.otlp/vendor.sending_queue.when_full (line 11): drop_oldest needs `storage: disk`"),
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

fn fixture_registry(dir: &std::path::Path, text: &str) {
    std::fs::write(dir.join("CONFIG.yaml"), text).expect("write CONFIG.yaml");
}

const FIXTURE: &str = include_str!("fixtures/operating-model/CONFIG.yaml");

/// Guarantees: `validate` runs the registry load of start-up and reports its problems with
/// key path and line.
#[test]
fn validate_checks_the_registry() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture_registry(dir.path(), &FIXTURE.replace("id: \"crm\"", "id: \"team-chat\""));
    let config = "registry:\n  path: .\nprocessors:\n  enrich: {}\nreceivers:\n  otlp:\nexporters:\n  debug:\nservice:\n  pipelines:\n    traces: {receivers: [otlp], processors: [enrich], exporters: [debug]}\n";
    std::fs::write(dir.path().join("fleetpipe.yaml"), config).expect("write");
    let output = fleetpipe(&["validate", "--config", "fleetpipe.yaml"], dir.path());
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("integrations.communication.chat[0].id (line 83): duplicate id `team-chat` (first registered at integrations.business_systems.crm[0])"),
        "{stderr}"
    );
    fixture_registry(dir.path(), FIXTURE);
    let output = fleetpipe(&["validate", "--config", "fleetpipe.yaml"], dir.path());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Guarantees: `registry show` lists every integration; `registry explain` names the
/// integration, the rule and the layer for key=value attributes and for a span on stdin.
#[test]
fn registry_show_and_explain() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture_registry(dir.path(), FIXTURE);
    let output = fleetpipe(&["registry", "show", "--registry", "."], dir.path());
    assert!(output.status.success());
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.lines().any(|l| l.starts_with("incident-management")
            && l.contains("ServiceNow")
            && l.contains("enterprise_toolchain/itsm")
            && l.contains("mcp")),
        "{table}"
    );
    assert!(table.contains("15 integrations"), "{table}");

    let args = [
        "registry",
        "explain",
        "--registry",
        ".",
        "gen_ai.tool.name=jira_search",
        "operating_model.layer=execution",
    ];
    let output = fleetpipe(&args, dir.path());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("integration: work-tracking (Jira), enterprise_toolchain/itsm, connection mcp"),
        "{text}"
    );
    assert!(
        text.contains("rule: catalog \"Jira\" (tool_prefixes \"jira_\")"),
        "{text}"
    );
    assert!(
        text.contains("layer: execution (the resource's own operating_model.layer)"),
        "{text}"
    );

    let span = r#"{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"call","kind":3,
        "attributes":[{"key":"server.address","value":{"stringValue":"pastebin.example.com"}}]}"#;
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleetpipe"))
        .args(["registry", "explain", "--registry", "."])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), span.as_bytes()).expect("write stdin");
    let output = child.wait_with_output().expect("wait");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("integration: none registered"), "{text}");
    assert!(text.contains("+ integration.registered = false"), "{text}");
    assert!(text.contains("+ integration.target = pastebin.example.com"), "{text}");
}

/// Scenario: a pipeline lists `batch` before `enrich`.
/// Guarantees: `validate` refuses it at the key path of `batch` in the list, with its line,
/// instead of batching last whatever the list says.
#[test]
fn validate_refuses_batch_before_other_processors() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture_registry(dir.path(), FIXTURE);
    let config = "\
registry:
  path: .
receivers:
  otlp:
    protocols:
      grpc: {}
processors:
  batch: {}
  enrich: {}
exporters:
  debug: {}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch, enrich]
      exporters: [debug]
";
    std::fs::write(dir.path().join("order.yaml"), config).expect("write");
    let output = fleetpipe(&["validate", "--config", "order.yaml"], dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "service.pipelines.traces.processors[0] (line 16): `batch` must be the last processor: batching happens after the others"
        ),
        "{stderr}"
    );
    let last = config.replace("[batch, enrich]", "[enrich, batch]");
    std::fs::write(dir.path().join("order.yaml"), last).expect("write");
    let output = fleetpipe(&["validate", "--config", "order.yaml"], dir.path());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Scenario: two analytics exporters, each with the shipped detectors.
/// Guarantees: `validate` plans each exporter's detectors once and says so, one line each.
#[test]
fn validate_plans_each_analytics_exporter_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let queries = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("queries");
    let detectors = std::fs::read_dir(&queries)
        .expect("queries/")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "sql"))
        .count();
    let config = format!(
        "\
receivers:
  otlp:
    protocols:
      grpc: {{}}
exporters:
  analytics/a: {{queries: '{q}'}}
  analytics/b: {{queries: '{q}'}}
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [analytics/a, analytics/b]
",
        q = queries.display()
    );
    std::fs::write(dir.path().join("two.yaml"), config).expect("write");
    let output = fleetpipe(&["validate", "--config", "two.yaml"], dir.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let planned: Vec<&str> = stdout.lines().filter(|l| l.contains("detector(s) planned")).collect();
    assert_eq!(
        planned,
        [
            format!("exporters.analytics/a: {detectors} detector(s) planned"),
            format!("exporters.analytics/b: {detectors} detector(s) planned"),
        ],
        "{stdout}"
    );
}

/// Scenario: two pipelines feed one analytics exporter, their enrich processors writing
/// tags under different prefixes.
/// Guarantees: `validate` refuses it at the exporter, naming both prefixes: analytics could
/// read only one of them.
#[test]
fn validate_refuses_analytics_fed_tags_under_two_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture_registry(dir.path(), FIXTURE);
    let config = "\
registry:
  path: .
receivers:
  otlp:
    protocols:
      grpc: {}
processors:
  enrich: {}
  enrich/fp: {tag_prefix: fp.}
exporters:
  analytics: {}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [enrich]
      exporters: [analytics]
    traces/fp:
      receivers: [otlp]
      processors: [enrich/fp]
      exporters: [analytics]
";
    std::fs::write(dir.path().join("tags.yaml"), config).expect("write");
    let output = fleetpipe(&["validate", "--config", "tags.yaml"], dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "exporters.analytics (line 11): the pipelines feeding it write registry tags under different names (`integration.…` and `fp.…`)"
        ),
        "{stderr}"
    );
}

/// Scenario: one receiver listening on every interface without TLS or tokens, and one whose
/// certificate file is missing and whose token file holds no token.
/// Guarantees: the first is valid with a warning naming the listener and what it lacks; the
/// second is refused, each problem at its key path.
#[test]
fn validate_warns_of_open_listeners_and_refuses_unusable_security() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipelines = "
exporters:
  debug: {}
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [debug]}
";
    let open = format!("receivers:\n  otlp:\n    protocols:\n      grpc: {{endpoint: 0.0.0.0:4317}}\n{pipelines}");
    std::fs::write(dir.path().join("open.yaml"), open).expect("write");
    let output = fleetpipe(&["validate", "--config", "open.yaml"], dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: receivers.otlp.protocols.grpc.endpoint: 0.0.0.0:4317 is reachable beyond this host without TLS or auth"),
        "{stderr}"
    );
    std::fs::write(dir.path().join("tokens"), "# none yet\n").expect("tokens");
    let broken = format!(
        "receivers:
  otlp:
    auth: {{bearer_token_file: tokens}}
    protocols:
      grpc: {{tls: {{cert_file: missing.pem, key_file: missing.key}}}}
{pipelines}"
    );
    std::fs::write(dir.path().join("broken.yaml"), broken).expect("write");
    let output = fleetpipe(&["validate", "--config", "broken.yaml"], dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("receivers.otlp.protocols.grpc.tls (line 5): missing.pem:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("receivers.otlp.auth.bearer_token_file (line 3): tokens: no token in the file"),
        "{stderr}"
    );
}

/// Scenario: `--config /dev/zero` (endless), and a YAML alias bomb (nine levels of nine
/// aliases: 387 million strings if expanded).
/// Guarantees: both refused at once with exit code 1 and a message saying why; neither reads
/// or expands without bound.
#[test]
fn endless_and_exploding_configs_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = fleetpipe(&["validate", "--config", "/dev/zero"], dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot read /dev/zero: larger than 16 MiB"), "{stderr}");
    let mut bomb = String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for (level, below) in ('b'..='i').zip('a'..) {
        let aliases = vec![format!("*{below}"); 9].join(",");
        bomb.push_str(&format!("{level}: &{level} [{aliases}]\n"));
    }
    bomb.push_str("receivers: *i\n");
    std::fs::write(dir.path().join("bomb.yaml"), bomb).expect("write");
    let output = fleetpipe(&["validate", "--config", "bomb.yaml"], dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("repetition limit exceeded"), "{stderr}");
}

/// Scenario: a registry of 100,000 integrations, and one of 100,000 entries sharing one id.
/// Guarantees: the first is read whole (`registry show` counts them all); the second is
/// refused with every duplicate listed, the first hundred with their lines. Both finish
/// (finding each entry's line by reading the file again took minutes at this size).
#[test]
fn registries_of_a_hundred_thousand_integrations_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = |id: &dyn Fn(usize) -> String| {
        let mut text = String::from("integrations:\n  tools:\n    mcp:\n");
        for n in 0..100_000 {
            text.push_str(&format!(
                "      - id: \"{}\"\n        name: \"Tool {n}\"\n        connection: \"mcp\"\n",
                id(n)
            ));
        }
        text
    };
    std::fs::write(dir.path().join("large.yaml"), registry(&|n| format!("tool-{n}"))).expect("write");
    let output = fleetpipe(&["registry", "--registry", "large.yaml", "show"], dir.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        stdout.contains("100000 integrations"),
        "{}",
        &stdout[stdout.len().saturating_sub(300)..]
    );
    std::fs::write(dir.path().join("same.yaml"), registry(&|_| "tool".to_owned())).expect("write");
    let output = fleetpipe(&["registry", "--registry", "same.yaml", "show"], dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("has 99999 problem(s)"),
        "{}",
        &stderr[..stderr.len().min(300)]
    );
    assert!(
        stderr.contains("integrations.tools.mcp[1].id (line 7): duplicate id `tool`"),
        "{}",
        &stderr[..300]
    );
    assert!(stderr.contains("integrations.tools.mcp[99999].id: duplicate id `tool`"));
}

/// Issue 29, acceptance 5: with a registry, an `otlp` exporter is a vendor connection and
/// names its `observability` entry.
/// Guarantees: `validate` refuses one naming none, an unknown id, or a non-observability
/// entry, each at its key path; accepts it with `governance.allow_unregistered_exporters`
/// (with a warning) or when it names `apm-secondary`; without a registry the same exporter is
/// valid. `--explain` prints what each exporter gets. An archive in object storage (`s3://`)
/// is governed the same way, one in a folder is not.
#[test]
fn validate_governs_vendor_connections_by_the_registry() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture_registry(dir.path(), FIXTURE);
    let config = |registry: bool, otlp_extra: &str, top: &str| {
        format!(
            "{}{top}receivers:\n  otlp:\nexporters:\n  otlp:\n    endpoint: http://127.0.0.1:4317\n{otlp_extra}  debug:\n\
             service:\n  pipelines:\n    traces: {{receivers: [otlp], exporters: [otlp, debug]}}\n",
            if registry { "registry:\n  path: .\n" } else { "" }
        )
    };
    let validate = |text: String, extra: &[&str]| {
        std::fs::write(dir.path().join("fleetpipe.yaml"), text).expect("write");
        let mut args = vec!["validate", "--config", "fleetpipe.yaml"];
        args.extend_from_slice(extra);
        let output = fleetpipe(&args, dir.path());
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code(), text)
    };
    let (code, text) = validate(config(true, "", ""), &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("exporters.otlp: a vendor connection is an integration: name its registry entry (registered `observability` integrations: fleet-telemetry, apm-primary, apm-secondary, dashboards)"),
        "{text}"
    );
    // `run` refuses it at start the same way.
    let output = fleetpipe(&["run", "--config", "fleetpipe.yaml"], dir.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("exporters.otlp: a vendor connection is an integration"),
        "{stderr}"
    );
    let (code, text) = validate(config(true, "    integration: nope\n", ""), &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("exporters.otlp.integration: `nope` is not a registered integration"),
        "{text}"
    );
    let (code, text) = validate(config(true, "    integration: incident-management\n", ""), &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("exporters.otlp.integration: `incident-management` is registered under `enterprise_toolchain`, not `observability`"), "{text}");
    let (code, text) = validate(
        config(true, "", "governance: {allow_unregistered_exporters: true}\n"),
        &[],
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("warning: exporters.otlp: a vendor connection is an integration"),
        "{text}"
    );
    let (code, text) = validate(config(false, "", ""), &[]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = validate(
        config(
            true,
            "    integration: apm-secondary\n    data_flow: {unregistered: exclude}\n",
            "",
        ),
        &["--explain"],
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("exporters.otlp: signals: all; layers: all; integrations: all; unregistered calls: withheld; GenAI content: removed; removed: nothing else; hashed: nothing"),
        "{text}"
    );
    assert!(text.contains("exporters.debug: everything, unchanged"), "{text}");
    // An archive in object storage leaves the host as well; a local one does not.
    let archive = |path: &str, extra: &str| {
        config(true, "    integration: apm-secondary\n", "")
            .replace(
                "  debug:\n",
                &format!("  debug:\n  archive:\n    path: '{path}'\n{extra}"),
            )
            .replace("[otlp, debug]", "[otlp, debug, archive]")
    };
    let (code, text) = validate(archive("s3://fleet-archive/spans", ""), &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("exporters.archive: a vendor connection is an integration: name its registry entry"),
        "{text}"
    );
    let (code, text) = validate(
        archive("s3://fleet-archive/spans", "    integration: dashboards\n"),
        &[],
    );
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = validate(archive("archive", ""), &[]);
    assert_eq!(code, Some(0), "{text}");
}
