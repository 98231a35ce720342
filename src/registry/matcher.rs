//! Recognising which integration a call belongs to. Every lookup is a hash probe per
//! candidate string, so the cost depends on the call's attributes, not on how many
//! integrations are registered.

use std::collections::HashMap as StdHashMap;

use super::catalog::{Catalog, CatalogIndex};
use super::model::Integration;
use crate::otlp::semconv::Key;

/// Lookups run for every record with a tool name or host, on strings the sender chose; the
/// maps hold only registry entries, so a fast seeded hash is enough (`cargo bench --bench
/// enrich`, `enriched_*/1000`).
type HashMap<K, V> = StdHashMap<K, V, foldhash::fast::RandomState>;

/// The attributes of a span, data point or log record that can name an integration.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallFacts<'a> {
    /// `gen_ai.tool.name`.
    pub tool: Option<&'a str>,
    /// `server.address`.
    pub server_address: Option<&'a str>,
    /// `url.full`.
    pub url: Option<&'a str>,
    /// `peer.service`, `rpc.service`, `messaging.destination.name`, `db.system.name`.
    pub services: [Option<&'a str>; 4],
    /// `gen_ai.provider.name`.
    pub provider: Option<&'a str>,
}

/// The attributes of a record that can name an integration, as it carries them: the bytes of
/// [`CallFacts`], whose text is checked as UTF-8 only by [`ObservedCall::facts`]. The calls of
/// a request mostly repeat a few tools and hosts; [`Matcher::integration_of`] tells them apart
/// by these bytes and checks only a call it has not seen.
#[derive(Debug, Clone, Copy, Default)]
pub struct ObservedCall<'a> {
    /// The attributes [`CallFacts`] keeps as text, at the indices below.
    text: [Option<&'a [u8]>; 8],
    /// `gen_ai.operation.name` and `mcp.method.name` (e.g. `tools/call`): compared, never
    /// shown, so never checked as UTF-8.
    operation: Option<&'a [u8]>,
    mcp_method: Option<&'a [u8]>,
}

/// Where each attribute sits in [`ObservedCall`]'s text: `SERVICES` is the first of the four
/// services, in the order of [`CallFacts::services`].
const TOOL: usize = 0;
const SERVER_ADDRESS: usize = 1;
const URL: usize = 2;
const PROVIDER: usize = 3;
const SERVICES: usize = 4;

impl<'a> ObservedCall<'a> {
    /// Takes note of attribute `key` when it is one that can name an integration, and says
    /// whether it was; `value` (the bytes of the attribute's value, if it is a string) is read
    /// only then. Of an attribute given twice, the later string counts.
    #[inline]
    pub fn observe(&mut self, key: &[u8], value: impl FnOnce() -> Option<&'a [u8]>) -> bool {
        Key::of(key).is_some_and(|key| self.observe_key(key, value))
    }

    /// [`ObservedCall::observe`] for a key already looked up, as enrichment does once per
    /// attribute for every reader of it.
    #[inline]
    pub fn observe_key(&mut self, key: Key, value: impl FnOnce() -> Option<&'a [u8]>) -> bool {
        let slot = match key {
            Key::GenAiOperationName => &mut self.operation,
            Key::McpMethodName => &mut self.mcp_method,
            Key::GenAiToolName => &mut self.text[TOOL],
            Key::ServerAddress => &mut self.text[SERVER_ADDRESS],
            Key::UrlFull => &mut self.text[URL],
            Key::GenAiProviderName => &mut self.text[PROVIDER],
            Key::PeerService => &mut self.text[SERVICES],
            Key::RpcService => &mut self.text[SERVICES + 1],
            Key::MessagingDestinationName => &mut self.text[SERVICES + 2],
            Key::DbSystemName => &mut self.text[SERVICES + 3],
            _ => return false,
        };
        keep(slot, value());
        true
    }

    /// Is this an MCP tool call (`mcp.method.name` = `tools/call`)?
    pub fn is_mcp(&self) -> bool {
        self.mcp_method == Some(b"tools/call")
    }

    /// Is this a call out of the agent to a tool or remote service (as opposed to model
    /// inference or internal work)?
    pub fn is_tool_call(&self) -> bool {
        self.operation == Some(b"execute_tool") || self.is_mcp() || self.text[TOOL].is_some()
    }

    /// Model inference (`chat`, `text_completion`, `embeddings`, …): attributed when a
    /// registered integration matches, never reported as shadow.
    pub fn is_inference(&self) -> bool {
        matches!(
            self.operation,
            Some(
                b"chat" | b"text_completion" | b"generate_content" | b"embeddings" | b"create_agent" | b"invoke_agent"
            )
        )
    }

    /// Whether the call names a remote end: a server address, a URL or a peer service.
    pub fn names_remote(&self) -> bool {
        self.text[SERVER_ADDRESS].is_some() || self.text[URL].is_some() || self.text[SERVICES].is_some()
    }

    /// The call's facts; a text attribute that is not valid UTF-8 is left out.
    pub fn facts(&self) -> CallFacts<'a> {
        let text = |i: usize| self.text[i].and_then(|v| std::str::from_utf8(v).ok());
        CallFacts {
            tool: text(TOOL),
            server_address: text(SERVER_ADDRESS),
            url: text(URL),
            services: [0, 1, 2, 3].map(|i| text(SERVICES + i)),
            provider: text(PROVIDER),
        }
    }
}

impl<'a> CallFacts<'a> {
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
}

/// The calls of one request already matched, for [`Matcher::integration_of`]; a request
/// is tagged with one registry, so what a call matched stays true for the whole request.
#[derive(Debug, Default)]
pub struct MatchMemo {
    calls: Vec<(MatchedInputs, Option<usize>)>,
}

/// A call's text attributes as it carried them, owned.
type MatchedInputs = [Option<Box<[u8]>>; 8];

/// Most distinct calls a [`MatchMemo`] remembers; a request with more matches the rest anew.
const MAX_REMEMBERED_CALLS: usize = 16;

/// A later value of an attribute wins; a value that is not a string leaves the earlier one.
fn keep<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

/// Why a call was attributed to an integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribution<'m, 'a> {
    /// Index into the registry's integrations.
    pub integration: usize,
    pub rule: Rule<'m, 'a>,
}

/// The rule that matched; shown in words (e.g. `match.tools "jira_search"`) by `Display`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule<'m, 'a> {
    /// An entry of the integration's `match` lists, as the matcher holds it (lowercase).
    Match { list: &'static str, entry: &'m str },
    /// A `match.hosts` entry `*.<domain>`.
    HostSuffix { domain: &'m str },
    /// A known-vendor catalog claim of a product the integration is named after.
    Catalog {
        product: &'m str,
        claim: &'static str,
        entry: &'m str,
    },
    /// The integration's id or name, found in an attribute's value.
    Name { attribute: &'static str, value: &'a str },
}

impl std::fmt::Display for Rule<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::Match { list, entry } => write!(f, "match.{list} {entry:?}"),
            Rule::HostSuffix { domain } => write!(f, "match.hosts \"*.{domain}\""),
            Rule::Catalog { product, claim, entry } => write!(f, "catalog {product:?} ({claim} {entry:?})"),
            Rule::Name { attribute, value } => write!(f, "name in {attribute} {value:?}"),
        }
    }
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
    /// Folded ids and names, as bytes: words of a value are looked up without checking them
    /// as UTF-8 again.
    names: HashMap<Box<[u8]>, usize>,
    /// Whether any integration wrote `match` rules; without them only names are looked up.
    has_rules: bool,
    /// The known-vendor catalog, bound to the integrations without `match` rules.
    catalog: CatalogIndex,
}

/// How many adjacent words of a value are joined when looking for a name: "GitHub Actions"
/// is found in `github_actions_dispatch` by joining two.
const MAX_WORDS_IN_NAME: usize = 4;

impl Matcher {
    pub fn new(integrations: &[Integration], catalog: &Catalog) -> Matcher {
        let mut m = Matcher {
            catalog: CatalogIndex::new(catalog, integrations),
            ..Matcher::default()
        };
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
                    m.names.entry(folded.into_bytes().into_boxed_slice()).or_insert(index);
                }
            }
        }
        m.has_rules = integrations.iter().any(|i| !i.match_rules.is_empty());
        m
    }

    /// The integration a call belongs to: explicit `match` rules first, then the catalog,
    /// then names. Reads only the text attributes, which [`Matcher::integration_of`] relies on.
    pub fn attribute<'m, 'a>(&'m self, facts: &CallFacts<'a>) -> Option<Attribution<'m, 'a>> {
        let by_rules = if self.has_rules { self.by_rules(facts) } else { None };
        by_rules
            .or_else(|| self.by_catalog(facts))
            .or_else(|| self.by_name(facts))
    }

    /// The catalog this matcher recognises vendors with.
    pub fn catalog(&self) -> &CatalogIndex {
        &self.catalog
    }

    fn by_catalog(&self, facts: &CallFacts<'_>) -> Option<Attribution<'_, 'static>> {
        if !self.catalog.binds_any() {
            return None;
        }
        let found = self.catalog.recognise(facts)?;
        Some(Attribution {
            integration: self.catalog.owner(found.product)?,
            rule: Rule::Catalog {
                product: &self.catalog.products[found.product].name,
                claim: found.claim,
                entry: found.entry,
            },
        })
    }

    /// The integration [`Matcher::attribute`] finds for `facts`, matched once per distinct
    /// call of a request: an agent's request repeats the same few tools and hosts, and
    /// comparing a call's bytes with one seen before costs a fraction of matching it.
    ///
    /// Most records name nothing to match (model calls, internal work): they are told apart
    /// inline, before the call that compares with the memo.
    #[inline]
    pub fn integration_of(&self, call: &ObservedCall<'_>, memo: &mut MatchMemo) -> Option<usize> {
        if call.text.iter().all(Option::is_none) {
            return None;
        }
        self.remembered_or_matched(call, memo)
    }

    fn remembered_or_matched(&self, call: &ObservedCall<'_>, memo: &mut MatchMemo) -> Option<usize> {
        let inputs = &call.text;
        let same = |seen: &MatchedInputs| seen.iter().zip(inputs).all(|(a, b)| a.as_deref() == *b);
        if let Some((_, integration)) = memo.calls.iter().find(|(seen, _)| same(seen)) {
            return *integration;
        }
        let integration = self.attribute(&call.facts()).map(|a| a.integration);
        if memo.calls.len() < MAX_REMEMBERED_CALLS {
            memo.calls.push((inputs.map(|input| input.map(Box::from)), integration));
        }
        integration
    }

    fn by_rules<'m>(&'m self, facts: &CallFacts<'_>) -> Option<Attribution<'m, 'static>> {
        let found = |map: &'m HashMap<String, usize>, list: &'static str, key: &str| {
            let (entry, &integration) = map.get_key_value(key)?;
            Some(Attribution {
                integration,
                rule: Rule::Match { list, entry },
            })
        };
        if let Some(tool) = facts.tool.map(lowercase) {
            let exact = found(&self.tools, "tools", &tool);
            let prefixed = || boundary_prefixes(&tool).find_map(|p| found(&self.tool_prefixes, "tool_prefixes", p));
            if let Some(attribution) = exact.or_else(prefixed) {
                return Some(attribution);
            }
        }
        for service in facts.services.into_iter().flatten().map(lowercase) {
            if let Some(attribution) = found(&self.services, "services", &service) {
                return Some(attribution);
            }
        }
        if let Some(url) = facts.url.map(lowercase)
            && let Some(attribution) = url_prefixes(&url).find_map(|p| found(&self.url_prefixes, "url_prefixes", p))
        {
            return Some(attribution);
        }
        for host in [facts.server_address, facts.url_host()]
            .into_iter()
            .flatten()
            .map(lowercase)
        {
            if let Some(attribution) = found(&self.hosts, "hosts", &host) {
                return Some(attribution);
            }
            let mut suffix = host.as_ref();
            while let Some((_, parent)) = suffix.split_once('.') {
                if let Some((domain, &integration)) = self.host_suffixes.get_key_value(parent) {
                    return Some(Attribution {
                        integration,
                        rule: Rule::HostSuffix { domain },
                    });
                }
                suffix = parent;
            }
            if let Some((glob, integration)) = self
                .host_globs
                .iter()
                .find(|(glob, _)| super::layer::glob_matches(glob, &host))
            {
                return Some(Attribution {
                    integration: *integration,
                    rule: Rule::Match {
                        list: "hosts",
                        entry: glob,
                    },
                });
            }
        }
        None
    }

    fn by_name<'a>(&self, facts: &CallFacts<'a>) -> Option<Attribution<'_, 'a>> {
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
        candidates.into_iter().find_map(|(attribute, value)| {
            let value = value?;
            Some(Attribution {
                integration: self.name_in(value)?,
                rule: Rule::Name { attribute, value },
            })
        })
    }

    /// The integration whose folded id or name is a run of up to [`MAX_WORDS_IN_NAME`]
    /// adjacent words of `value`. Runs on every tagged record, so it folds into a buffer on
    /// the stack; only the first [`FOLD_BUFFER`] bytes of a value are looked at.
    fn name_in(&self, value: &str) -> Option<usize> {
        let mut folded = [0u8; FOLD_BUFFER];
        let mut length = 0;
        // End offset (in `folded`) of each word.
        let mut word_ends = [0usize; MAX_WORDS];
        let mut words = 0;
        let mut in_word = false;
        'chars: for c in value.chars() {
            if !(c.is_ascii_alphanumeric() || (!c.is_ascii() && c.is_alphanumeric())) {
                if in_word && words < MAX_WORDS {
                    word_ends[words] = length;
                    words += 1;
                }
                in_word = false;
                continue;
            }
            in_word = true;
            if c.is_ascii() {
                if length == FOLD_BUFFER {
                    break;
                }
                folded[length] = (c as u8).to_ascii_lowercase();
                length += 1;
                continue;
            }
            for lower in c.to_lowercase() {
                if length + lower.len_utf8() > FOLD_BUFFER {
                    break 'chars;
                }
                lower.encode_utf8(&mut folded[length..]);
                length += lower.len_utf8();
            }
        }
        if in_word && words < MAX_WORDS {
            word_ends[words] = length;
            words += 1;
        }
        let folded = &folded[..length];
        (0..words).find_map(|first| {
            let start = if first == 0 { 0 } else { word_ends[first - 1] };
            word_ends[first..words.min(first + MAX_WORDS_IN_NAME)]
                .iter()
                .find_map(|&end| self.names.get(&folded[start..end]).copied())
        })
    }
}

/// Bytes of a value folded for name lookup, and words considered.
const FOLD_BUFFER: usize = 256;
const MAX_WORDS: usize = 32;

/// `text` in lowercase, borrowed when it already is.
fn lowercase(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(char::is_uppercase) {
        std::borrow::Cow::Owned(text.to_lowercase())
    } else {
        std::borrow::Cow::Borrowed(text)
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
pub(super) fn boundary_prefixes(tool: &str) -> impl Iterator<Item = &str> {
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
