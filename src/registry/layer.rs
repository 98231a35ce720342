//! Which operating-model layer an agent belongs to: the runtime's own `operating_model.layer`
//! resource attribute wins, then the first agent-name glob that matches, then `unknown`.

use super::model::Layer;

/// `*` matches any run of characters, `?` any one; everything else literally, ignoring case.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.to_lowercase().chars().collect();
    let text: Vec<char> = text.to_lowercase().chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((star, matched)) => {
                    p = star + 1;
                    t = matched + 1;
                    backtrack = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Where a layer came from, for `registry explain` and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerSource {
    /// The resource already said so (`operating_model.layer`).
    Runtime,
    /// An `agents` glob matched this agent name.
    Mapping { glob: String, agent: String },
    /// Nothing said.
    Unknown,
}

/// Resolves the layer of an agent from its own claim and its names.
pub fn resolve<'a>(
    claimed: Option<&str>,
    names: impl IntoIterator<Item = &'a str>,
    rules: &[(String, Layer)],
) -> (Option<Layer>, LayerSource) {
    if let Some(layer) = claimed.and_then(Layer::parse) {
        return (Some(layer), LayerSource::Runtime);
    }
    for name in names {
        if let Some((glob, layer)) = rules.iter().find(|(glob, _)| glob_matches(glob, name)) {
            return (
                Some(*layer),
                LayerSource::Mapping {
                    glob: glob.clone(),
                    agent: name.to_owned(),
                },
            );
        }
    }
    (None, LayerSource::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: `*` and `?` wildcards, case-insensitively.
    #[test]
    fn globs() {
        assert!(glob_matches("planner-*", "Planner-EU-1"));
        assert!(glob_matches("*-executor", "deploy-executor"));
        assert!(glob_matches("qa-?", "qa-7"));
        assert!(glob_matches("*", ""));
        assert!(!glob_matches("planner-*", "replanner-1"));
        assert!(!glob_matches("qa-?", "qa-77"));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(!glob_matches("a*b*c", "axxbyy"));
    }

    /// Guarantees: the runtime's claim wins, then the first matching glob, then unknown.
    #[test]
    fn resolution_order() {
        let rules = vec![
            ("planner-*".to_owned(), Layer::Strategy),
            ("*".to_owned(), Layer::Execution),
        ];
        assert_eq!(
            resolve(Some("quality"), ["planner-1"], &rules),
            (Some(Layer::Quality), LayerSource::Runtime)
        );
        let (layer, source) = resolve(Some("bogus"), ["planner-1"], &rules);
        assert_eq!(layer, Some(Layer::Strategy));
        assert!(matches!(source, LayerSource::Mapping { .. }));
        assert_eq!(resolve(None, ["x"], &rules[..1]), (None, LayerSource::Unknown));
    }
}
