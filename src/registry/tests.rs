use super::matcher::{CallFacts, MatchMemo, ObservedCall};
use super::*;

const FIXTURE: &str = include_str!("../../tests/fixtures/operating-model/CONFIG.yaml");

fn registry(text: &str) -> Registry {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("CONFIG.yaml"), text).expect("write");
    Registry::load(dir.path(), &AgentLayers::default()).expect("valid registry")
}

fn problems(text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("CONFIG.yaml");
    std::fs::write(&path, text).expect("write");
    match Registry::load(&path, &AgentLayers::default()) {
        Err(RegistryError::Invalid { issues, .. }) => issues.iter().map(ToString::to_string).collect(),
        other => panic!("expected problems, got {other:?}"),
    }
}

fn attributed<'r>(registry: &'r Registry, facts: CallFacts<'_>) -> Option<&'r str> {
    let attribution = registry.matcher.attribute(&facts)?;
    Some(registry.integrations[attribution.integration].id.as_str())
}

/// Guarantees: the shared fixture loads unchanged, with categories, kinds, connections and
/// the seeds' other fields kept as metadata.
#[test]
fn loads_the_operating_model_fixture() {
    let registry = registry(FIXTURE);
    assert_eq!(registry.integrations.len(), 15);
    let servicenow = registry
        .integrations
        .iter()
        .find(|i| i.id == "incident-management")
        .expect("ServiceNow");
    assert_eq!(servicenow.name, "ServiceNow");
    assert_eq!(servicenow.category, "enterprise_toolchain");
    assert_eq!(servicenow.kind, "itsm");
    assert_eq!(servicenow.connection, Connection::Mcp);
    assert_eq!(servicenow.metadata["sync_direction"], "bidirectional");
    assert_eq!(servicenow.metadata["mcp_server"], "true");
    let grafana = registry
        .integrations
        .iter()
        .find(|i| i.id == "dashboards")
        .expect("Grafana");
    assert_eq!(grafana.connection, Connection::DataExport);
    assert_eq!(registry.version.len(), 12);
}

/// Guarantees: name matching is case- and punctuation-insensitive over tool names and hosts.
#[test]
fn matches_by_name() {
    let registry = registry(FIXTURE);
    let tool = |name| CallFacts {
        tool: Some(name),
        ..Default::default()
    };
    let host = |name| CallFacts {
        server_address: Some(name),
        ..Default::default()
    };
    assert_eq!(
        attributed(&registry, tool("servicenow.create_incident")),
        Some("incident-management")
    );
    assert_eq!(
        attributed(&registry, host("mcp.servicenow.acme.internal")),
        Some("incident-management")
    );
    assert_eq!(attributed(&registry, tool("jira_search")), Some("work-tracking"));
    assert_eq!(
        attributed(&registry, tool("github_actions_dispatch")),
        Some("primary-pipeline")
    );
    assert_eq!(attributed(&registry, tool("Slack-Post-Message")), Some("team-chat"));
    let url = CallFacts {
        url: Some("https://api.zendesk.com/v2/tickets"),
        ..Default::default()
    };
    assert_eq!(attributed(&registry, url), Some("customer-support"));
    assert_eq!(attributed(&registry, tool("confluence_search")), None);
    assert_eq!(attributed(&registry, tool("jirassic")), None, "whole words only");
}

/// Guarantees: matching through a request's memo gives what matching each call anew gives:
/// for repeated calls, for calls that differ in one input only, for calls with nothing to
/// match or with a value that is not UTF-8, and past the number of calls the memo remembers.
#[test]
fn remembered_matches_agree_with_matching_anew() {
    let registry = registry(FIXTURE);
    fn call<'a>(
        tool: Option<&'a [u8]>,
        server_address: Option<&'a str>,
        provider: Option<&'a str>,
    ) -> ObservedCall<'a> {
        let mut call = ObservedCall::default();
        call.observe(b"gen_ai.tool.name", || tool);
        call.observe(b"server.address", || server_address.map(str::as_bytes));
        call.observe(b"gen_ai.provider.name", || provider.map(str::as_bytes));
        call
    }
    let generated: Vec<String> = (0..20).map(|i| format!("tool_{i}")).collect();
    let mut calls = vec![
        call(Some(b"jira_search"), None, None),
        call(Some(b"lookup"), Some("mcp.jira.acme.internal"), None),
        call(Some(b"lookup"), Some("other.acme.internal"), None),
        call(Some(b"lookup"), None, Some("servicenow")),
        call(None, None, None),
        call(Some(b"servicenow.create_incident"), None, None),
        call(Some(b"jira_\xffsearch"), None, None),
        call(Some(b"jira_\xffsearch"), Some("mcp.jira.acme.internal"), None),
    ];
    calls.extend(generated.iter().map(|tool| call(Some(tool.as_bytes()), None, None)));
    calls.push(call(Some(b"slack_post"), None, None));
    let mut memo = MatchMemo::default();
    let mut attributed = 0;
    for observed in calls.iter().chain(&calls).chain(&calls) {
        let anew = registry.matcher.attribute(&observed.facts()).map(|a| a.integration);
        assert_eq!(
            registry.matcher.integration_of(observed, &mut memo),
            anew,
            "{observed:?}"
        );
        attributed += usize::from(anew.is_some());
    }
    assert_eq!(attributed, 3 * 6);
}

/// Guarantees: explicit `match` rules win over name matching, by each rule kind.
#[test]
fn explicit_rules_take_precedence() {
    let text = r#"
integrations:
  enterprise_toolchain:
    itsm:
      - id: "work-tracking"
        name: "Jira"
        connection: "mcp"
      - id: "atlassian-cloud"
        name: "Atlassian Cloud"
        connection: "api"
        layers: [execution, quality]
        match:
          tools: ["jira_search"]
          tool_prefixes: ["confluence_"]
          hosts: ["*.atlassian.net", "wiki.acme.internal"]
          url_prefixes: ["https://api.acme.internal/atlassian/"]
          services: ["atlassian-gateway"]
"#;
    let registry = registry(text);
    let cases = [
        (
            CallFacts {
                tool: Some("jira_search"),
                ..Default::default()
            },
            "match.tools",
        ),
        (
            CallFacts {
                tool: Some("confluence_page_get"),
                ..Default::default()
            },
            "match.tool_prefixes",
        ),
        (
            CallFacts {
                server_address: Some("acme.atlassian.net"),
                ..Default::default()
            },
            "match.hosts",
        ),
        (
            CallFacts {
                server_address: Some("wiki.acme.internal"),
                ..Default::default()
            },
            "match.hosts",
        ),
        (
            CallFacts {
                url: Some("https://api.acme.internal/atlassian/rest/1"),
                ..Default::default()
            },
            "match.url_prefixes",
        ),
        (
            CallFacts {
                services: [Some("atlassian-gateway"), None, None, None],
                ..Default::default()
            },
            "match.services",
        ),
    ];
    for (facts, rule) in cases {
        let attribution = registry.matcher.attribute(&facts).expect("attributed");
        assert_eq!(
            registry.integrations[attribution.integration].id, "atlassian-cloud",
            "{facts:?}"
        );
        let said = attribution.rule.to_string();
        assert!(said.starts_with(rule), "{said} for {facts:?}");
    }
    assert_eq!(
        attributed(
            &registry,
            CallFacts {
                tool: Some("jira_create_issue"),
                ..Default::default()
            }
        ),
        Some("work-tracking")
    );
    assert_eq!(registry.integrations[1].layers, [Layer::Execution, Layer::Quality]);
}

/// Guarantees: every validation problem is reported, each with its key path and line.
#[test]
fn validation_names_path_and_line() {
    let text = "\
integrations:
  enterprise_toolchain:
    itsm:
      - id: \"jira\"
        name: \"Jira\"
        connection: \"mcp\"
      - id: \"jira\"
        name: \"Jira again\"
        connection: \"mcp\"
      - name: \"No id\"
        connection: \"api\"
      - id: \"fax\"
        name: \"Fax\"
        connection: \"carrier-pigeon\"
      - id: \"bad-layer\"
        name: \"Bad layer\"
        connection: \"data_export\"
        layers: [exec]
        match:
          tool: [x]
";
    let problems = problems(text);
    assert_eq!(
        problems,
        [
            "integrations.enterprise_toolchain.itsm[1].id (line 7): duplicate id `jira` (first registered at integrations.enterprise_toolchain.itsm[0])",
            "integrations.enterprise_toolchain.itsm[2] (line 10): missing `id`",
            "integrations.enterprise_toolchain.itsm[3].connection (line 14): unknown connection `carrier-pigeon` (known: mcp, api, webhook, data-export, opentelemetry)",
            "integrations.enterprise_toolchain.itsm[4].layers (line 18): unknown layer exec (known: steering, strategy, orchestration, execution, quality)",
            "integrations.enterprise_toolchain.itsm[4].match.tool (line 20): unknown field `tool`, expected one of `tools`, `tool_prefixes`, `hosts`, `url_prefixes`, `services`",
        ]
    );
}

/// Guarantees: a file without `integrations:` is refused with a pointer to what is wrong.
#[test]
fn requires_an_integrations_section() {
    let problems = problems("organization:\n  name: x\n");
    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("no `integrations:` section"), "{}", problems[0]);
}

/// Guarantees: `agents.layers` in CONFIG.yaml is read in order, then fleetpipe's own rules.
#[test]
fn agent_layers_from_both_places() {
    let text = FIXTURE.replace(
        "agents:\n  runtime",
        "agents:\n  layers:\n    \"planner-*\": strategy\n  runtime",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("CONFIG.yaml"), text).expect("write");
    let extra = AgentLayers(vec![("*".into(), Layer::Execution)]);
    let registry = Registry::load(dir.path(), &extra).expect("valid");
    assert_eq!(
        registry.agent_layers,
        [
            ("planner-*".to_owned(), Layer::Strategy),
            ("*".to_owned(), Layer::Execution)
        ]
    );
}

/// Scenario: a registry file is checked unchanged, edited into a broken version, checked again,
/// reloaded on demand (as SIGHUP does), then fixed.
/// Guarantees: an unchanged file is not loaded again; a broken version is refused once, not at
/// every check, unless a reload is asked for; the fixed file is loaded. The reload counter
/// counts the loads.
#[test]
fn checks_load_only_what_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("CONFIG.yaml");
    std::fs::write(&path, FIXTURE).expect("write");
    let config = RegistryConfig::at(path.clone());
    let metrics = Arc::new(Metrics::new());
    let handle = RegistryHandle::load(&config, &metrics).expect("valid registry");
    let first = handle.current().version.clone();
    let reloads = |outcome: &str| {
        let labels = vec![("outcome".to_owned(), outcome.to_owned())];
        metrics.registry_reloads.get_or_create(&labels).get()
    };

    assert!(!handle.reload(false).expect("unchanged"));
    assert_eq!((reloads("ok"), reloads("failed")), (0, 0));

    std::fs::write(
        &path,
        FIXTURE.replace("connection: \"api\"", "connection: \"telepathy\""),
    )
    .expect("break");
    assert!(matches!(handle.reload(false), Err(RegistryError::Invalid { .. })));
    assert!(!handle.reload(false).expect("refused once"));
    assert!(matches!(handle.reload(true), Err(RegistryError::Invalid { .. })));
    assert_eq!((reloads("ok"), reloads("failed")), (0, 2));
    assert_eq!(handle.current().version, first);

    std::fs::write(&path, FIXTURE.replace("id: \"work-tracking\"", "id: \"jira-cloud\"")).expect("fix");
    assert!(handle.reload(false).expect("fixed"));
    assert_ne!(handle.current().version, first);
    assert_eq!((reloads("ok"), reloads("failed")), (1, 2));
}

/// Guarantees: each key that can name an integration is noted in its own place, and a key one
/// byte off, wherever that byte is, is not noted.
#[test]
fn observed_keys_fill_their_places() {
    fn places(facts: CallFacts<'_>) -> [Option<&str>; 8] {
        let [a, b, c, d] = facts.services;
        [facts.tool, facts.server_address, facts.url, facts.provider, a, b, c, d]
    }
    let text_keys: [&[u8]; 8] = [
        b"gen_ai.tool.name",
        b"server.address",
        b"url.full",
        b"gen_ai.provider.name",
        b"peer.service",
        b"rpc.service",
        b"messaging.destination.name",
        b"db.system.name",
    ];
    for (place, key) in text_keys.iter().enumerate() {
        let mut call = ObservedCall::default();
        assert!(call.observe(key, || Some(b"v")), "{}", String::from_utf8_lossy(key));
        let mut expected = [None; 8];
        expected[place] = Some("v");
        assert_eq!(places(call.facts()), expected, "{}", String::from_utf8_lossy(key));
    }
    let operation_keys: [(&[u8], &[u8]); 2] = [
        (b"gen_ai.operation.name", b"execute_tool"),
        (b"mcp.method.name", b"tools/call"),
    ];
    for (key, value) in operation_keys {
        let mut call = ObservedCall::default();
        assert!(call.observe(key, || Some(value)), "{}", String::from_utf8_lossy(key));
        assert!(call.is_tool_call(), "{}", String::from_utf8_lossy(key));
        assert_eq!(places(call.facts()), [None; 8]);
    }
    let keys = text_keys.into_iter().chain(operation_keys.map(|(key, _)| key));
    for key in keys {
        for at in 0..key.len() {
            let mut near = key.to_vec();
            near[at] ^= 0x20;
            let mut call = ObservedCall::default();
            assert!(
                !call.observe(&near, || Some(b"v")),
                "{}",
                String::from_utf8_lossy(&near)
            );
        }
    }
    for other in [&b""[..], b"u", b"service.name", b"url.fulll"] {
        assert!(!ObservedCall::default().observe(other, || Some(b"v")));
    }
}
