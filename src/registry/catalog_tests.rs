use std::collections::BTreeMap;

use super::*;
use crate::registry::matcher::Rule;
use crate::registry::{AgentLayers, Registry};

const FIXTURE: &str = include_str!("../../tests/fixtures/operating-model/CONFIG.yaml");

fn registry(text: &str) -> Registry {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("CONFIG.yaml"), text).expect("write");
    Registry::load(dir.path(), &AgentLayers::default()).expect("valid registry")
}

fn url(url: &str) -> CallFacts<'_> {
    CallFacts {
        url: Some(url),
        ..CallFacts::default()
    }
}

fn tool(tool: &str) -> CallFacts<'_> {
    CallFacts {
        tool: Some(tool),
        ..CallFacts::default()
    }
}

fn attributed<'r>(registry: &'r Registry, facts: CallFacts<'_>) -> Option<&'r str> {
    let attribution = registry.matcher.attribute(&facts)?;
    Some(registry.integrations[attribution.integration].id.as_str())
}

/// Guarantees: the built-in catalog parses, lists at least 40 vendors each with a source,
/// passes its own checks, and claims no tool, tool prefix, host or path twice (a second
/// claim would never be reached).
#[test]
fn built_in_catalog_is_sound() {
    let vendors = &*BUILT_IN;
    assert!(vendors.len() >= 40, "{} vendors", vendors.len());
    assert!(
        vendors
            .iter()
            .all(|v| v.source.as_deref().is_some_and(|s| s.contains("://")))
    );
    assert_eq!(entry_problems(vendors, "vendors"), Vec::<(String, String)>::new());
    let mut claimed: BTreeMap<String, usize> = BTreeMap::new();
    for product in &Catalog::builtin().products {
        let c = &product.claims;
        for claim in [&c.tools, &c.tool_prefixes, &c.hosts, &c.paths].into_iter().flatten() {
            *claimed.entry(claim.to_lowercase()).or_default() += 1;
        }
    }
    let twice: Vec<_> = claimed.into_iter().filter(|(_, n)| *n > 1).collect();
    assert!(twice.is_empty(), "claimed twice: {twice:?}");
}

/// Guarantees: with the seeds' registry (names only, no `match` rules), calls to the vendors'
/// hosts, paths and tools are attributed to the integration named after the product; a
/// product's path or tool beats its vendor's host, and a vendor's call that is no registered
/// product's stays unattributed, as does an unknown host.
#[test]
fn registry_names_bind_catalog_products() {
    let registry = registry(FIXTURE);
    let cases = [
        (tool("github_trigger_workflow"), Some("primary-pipeline")),
        (tool("list_workflow_runs"), Some("primary-pipeline")),
        (
            url("https://api.github.com/repos/acme/app/actions/workflows/ci.yml/dispatches"),
            Some("primary-pipeline"),
        ),
        (url("https://api.github.com/repos/x/y/issues"), None),
        (tool("jira_search"), Some("work-tracking")),
        (tool("searchJiraIssuesUsingJql"), Some("work-tracking")),
        (
            url("https://acme.atlassian.net/rest/api/3/search?jql=x"),
            Some("work-tracking"),
        ),
        (url("https://mcp.atlassian.com/v1/sse"), Some("work-tracking")),
        (url("https://acme.atlassian.net/wiki/rest/api/content"), None),
        (
            url("https://acme.service-now.com/api/now/table/incident"),
            Some("incident-management"),
        ),
        (url("https://slack.com/api/chat.postMessage"), Some("team-chat")),
        (
            url("https://acme.my.salesforce.com/services/data/v60.0/query"),
            Some("crm"),
        ),
        (
            url("https://api.snyk.io/rest/orgs/1/issues"),
            Some("vulnerability-scanning"),
        ),
        (url("https://acme.datadoghq.com/api/v1/query"), Some("apm-secondary")),
        (url("https://api.sendgrid.com/v3/mail/send"), Some("notifications")),
        (tool("argocd_sync_application"), Some("deployments")),
        (url("https://pastebin.com/api/api_post.php"), None),
    ];
    for (facts, expected) in cases {
        assert_eq!(attributed(&registry, facts), expected, "{facts:?}");
    }
}

/// Guarantees: `registry explain`'s rule names the catalog, the product and the claim.
#[test]
fn attribution_names_the_catalog_claim() {
    let registry = registry(FIXTURE);
    let facts = url("https://api.github.com/repos/acme/app/actions/runs");
    let attribution = registry.matcher.attribute(&facts).expect("attributed");
    assert_eq!(
        attribution.rule,
        Rule::Catalog {
            product: "GitHub Actions",
            claim: "paths",
            entry: "api.github.com/repos/*/*/actions/"
        }
    );
    assert_eq!(
        attribution.rule.to_string(),
        "catalog \"GitHub Actions\" (paths \"api.github.com/repos/*/*/actions/\")"
    );
}

/// Guarantees: an integration named after a vendor takes the calls of the vendor's products
/// no other integration is named after; explicit `match` rules keep an integration out of
/// the catalog; globbed hosts and parent domains resolve to the most specific product.
#[test]
fn vendors_products_and_globs() {
    let text = "integrations:\n  tools:\n    all:\n\
        \x20     - {id: gh, name: GitHub, connection: api}\n\
        \x20     - {id: ci, name: GitHub Actions, connection: api}\n\
        \x20     - {id: atl, name: Atlassian, connection: mcp}\n\
        \x20     - {id: aws, name: Amazon Web Services, connection: api}\n\
        \x20     - {id: llm, name: Bedrock, connection: api}\n\
        \x20     - {id: ms, name: Microsoft Graph, connection: api}\n\
        \x20     - {id: crm, name: Salesforce, connection: mcp, match: {hosts: [crm.acme.internal]}}\n";
    let registry = registry(text);
    let cases = [
        (url("https://api.github.com/repos/x/y/issues"), Some("gh")),
        (url("https://api.github.com/repos/x/y/actions/runs"), Some("ci")),
        (url("https://acme.atlassian.net/wiki/spaces"), Some("atl")),
        (tool("jira_search"), Some("atl")),
        (
            url("https://bedrock-runtime.us-east-1.amazonaws.com/model/x/converse"),
            Some("llm"),
        ),
        (url("https://sqs.us-east-1.amazonaws.com/1/q"), Some("aws")),
        (url("https://graph.microsoft.com/v1.0/teams/1/channels"), Some("ms")),
        (url("https://acme.lightning.force.com/lightning/o/Account"), None),
    ];
    for (facts, expected) in cases {
        assert_eq!(attributed(&registry, facts), expected, "{facts:?}");
    }
}

/// Guarantees: configured vendors are checked with their key paths, replace the built-in
/// vendor of the same name, and add new ones.
#[test]
fn configured_vendors_replace_and_extend() {
    let config: CatalogConfig = serde_yaml::from_str(
        "vendors:\n  - vendor: github\n    source: mine\n    hosts: [git.acme.internal]\n\
         \x20 - vendor: Weather Co\n    hosts: [api.weather.example]\n\
         \x20 - name: Orphan\n    hosts: [\"a.example/path\"]\n",
    )
    .expect("catalog config");
    assert_eq!(
        config.problems(),
        vec![
            ("vendors.2".to_owned(), "a vendor needs `vendor:` (its name)".to_owned()),
            (
                "vendors.2.hosts.0".to_owned(),
                "`a.example/path` is not a host (paths go under `paths`)".to_owned()
            ),
        ]
    );
    let catalog = config.catalog();
    let index = CatalogIndex::new(&catalog, &[]);
    let product = |facts| index.recognise(&facts).map(|r| index.products[r.product].name.as_str());
    assert_eq!(product(url("https://git.acme.internal/x")), Some("github"));
    assert_eq!(product(url("https://api.github.com/repos/x/y")), None, "replaced");
    assert_eq!(product(url("https://api.weather.example/today")), Some("Weather Co"));
    assert_eq!(product(url("https://acme.zendesk.com/api/v2")), Some("Zendesk"));
}
