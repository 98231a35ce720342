//! Finds the line of a key path in block-style YAML text, so that every configuration problem
//! can be reported as `key.path (line N)` even when it is found after deserialisation.

/// The 1-based line of the deepest key of `path` found in `text`; `None` when not even the first
/// key is there. Flow-style mappings (`{a: 1}`) are located at their parent key.
pub fn line_of(text: &str, path: &[&str]) -> Option<usize> {
    let mut matched_indents: Vec<usize> = Vec::new();
    let mut child_indent: Option<usize> = None;
    let mut found = None;
    for (index, line) in text.lines().enumerate() {
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let indent = line.len() - content.len();
        while matched_indents.last().is_some_and(|&m| indent <= m) {
            matched_indents.pop();
            child_indent = None;
        }
        let expected_indent = *child_indent.get_or_insert(indent);
        if indent != expected_indent {
            continue;
        }
        let Some(wanted) = path.get(matched_indents.len()) else {
            break;
        };
        if key_of(content) == Some(*wanted) {
            found = Some(index + 1);
            matched_indents.push(indent);
            child_indent = None;
            if matched_indents.len() == path.len() {
                break;
            }
        }
    }
    found
}

/// The mapping key a YAML line starts with, unquoted; `None` for list items and scalars.
fn key_of(content: &str) -> Option<&str> {
    let (key, _) = content.split_once(':')?;
    let key = key.trim();
    if key.starts_with('-') {
        return None;
    }
    Some(key.trim_matches(|c| c == '"' || c == '\''))
}

#[cfg(test)]
mod tests {
    use super::line_of;

    const TEXT: &str = "\
exporters:
  debug:
    endpoint: x
  otlp/vendor:
    tls:
      endpoint: nested
    endpoint: https://x
service:
  pipelines:
    traces:
      exporters: [otlp/vendor]
";

    /// Guarantees: a key is found under its own parent, not under a sibling or deeper.
    #[test]
    fn finds_keys_under_their_parent_only() {
        assert_eq!(line_of(TEXT, &["exporters", "otlp/vendor", "endpoint"]), Some(7));
        assert_eq!(line_of(TEXT, &["exporters", "debug", "endpoint"]), Some(3));
        assert_eq!(
            line_of(TEXT, &["service", "pipelines", "traces", "exporters"]),
            Some(11)
        );
    }

    /// Guarantees: a missing leaf is reported at its deepest existing parent.
    #[test]
    fn falls_back_to_the_deepest_parent() {
        assert_eq!(line_of(TEXT, &["exporters", "otlp/vendor", "headers"]), Some(4));
        assert_eq!(line_of(TEXT, &["receivers"]), None);
    }
}
