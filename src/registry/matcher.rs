//! Recognising which integration a call belongs to. Every lookup is a hash probe per
//! candidate string, so the cost depends on the call's attributes, not on how many
//! integrations are registered.

use std::collections::HashMap;

use super::model::Integration;

/// The attributes of a span, data point or log record that can name an integration.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallFacts<'a> {
    /// `gen_ai.tool.name`.
    pub tool: Option<&'a str>,
    /// `mcp.method.name`, e.g. `tools/call`.
    pub mcp_method: Option<&'a str>,
    /// `server.address`.
    pub server_address: Option<&'a str>,
    /// `url.full`.
    pub url: Option<&'a str>,
    /// `peer.service`, `rpc.service`, `messaging.destination.name`, `db.system.name`.
    pub services: [Option<&'a str>; 4],
    /// `gen_ai.operation.name`.
    pub operation: Option<&'a str>,
    /// `gen_ai.provider.name`.
    pub provider: Option<&'a str>,
}

impl<'a> CallFacts<'a> {
    /// Takes note of attribute `key` when it is one that can name an integration; `value`
    /// (the attribute's string value, if it is a string) is read only then.
    pub fn observe(&mut self, key: &str, value: impl FnOnce() -> Option<&'a str>) {
        let slot = match key {
            "gen_ai.tool.name" => &mut self.tool,
            "mcp.method.name" => &mut self.mcp_method,
            "server.address" => &mut self.server_address,
            "url.full" => &mut self.url,
            "peer.service" => &mut self.services[0],
            "rpc.service" => &mut self.services[1],
            "messaging.destination.name" => &mut self.services[2],
            "db.system.name" => &mut self.services[3],
            "gen_ai.operation.name" => &mut self.operation,
            "gen_ai.provider.name" => &mut self.provider,
            _ => return,
        };
        if let Some(value) = value() {
            *slot = Some(value);
        }
    }

    /// The host of `url.full`, without user info or port.
    pub fn url_host(&self) -> Option<&'a str> {
        let rest = self.url?.split_once("://")?.1;
        let authority = rest.split(['/', '?', '#']).next()?;
        let host = authority.rsplit('@').next()?;
        let host = if host.starts_with('[') {
            host.split(']').next()?.trim_start_matches('[')
        } else {
            host.split(':').next()?
        };
        (!host.is_empty()).then_some(host)
    }

    /// The thing an unmatched outbound call went to, for shadow reporting: the tool, else
    /// the host, else the service.
    pub fn target(&self) -> Option<&'a str> {
        self.tool
            .or(self.server_address)
            .or_else(|| self.url_host())
            .or_else(|| self.services.into_iter().flatten().next())
    }

    /// Is this a call out of the agent to a tool or remote service (as opposed to model
    /// inference or internal work)?
    pub fn is_tool_call(&self) -> bool {
        self.operation == Some("execute_tool") || self.mcp_method == Some("tools/call") || self.tool.is_some()
    }

    /// Model inference (`chat`, `text_completion`, `embeddings`, …): attributed when a
    /// registered integration matches, never reported as shadow.
    pub fn is_inference(&self) -> bool {
        matches!(
            self.operation,
            Some("chat" | "text_completion" | "generate_content" | "embeddings" | "create_agent" | "invoke_agent")
        )
    }
}

/// Why a call was attributed to an integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    /// Index into the registry's integrations.
    pub integration: usize,
    /// The rule that matched, in words, e.g. `match.tools "jira_search"`.
    pub rule: String,
}

#[derive(Debug, Default)]
pub struct Matcher {
    tools: HashMap<String, usize>,
    tool_prefixes: HashMap<String, usize>,
    hosts: HashMap<String, usize>,
    host_suffixes: HashMap<String, usize>,
    host_globs: Vec<(String, usize)>,
    url_prefixes: HashMap<String, usize>,
    services: HashMap<String, usize>,
    names: HashMap<String, usize>,
    /// Whether any integration wrote `match` rules; without them only names are looked up.
    has_rules: bool,
}

/// How many adjacent words of a value are joined when looking for a name: "GitHub Actions"
/// is found in `github_actions_dispatch` by joining two.
const MAX_WORDS_IN_NAME: usize = 4;

impl Matcher {
    pub fn new(integrations: &[Integration]) -> Matcher {
        let mut m = Matcher::default();
        for (index, integration) in integrations.iter().enumerate() {
            let rules = &integration.match_rules;
            let lower = |s: &String| s.to_lowercase();
            for tool in &rules.tools {
                m.tools.entry(lower(tool)).or_insert(index);
            }
            for prefix in &rules.tool_prefixes {
                m.tool_prefixes.entry(lower(prefix)).or_insert(index);
            }
            for host in rules.hosts.iter().map(lower) {
                if let Some(domain) = host.strip_prefix("*.").filter(|d| !d.contains(['*', '?'])) {
                    m.host_suffixes.entry(domain.to_owned()).or_insert(index);
                } else if host.contains(['*', '?']) {
                    m.host_globs.push((host, index));
                } else {
                    m.hosts.entry(host).or_insert(index);
                }
            }
            for prefix in &rules.url_prefixes {
                m.url_prefixes.entry(lower(prefix)).or_insert(index);
            }
            for service in &rules.services {
                m.services.entry(lower(service)).or_insert(index);
            }
            for name in [&integration.id, &integration.name] {
                let folded = fold(name);
                if !folded.is_empty() {
                    m.names.entry(folded).or_insert(index);
                }
            }
        }
        m.has_rules = integrations.iter().any(|i| !i.match_rules.is_empty());
        m
    }

    /// The integration a call belongs to: explicit `match` rules first, then names.
    pub fn attribute(&self, facts: &CallFacts<'_>) -> Option<Attribution> {
        let by_rules = if self.has_rules { self.by_rules(facts) } else { None };
        by_rules.or_else(|| self.by_name(facts))
    }

    fn by_rules(&self, facts: &CallFacts<'_>) -> Option<Attribution> {
        let found = |index: usize, rule: String| {
            Some(Attribution {
                integration: index,
                rule,
            })
        };
        if let Some(tool) = facts.tool.map(str::to_lowercase) {
            if let Some(&i) = self.tools.get(&tool) {
                return found(i, format!("match.tools {tool:?}"));
            }
            for prefix in boundary_prefixes(&tool) {
                if let Some(&i) = self.tool_prefixes.get(prefix) {
                    return found(i, format!("match.tool_prefixes {prefix:?}"));
                }
            }
        }
        for service in facts.services.into_iter().flatten().map(str::to_lowercase) {
            if let Some(&i) = self.services.get(&service) {
                return found(i, format!("match.services {service:?}"));
            }
        }
        if let Some(url) = facts.url.map(str::to_lowercase) {
            for prefix in url_prefixes(&url) {
                if let Some(&i) = self.url_prefixes.get(prefix) {
                    return found(i, format!("match.url_prefixes {prefix:?}"));
                }
            }
        }
        for host in [facts.server_address, facts.url_host()]
            .into_iter()
            .flatten()
            .map(str::to_lowercase)
        {
            if let Some(&i) = self.hosts.get(&host) {
                return found(i, format!("match.hosts {host:?}"));
            }
            let mut suffix = host.as_str();
            while let Some((_, parent)) = suffix.split_once('.') {
                if let Some(&i) = self.host_suffixes.get(parent) {
                    return found(i, format!("match.hosts \"*.{parent}\""));
                }
                suffix = parent;
            }
            if let Some((glob, i)) = self
                .host_globs
                .iter()
                .find(|(glob, _)| super::layer::glob_matches(glob, &host))
            {
                return found(*i, format!("match.hosts {glob:?}"));
            }
        }
        None
    }

    fn by_name(&self, facts: &CallFacts<'_>) -> Option<Attribution> {
        let candidates = [
            ("gen_ai.tool.name", facts.tool),
            ("server.address", facts.server_address),
            ("url.full", facts.url_host()),
            ("peer.service", facts.services[0]),
            ("rpc.service", facts.services[1]),
            ("messaging.destination.name", facts.services[2]),
            ("db.system.name", facts.services[3]),
            ("gen_ai.provider.name", facts.provider),
        ];
        let mut folded = String::new();
        let mut joined = String::new();
        candidates.into_iter().find_map(|(attribute, value)| {
            let value = value?;
            folded.clear();
            folded.extend(value.chars().flat_map(char::to_lowercase));
            let words: Vec<&str> = folded
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .collect();
            for start in 0..words.len() {
                joined.clear();
                for word in words.iter().skip(start).take(MAX_WORDS_IN_NAME) {
                    joined.push_str(word);
                    if let Some(&i) = self.names.get(joined.as_str()) {
                        return Some(Attribution {
                            integration: i,
                            rule: format!("name in {attribute} {value:?}"),
                        });
                    }
                }
            }
            None
        })
    }
}

/// Lowercase letters and digits only: `GitHub Actions` and `github-actions` fold alike.
pub fn fold(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Prefixes of a tool name that end at punctuation, with and without it:
/// `jira_search` → `jira`, `jira_`.
fn boundary_prefixes(tool: &str) -> impl Iterator<Item = &str> {
    tool.char_indices()
        .filter(|(_, c)| matches!(c, '_' | '.' | '-' | '/' | ':'))
        .flat_map(move |(i, c)| [&tool[..i], &tool[..i + c.len_utf8()]])
}

/// Prefixes of a URL ending just before or just after each `/`, and the URL itself.
fn url_prefixes(url: &str) -> impl Iterator<Item = &str> {
    url.char_indices()
        .filter(|(_, c)| *c == '/')
        .flat_map(move |(i, _)| [&url[..i], &url[..=i]])
        .chain([url])
}
