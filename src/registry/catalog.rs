//! The known-vendor catalog (`catalog.yaml`, built in; `registry.catalog` adds and replaces
//! vendors): the hosts, URL paths and tool names of well-known SaaS and MCP endpoints, so that
//! a registry entry named "Jira" recognises calls to `acme.atlassian.net` without `match` rules.
//!
//! Recognising a call is hash lookups on its tool, its host and the host's parent domains, as
//! in [`super::matcher`]: the cost does not grow with the catalog.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;

use super::layer::glob_matches;
use super::matcher::{CallFacts, boundary_prefixes, fold};
use super::model::Integration;

/// One vendor (top level) or product (under a vendor's `products`) as `catalog.yaml` writes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogEntry {
    /// The vendor, on a top-level entry; its own claims are its main product's, of its name.
    pub vendor: Option<String>,
    /// The product, on an entry under `products`.
    pub name: Option<String>,
    /// Where the claims come from (documentation URLs).
    pub source: Option<String>,
    /// Other names a registry may give it, e.g. `ArgoCD` for Argo CD.
    pub aliases: Vec<String>,
    /// Hosts: exact, `*.domain`, or with one `*` label (`bedrock-runtime.*.amazonaws.com`).
    pub hosts: Vec<String>,
    /// A host (as in `hosts`) and a URL path prefix, `*` for one segment.
    pub paths: Vec<String>,
    /// Exact tool names.
    pub tools: Vec<String>,
    /// Tool name prefixes ending at `_`, `.`, `-`, `/` or `:`.
    pub tool_prefixes: Vec<String>,
    /// Words that move a tool of this vendor (found by its prefix) to this product.
    pub tool_words: Vec<String>,
    /// The vendor's products, on a top-level entry.
    pub products: Vec<CatalogEntry>,
}

/// The `registry.catalog` section: vendors added to the built-in catalog, or replacing the
/// built-in vendor of the same name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// Whether the built-in catalog is used at all.
    pub builtin: bool,
    pub vendors: Vec<CatalogEntry>,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            builtin: true,
            vendors: Vec::new(),
        }
    }
}

/// One product of the catalog; a vendor's main product carries the vendor's own claims.
#[derive(Debug, Clone)]
pub struct Product {
    pub name: String,
    pub vendor: String,
    /// Index of the vendor's main product (its own index for a main product).
    pub main: usize,
    pub source: String,
    claims: CatalogEntry,
}

/// The catalog, flattened to products.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub products: Vec<Product>,
}

static BUILT_IN: LazyLock<Vec<CatalogEntry>> = LazyLock::new(|| {
    serde_yaml::from_str(include_str!("catalog.yaml")).expect("the built-in catalog is valid YAML (unit-tested)")
});

impl CatalogConfig {
    /// Problems of the configured vendors, as `(key under registry.catalog, message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        entry_problems(&self.vendors, "vendors")
    }

    /// The configured vendors first (they win where claims overlap), then the built-in ones
    /// they do not replace.
    pub fn catalog(&self) -> Catalog {
        let replaced = |entry: &CatalogEntry| {
            self.vendors
                .iter()
                .any(|mine| mine.vendor.as_deref().map(fold) == entry.vendor.as_deref().map(fold))
        };
        let built_in = BUILT_IN.iter().filter(|e| self.builtin && !replaced(e));
        Catalog::of(self.vendors.iter().chain(built_in))
    }
}

fn entry_problems(vendors: &[CatalogEntry], base: &str) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for (i, vendor) in vendors.iter().enumerate() {
        let at = format!("{base}.{i}");
        if vendor.vendor.as_deref().is_none_or(str::is_empty) {
            problems.push((at.clone(), "a vendor needs `vendor:` (its name)".into()));
        }
        problems.extend(claim_problems(vendor, &at));
        for (j, product) in vendor.products.iter().enumerate() {
            let at = format!("{at}.products.{j}");
            if product.name.as_deref().is_none_or(str::is_empty) {
                problems.push((at.clone(), "a product needs `name:`".into()));
            }
            if product.vendor.is_some() || !product.products.is_empty() {
                problems.push((
                    at.clone(),
                    "a product has no `vendor:` or `products:` of its own".into(),
                ));
            }
            problems.extend(claim_problems(product, &at));
        }
    }
    problems
}

fn claim_problems(entry: &CatalogEntry, at: &str) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for (i, host) in entry.hosts.iter().enumerate() {
        if host.contains('/') || host.is_empty() {
            problems.push((
                format!("{at}.hosts.{i}"),
                format!("`{host}` is not a host (paths go under `paths`)"),
            ));
        }
    }
    for (i, path) in entry.paths.iter().enumerate() {
        if !path.contains('/') || path.starts_with('/') {
            problems.push((
                format!("{at}.paths.{i}"),
                format!("`{path}` is not a host followed by a path"),
            ));
        }
    }
    problems
}

impl Catalog {
    /// The built-in catalog alone.
    pub fn builtin() -> Catalog {
        CatalogConfig::default().catalog()
    }

    fn of<'a>(vendors: impl Iterator<Item = &'a CatalogEntry>) -> Catalog {
        let mut products = Vec::new();
        for vendor in vendors {
            let name = vendor.vendor.clone().unwrap_or_default();
            let source = vendor.source.clone().unwrap_or_default();
            let main = products.len();
            let product = |entry: &CatalogEntry, name: String| Product {
                name,
                vendor: vendor.vendor.clone().unwrap_or_default(),
                main,
                source: entry.source.clone().unwrap_or_else(|| source.clone()),
                claims: entry.clone(),
            };
            products.push(product(vendor, name));
            for entry in &vendor.products {
                products.push(product(entry, entry.name.clone().unwrap_or_default()));
            }
        }
        Catalog { products }
    }
}

/// How a call was recognised: the product, what kind of claim and which entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recognised<'c> {
    pub product: usize,
    /// `tools`, `tool_prefixes`, `tool_words`, `paths` or `hosts`.
    pub claim: &'static str,
    pub entry: &'c str,
}

impl Recognised<'_> {
    /// The kind of claim in words: `host`, `tool prefix`, ….
    pub fn claim_in_words(&self) -> &'static str {
        match self.claim {
            "tools" => "tool",
            "tool_prefixes" => "tool prefix",
            "tool_words" => "tool word",
            "paths" => "path",
            _ => "host",
        }
    }
}

/// A host claim or the path claims under one host spec.
#[derive(Debug, Default)]
struct Site {
    host: Option<(usize, String)>,
    /// Segments (`*` for any), the claim as written, the product.
    paths: Vec<(Vec<String>, String, usize)>,
}

/// The catalog compiled for lookups, with the registered integration each product belongs to.
#[derive(Debug, Default)]
pub struct CatalogIndex {
    pub products: Vec<Product>,
    /// The integration a product's calls are attributed to: its own, else its vendor's.
    owners: Vec<Option<usize>>,
    /// Products by folded name and alias.
    names: HashMap<String, usize>,
    tools: HashMap<String, usize>,
    tool_prefixes: HashMap<String, usize>,
    tool_words: HashMap<String, Vec<usize>>,
    sites: Vec<Site>,
    exact: HashMap<String, usize>,
    suffixes: HashMap<String, usize>,
    /// Globs by the domain after their last `*` label.
    globs: HashMap<String, Vec<(String, usize)>>,
}

impl CatalogIndex {
    /// The index of `catalog`, its products bound to the `integrations` that have no `match`
    /// rules by name or id (folded: `GitHub Actions` = `github-actions`).
    pub fn new(catalog: &Catalog, integrations: &[Integration]) -> CatalogIndex {
        let mut index = CatalogIndex {
            products: catalog.products.clone(),
            ..CatalogIndex::default()
        };
        for (p, product) in catalog.products.iter().enumerate() {
            for name in std::iter::once(&product.name).chain(&product.claims.aliases) {
                index.names.entry(fold(name)).or_insert(p);
            }
            index.add_claims(p, &product.claims);
        }
        let mut bound = vec![None; catalog.products.len()];
        for (i, integration) in integrations.iter().enumerate() {
            if !integration.match_rules.is_empty() {
                continue;
            }
            let product = [&integration.name, &integration.id]
                .into_iter()
                .find_map(|name| index.product_named(name));
            if let Some(p) = product {
                bound[p].get_or_insert(i);
            }
        }
        index.owners = (0..bound.len())
            .map(|p| bound[p].or(bound[catalog.products[p].main]))
            .collect();
        index
    }

    /// The product of this name or alias (folded: `GitHub Actions` = `github-actions`).
    pub fn product_named(&self, name: &str) -> Option<usize> {
        self.names.get(&fold(name)).copied()
    }

    /// Whether any registered integration owns a product: without one the catalog attributes
    /// nothing.
    pub fn binds_any(&self) -> bool {
        self.owners.iter().any(Option::is_some)
    }

    /// The names of the products whose calls go to `integration`.
    pub fn products_of(&self, integration: usize) -> impl Iterator<Item = &str> {
        let owned = self
            .owners
            .iter()
            .enumerate()
            .filter(move |(_, o)| **o == Some(integration));
        owned.map(|(p, _)| self.products[p].name.as_str())
    }

    /// The registered integration that owns `product`.
    pub fn owner(&self, product: usize) -> Option<usize> {
        self.owners[product]
    }

    fn add_claims(&mut self, product: usize, claims: &CatalogEntry) {
        let lower = |s: &String| s.to_lowercase();
        for tool in claims.tools.iter().map(lower) {
            self.tools.entry(tool).or_insert(product);
        }
        for prefix in claims.tool_prefixes.iter().map(lower) {
            self.tool_prefixes.entry(prefix).or_insert(product);
        }
        for word in claims.tool_words.iter().map(lower) {
            self.tool_words.entry(word).or_default().push(product);
        }
        for host in claims.hosts.iter().map(lower) {
            let site = self.site(&host);
            self.sites[site].host.get_or_insert((product, host));
        }
        for path in claims.paths.iter().map(lower) {
            let Some((host, rest)) = path.split_once('/') else {
                continue;
            };
            let site = self.site(host);
            let segments = segments(rest).map(str::to_owned).collect();
            self.sites[site].paths.push((segments, path.clone(), product));
        }
    }

    /// The site of a host spec, made when new.
    fn site(&mut self, spec: &str) -> usize {
        let next = self.sites.len();
        let site = if let Some(domain) = spec.strip_prefix("*.").filter(|d| !d.contains('*')) {
            *self.suffixes.entry(domain.to_owned()).or_insert(next)
        } else if let Some((_, after)) = spec.rsplit_once('*') {
            let domain = after.split_once('.').map_or(after, |(_, d)| d).to_owned();
            let globs = self.globs.entry(domain).or_default();
            match globs.iter().find(|(glob, _)| glob == spec) {
                Some((_, site)) => *site,
                None => {
                    globs.push((spec.to_owned(), next));
                    next
                }
            }
        } else {
            *self.exact.entry(spec.to_owned()).or_insert(next)
        };
        if site == next {
            self.sites.push(Site::default());
        }
        site
    }

    /// The sites a host falls under, most specific first: the host itself, then for each
    /// parent domain, longest first, its globs and its `*.` claim.
    fn sites_of<'s, 'h>(&'s self, host: &'h str) -> impl Iterator<Item = &'s Site> + use<'s, 'h> {
        let parents = host
            .char_indices()
            .filter(|(_, c)| *c == '.')
            .map(|(i, _)| &host[i + 1..]);
        let exact = self.exact.get(host).copied();
        let under = parents.flat_map(move |parent| {
            let globs = self.globs.get(parent).into_iter().flatten();
            let globs = globs
                .filter(|(glob, _)| glob_matches(glob, host))
                .map(|(_, site)| *site);
            globs.chain(self.suffixes.get(parent).copied())
        });
        exact.into_iter().chain(under).map(|site| &self.sites[site])
    }

    /// The product a call is to, whether or not it is registered: its tool decides when the
    /// catalog knows it, else the URL (a path claim beats a host claim), else the server
    /// address.
    pub fn recognise(&self, facts: &CallFacts<'_>) -> Option<Recognised<'_>> {
        if let Some(tool) = facts.tool.map(str::to_lowercase)
            && let Some(found) = self.by_tool(&tool)
        {
            return Some(found);
        }
        if let Some(url) = facts.url.map(str::to_lowercase)
            && let Some(host) = (CallFacts {
                url: Some(&url),
                ..CallFacts::default()
            })
            .url_host()
        {
            let path = url_path(&url);
            if let Some(found) = self.by_path(host, path).or_else(|| self.by_host(host)) {
                return Some(found);
            }
        }
        self.by_host(&facts.server_address?.to_lowercase())
    }

    fn by_tool(&self, tool: &str) -> Option<Recognised<'_>> {
        if let Some((entry, &product)) = self.tools.get_key_value(tool) {
            return Some(Recognised {
                product,
                claim: "tools",
                entry,
            });
        }
        let (entry, &product) = boundary_prefixes(tool).find_map(|p| self.tool_prefixes.get_key_value(p))?;
        let main = self.products[product].main;
        let by_word = tool.split(|c: char| !c.is_alphanumeric()).find_map(|word| {
            let (entry, products) = self.tool_words.get_key_value(word)?;
            let moved = *products
                .iter()
                .find(|&&p| p != product && self.products[p].main == main)?;
            Some(Recognised {
                product: moved,
                claim: "tool_words",
                entry,
            })
        });
        by_word.or(Some(Recognised {
            product,
            claim: "tool_prefixes",
            entry,
        }))
    }

    fn by_path(&self, host: &str, path: &str) -> Option<Recognised<'_>> {
        let segments: Vec<&str> = segments(path).collect();
        self.sites_of(host)
            .flat_map(|site| &site.paths)
            .filter(|(pattern, _, _)| {
                pattern.len() <= segments.len() && pattern.iter().zip(&segments).all(|(p, s)| p == "*" || p == s)
            })
            .max_by_key(|(pattern, _, _)| pattern.len())
            .map(|(_, entry, product)| Recognised {
                product: *product,
                claim: "paths",
                entry,
            })
    }

    fn by_host(&self, host: &str) -> Option<Recognised<'_>> {
        let (product, entry) = self.sites_of(host).find_map(|site| site.host.as_ref())?;
        Some(Recognised {
            product: *product,
            claim: "hosts",
            entry,
        })
    }
}

/// The non-empty `/`-separated segments of a path.
fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// The path of a URL, without query or fragment.
fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = rest.find('/').map_or("", |at| &rest[at..]);
    path.split(['?', '#']).next().unwrap_or_default()
}

#[cfg(test)]
#[path = "catalog_tests.rs"]
mod tests;
