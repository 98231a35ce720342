//! Issue 26 over the running binary: the known-vendor catalog attributes the seeds' registry
//! without `match` rules, and `registry suggest` makes the entries for what stays shadow.

use super::*;

/// Scenario: the seeds' registry (names only, no `match` rules) and the calls of a fleet to
/// the vendors it registers: tool spans carrying only a tool name, HTTP and MCP client spans
/// carrying a URL or a server address.
/// Guarantees: each carries the integration the known-vendor catalog recognises by the
/// registered name; a GitHub call that is not GitHub Actions and an unknown host stay shadow.
#[tokio::test]
async fn known_vendors_are_attributed_without_match_rules() {
    use SpanKind::{Client, Internal};
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let fleetpipe = start(&sink, &write_registry(dir.path(), FIXTURE), false).await;
    let tool = |name: &'static str| {
        fixtures::span(
            name,
            Internal,
            &[("gen_ai.operation.name", "execute_tool"), ("gen_ai.tool.name", name)],
        )
    };
    let get = |name: &'static str, url: &'static str| {
        fixtures::span(name, Client, &[("http.request.method", "GET"), ("url.full", url)])
    };
    let mcp = |name: &'static str, host: &'static str| {
        fixtures::span(
            name,
            Client,
            &[("mcp.method.name", "tools/call"), ("server.address", host)],
        )
    };
    let request = fixtures::traces(
        &[("service.name", "release-agent")],
        vec![
            tool("github_trigger_workflow"),
            tool("jira_search"),
            get(
                "dispatch",
                "https://api.github.com/repos/acme/app/actions/workflows/ci.yml/dispatches",
            ),
            get("issues", "https://api.github.com/repos/x/y/issues"),
            get("jira rest", "https://acme.atlassian.net/rest/api/3/search"),
            mcp("atlassian mcp", "mcp.atlassian.com"),
            get("servicenow", "https://acme.service-now.com/api/now/table/incident"),
            get("slack", "https://slack.com/api/chat.postMessage"),
            get("salesforce", "https://acme.my.salesforce.com/services/data/v60.0/query"),
            get("snyk", "https://api.snyk.io/rest/orgs/acme/issues"),
            get("unknown", "https://weather.example.net/today"),
        ],
    );
    grpc_send(&fleetpipe.grpc_endpoint(), Payload::Traces(request), None)
        .await
        .expect("accepted");
    sink.wait_for(Signal::Traces, 11, Duration::from_secs(10)).await;
    let spans = received_spans(&sink);
    let id_of = |name: &str| {
        let tags = integration_tags(&spans[name].1);
        match tags.get("integration.registered").map(String::as_str) {
            Some("true") => tags["integration.id"].clone(),
            Some("false") => format!("shadow {}", tags["integration.target"]),
            _ => "untagged".into(),
        }
    };
    let expected = [
        ("github_trigger_workflow", "primary-pipeline"),
        ("jira_search", "work-tracking"),
        ("dispatch", "primary-pipeline"),
        ("issues", "shadow api.github.com"),
        ("jira rest", "work-tracking"),
        ("atlassian mcp", "work-tracking"),
        ("servicenow", "incident-management"),
        ("slack", "team-chat"),
        ("salesforce", "crm"),
        ("snyk", "vulnerability-scanning"),
        ("unknown", "shadow weather.example.net"),
    ];
    for (name, id) in expected {
        assert_eq!(id_of(name), id, "span {name:?}");
    }
    assert_eq!(
        integration_tags(&spans["dispatch"].1),
        tags(
            "primary-pipeline",
            "GitHub Actions",
            "enterprise_toolchain",
            "ci_cd",
            "webhook"
        )
    );
}

/// Runs the fleetpipe binary with `args` in `dir`; returns its standard output, or panics
/// with what it printed.
fn fleetpipe_command(args: &[&str], dir: &Path) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_fleetpipe"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("fleetpipe runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Scenario: agents call pastebin.com and a GitHub endpoint the seeds' registry does not
/// cover (it registers GitHub Actions only); a reviewer runs `registry suggest` against the
/// running instance, appends its snippet to CONFIG.yaml, validates and lets fleetpipe reload.
/// Guarantees: the snippet has an entry for each target (GitHub by its catalog name, likely
/// GitHub Actions by vendor; pastebin.com with a host rule, close to nothing registered);
/// `fleetpipe validate` accepts the registry with it; after the reload the same traffic is
/// attributed to the new entries and `suggest` finds nothing left.
#[tokio::test]
async fn registry_suggest_makes_entries_that_attribute_the_same_traffic() {
    use SpanKind::Client;
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = write_registry(dir.path(), FIXTURE);
    let fleetpipe = start(&sink, &registry, false).await;
    let traffic = || {
        let post = |name: &'static str, url: &'static str| {
            fixtures::span(name, Client, &[("http.request.method", "POST"), ("url.full", url)])
        };
        fixtures::traces(
            &[
                ("service.name", "release-agent"),
                ("operating_model.layer", "execution"),
            ],
            vec![
                post("paste", "https://pastebin.com/api/api_post.php?api_dev_key=secret"),
                post("issue", "https://api.github.com/repos/acme/app/issues"),
            ],
        )
    };
    grpc_send(&fleetpipe.grpc_endpoint(), Payload::Traces(traffic()), None)
        .await
        .expect("accepted");
    sink.wait_for(Signal::Traces, 2, Duration::from_secs(10)).await;
    let snippet = fleetpipe_command(
        &["registry", "suggest", "--endpoint", &fleetpipe.metrics_endpoint()],
        dir.path(),
    );
    let yaml: serde_yaml::Value = serde_yaml::from_str(&snippet).expect("the snippet is YAML");
    let entries = yaml["unreviewed"]["apis"].as_sequence().expect("entries").clone();
    let names: Vec<&str> = entries.iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(names, ["GitHub", "pastebin.com"], "{snippet}");
    assert_eq!(entries[1]["match"]["hosts"][0], "pastebin.com");
    assert_eq!(entries[1]["layers"][0], "execution");
    assert!(!snippet.contains("secret"), "the URL's query is not kept: {snippet}");
    assert!(
        snippet.contains("likely `primary-pipeline` (GitHub Actions) by vendor"),
        "{snippet}"
    );
    let mut text = FIXTURE.to_owned();
    text.push_str(&snippet);
    std::fs::write(&registry, text).expect("registry with the snippet");
    fleetpipe_command(&["validate"], dir.path());
    for _ in 0..50 {
        if fleetpipe.log().contains("Integration registry reloaded") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    grpc_send(&fleetpipe.grpc_endpoint(), Payload::Traces(traffic()), None)
        .await
        .expect("accepted");
    sink.wait_for(Signal::Traces, 4, Duration::from_secs(10)).await;
    // By name, the spans received last: those sent after the reload.
    let spans = received_spans(&sink);
    let id_of = |name: &str| integration_tags(&spans[name].1).get("integration.id").cloned();
    assert_eq!(id_of("paste").as_deref(), Some("pastebin"));
    assert_eq!(id_of("issue").as_deref(), Some("github"));
    let left = fleetpipe_command(
        &["registry", "suggest", "--endpoint", &fleetpipe.metrics_endpoint()],
        dir.path(),
    );
    assert!(left.starts_with("# No shadow integrations"), "{left}");
}
