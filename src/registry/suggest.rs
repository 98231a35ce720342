//! What a reviewer needs to govern a shadow integration: the registered integration it most
//! likely belongs to (by the known-vendor catalog, else by a word shared with a registered
//! name), and the `CONFIG.yaml` entry to add. `fleetpipe registry suggest` and the fleet
//! report's shadow section print the same suggestions.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;

use super::catalog::{CatalogIndex, Recognised};
use super::matcher::fold;
use super::shadow::ShadowTarget;

/// A registered integration, as the suggestions compare targets with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Registered {
    pub id: String,
    pub name: String,
}

impl Registered {
    pub fn of(integration: &super::Integration) -> Registered {
        Registered {
            id: integration.id.clone(),
            name: integration.name.clone(),
        }
    }
}

/// The suggestion for one shadow target.
#[derive(Debug, Clone, Serialize)]
pub struct Suggestion {
    pub target: String,
    pub calls: u64,
    /// The id of the registered integration it most likely belongs to.
    pub likely: Option<String>,
    /// Why: the evidence for `likely`, or that there is none.
    pub reason: String,
    /// The catalog's product, when the catalog knows the target.
    pub product: Option<String>,
    /// The list (kind) the entry goes in, under the `unreviewed` category.
    pub kind: &'static str,
    /// The entry: a commented YAML list item, indented for `integrations.unreviewed.<kind>`.
    pub entry: String,
}

/// The suggestions for `targets`, given what is `registered`; `catalog` recognises vendors.
pub fn suggest(targets: &[ShadowTarget], registered: &[Registered], catalog: &CatalogIndex) -> Vec<Suggestion> {
    let mut taken: BTreeSet<String> = registered.iter().map(|r| r.id.clone()).collect();
    targets
        .iter()
        .map(|target| {
            let recognised = catalog.recognise(&target.facts());
            let (likely, reason) = match recognised {
                Some(found) => by_catalog(catalog, found, registered),
                None => by_words(&target.target, registered),
            };
            let product = recognised.map(|r| catalog.products[r.product].name.clone());
            let name = product.clone().unwrap_or_else(|| target.target.clone());
            let id = unique_id(&name, &mut taken);
            let kind = kind_of(target);
            let mut entry = String::new();
            let callers = callers(target);
            let _ = writeln!(entry, "      # {}: {callers}; {reason}.", target.target);
            if let Some(product) = &product {
                let _ = writeln!(
                    entry,
                    "      # fleetpipe's catalog knows {product}: an entry of that name needs no match rules."
                );
            }
            let _ = writeln!(entry, "      - id: {}", quoted(&id));
            let _ = writeln!(entry, "        name: {}", quoted(&name));
            let connection = if target.mcp { "mcp" } else { "api" };
            let _ = writeln!(entry, "        connection: {}", quoted(connection));
            let layers: Vec<&str> = target
                .layers
                .iter()
                .map(String::as_str)
                .filter(|l| *l != "unknown")
                .collect();
            if !layers.is_empty() {
                let _ = writeln!(entry, "        layers: [{}]", layers.join(", "));
            }
            if product.is_none() {
                entry.push_str(&match_rules(target));
            }
            Suggestion {
                target: target.target.clone(),
                calls: target.calls,
                likely: likely.map(|r| r.id.clone()),
                reason,
                product,
                kind,
                entry,
            }
        })
        .collect()
}

/// All the entries as one block to append under `CONFIG.yaml`'s `integrations:`.
pub fn snippet(suggestions: &[Suggestion]) -> String {
    let mut out = String::from(
        "  # Shadow integrations fleetpipe saw: append under `integrations:` in CONFIG.yaml, review\n  \
         # each entry (move it to its category, set owner and layers), and open a pull request.\n  \
         unreviewed:\n",
    );
    let kinds: BTreeSet<&str> = suggestions.iter().map(|s| s.kind).collect();
    for kind in kinds {
        let _ = writeln!(out, "    {kind}:");
        for suggestion in suggestions.iter().filter(|s| s.kind == kind) {
            out.push_str(&suggestion.entry);
        }
    }
    out
}

/// The registered integration of the catalog product a target is, or of the product's
/// vendor or another of its products, with the claim that says so.
fn by_catalog<'r>(
    catalog: &CatalogIndex,
    found: Recognised<'_>,
    registered: &'r [Registered],
) -> (Option<&'r Registered>, String) {
    let product = &catalog.products[found.product];
    let claim = format!(
        "the catalog lists {} {:?} under {}",
        found.claim_in_words(),
        found.entry,
        product.name
    );
    let named = |r: &&Registered| [&r.name, &r.id].into_iter().find_map(|n| catalog.product_named(n));
    if let Some(same) = registered.iter().find(|r| named(r) == Some(found.product)) {
        return (
            Some(same),
            format!(
                "likely `{}` ({}): {claim}; add the target to its match rules",
                same.id, same.name
            ),
        );
    }
    let sibling = registered
        .iter()
        .find(|r| named(r).is_some_and(|p| catalog.products[p].main == product.main));
    match sibling {
        Some(r) => (
            Some(r),
            format!(
                "likely `{}` ({}) by vendor: {claim}, another {} product; {} itself is not registered",
                r.id, r.name, product.vendor, product.name
            ),
        ),
        None => (None, format!("{claim}; nothing of {} is registered", product.vendor)),
    }
}

/// The registered integration whose id or name shares the most words with `target`.
fn by_words<'r>(target: &str, registered: &'r [Registered]) -> (Option<&'r Registered>, String) {
    let target_words = words(target);
    let best = registered
        .iter()
        .filter_map(|r| {
            let theirs = [words(&r.id), words(&r.name)].concat();
            let shared: Vec<&String> = target_words.iter().filter(|w| theirs.contains(w)).collect();
            (!shared.is_empty()).then(|| (shared.len(), r, shared[0].clone()))
        })
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.id.cmp(&a.1.id)));
    match best {
        Some((_, r, word)) => (
            Some(r),
            format!("likely `{}` ({}): shares the word {word:?} with it", r.id, r.name),
        ),
        None => (None, "no registered integration is close".into()),
    }
}

/// The words of a name: lower-case runs of letters and digits, three or more long.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| w.len() >= 3)
        .map(str::to_ascii_lowercase)
        .collect()
}

/// An id from `name`'s words, not yet `taken`: `GitHub` → `github`, `pastebin.com` → `pastebin`.
fn unique_id(name: &str, taken: &mut BTreeSet<String>) -> String {
    let words = words(name);
    let base = match words.as_slice() {
        [] => fold(name),
        [first, rest @ ..]
            if rest
                .iter()
                .any(|w| ["com", "net", "org", "io", "app", "dev"].contains(&w.as_str())) =>
        {
            first.clone()
        }
        all => all.join("-"),
    };
    let base = if base.is_empty() { "unreviewed".to_owned() } else { base };
    let id = (1..)
        .map(|n| if n == 1 { base.clone() } else { format!("{base}-{n}") })
        .find(|id| !taken.contains(id))
        .unwrap_or_default();
    taken.insert(id.clone());
    id
}

/// `mcp_servers` for MCP tool calls, `tools` for tools named without a host, else `apis`.
fn kind_of(target: &ShadowTarget) -> &'static str {
    if target.mcp {
        "mcp_servers"
    } else if target.host.is_none() && target.tool.is_some() {
        "tools"
    } else {
        "apis"
    }
}

/// `N calls by a, b (layers: x)`.
fn callers(target: &ShadowTarget) -> String {
    let plural = if target.calls == 1 { "" } else { "s" };
    let mut text = format!("{} call{plural}", target.calls);
    if !target.agents.is_empty() {
        let agents: Vec<&str> = target.agents.iter().map(String::as_str).collect();
        let _ = write!(text, " by {}", agents.join(", "));
    }
    if !target.layers.is_empty() {
        let layers: Vec<&str> = target.layers.iter().map(String::as_str).collect();
        let _ = write!(text, " (layers: {})", layers.join(", "));
    }
    text
}

/// The `match:` rules recognising the target: its tool and its host.
fn match_rules(target: &ShadowTarget) -> String {
    let mut rules = String::from("        match:\n");
    if let Some(tool) = &target.tool {
        let _ = writeln!(rules, "          tools: [{}]", quoted(tool));
    }
    match &target.host {
        Some(host) => {
            let _ = writeln!(rules, "          hosts: [{}]", quoted(host));
        }
        None if target.tool.is_none() => {
            let _ = writeln!(rules, "          services: [{}]", quoted(&target.target));
        }
        None => {}
    }
    rules
}

/// A YAML scalar: JSON string quoting is valid YAML and escapes everything that needs it.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::catalog::Catalog;

    fn registered() -> Vec<Registered> {
        let r = |id: &str, name: &str| Registered {
            id: id.into(),
            name: name.into(),
        };
        vec![
            r("primary-pipeline", "GitHub Actions"),
            r("work-tracking", "Jira"),
            r("knowledge-base", "Wiki Search"),
        ]
    }

    fn target(target: &str, tool: Option<&str>, url: Option<&str>) -> ShadowTarget {
        ShadowTarget {
            target: target.into(),
            tool: tool.map(Into::into),
            host: url.map(|u| u.split('/').nth(2).unwrap_or_default().to_owned()),
            url: url.map(Into::into),
            calls: 2,
            agents: BTreeSet::from(["release-agent".to_owned()]),
            layers: BTreeSet::from(["execution".to_owned(), "unknown".to_owned()]),
            ..ShadowTarget::default()
        }
    }

    /// Guarantees: a GitHub call that is not GitHub Actions is the catalog's GitHub, likely
    /// the registered GitHub Actions by vendor, and gets an entry named GitHub without match
    /// rules; an unknown host gets host rules and no likely integration; a tool sharing a word
    /// with a registered name is likely that one; the block is a valid registry section.
    #[test]
    fn suggestions_name_the_evidence_and_make_valid_entries() {
        let catalog = CatalogIndex::new(&Catalog::builtin(), &[]);
        let targets = [
            target("api.github.com", None, Some("https://api.github.com/repos/x/y/issues")),
            target("pastebin.com", None, Some("https://pastebin.com/api/api_post.php")),
            target("wiki_search_pages", Some("wiki_search_pages"), None),
        ];
        let suggestions = suggest(&targets, &registered(), &catalog);
        let github = &suggestions[0];
        assert_eq!(github.likely.as_deref(), Some("primary-pipeline"));
        assert_eq!(github.product.as_deref(), Some("GitHub"));
        assert!(
            github.reason.contains("host \"api.github.com\" under GitHub"),
            "{}",
            github.reason
        );
        assert!(!github.entry.contains("match:"), "{}", github.entry);
        let pastebin = &suggestions[1];
        assert_eq!((pastebin.likely.as_deref(), pastebin.kind), (None, "apis"));
        assert!(
            pastebin.entry.contains("hosts: [\"pastebin.com\"]"),
            "{}",
            pastebin.entry
        );
        assert!(pastebin.entry.contains("- id: \"pastebin\""), "{}", pastebin.entry);
        let wiki = &suggestions[2];
        assert_eq!((wiki.likely.as_deref(), wiki.kind), (Some("knowledge-base"), "tools"));
        let text = format!("integrations:\n{}", snippet(&suggestions));
        let yaml: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
        let apis = &yaml["integrations"]["unreviewed"]["apis"];
        assert_eq!(apis[0]["name"], "GitHub");
        assert_eq!(apis[0]["layers"][0], "execution");
        assert_eq!(apis[1]["match"]["hosts"][0], "pastebin.com");
        assert_eq!(
            yaml["integrations"]["unreviewed"]["tools"][0]["match"]["tools"][0],
            "wiki_search_pages"
        );
    }
}
