//! Finds the line of a key path in block-style YAML text, so that every configuration problem
//! can be reported as `key.path (line N)` even when it is found after deserialisation.

/// The 1-based line of the deepest element of `path` found in `text`; `None` when not even the
/// first is there. A numeric segment selects a list item (`integrations.itsm.1.id`). Flow-style
/// collections (`{a: 1}`, `[x, y]`) are located at their parent key.
pub(crate) fn line_of(text: &str, path: &[&str]) -> Option<usize> {
    let mut matched_indents: Vec<usize> = Vec::new();
    let mut child_indent: Option<usize> = None;
    let mut item_index = 0usize;
    let mut found = None;
    for entry in entries(text) {
        while matched_indents.last().is_some_and(|&m| entry.indent <= m) {
            matched_indents.pop();
            child_indent = None;
            item_index = 0;
        }
        if entry.indent != *child_indent.get_or_insert(entry.indent) {
            continue;
        }
        let Some(wanted) = path.get(matched_indents.len()) else {
            break;
        };
        let hit = match entry.key {
            Some(key) => key == *wanted,
            None => {
                item_index += 1;
                wanted.parse::<usize>().ok() == Some(item_index - 1)
            }
        };
        if hit {
            found = Some(entry.line);
            matched_indents.push(entry.indent);
            child_indent = None;
            item_index = 0;
            if matched_indents.len() == path.len() {
                break;
            }
        }
    }
    found
}

/// A mapping key (`key: …`) or a list item (`- …`, `key` is `None`) and where it starts.
struct Entry<'a> {
    line: usize,
    indent: usize,
    key: Option<&'a str>,
}

/// The structural entries of block-style YAML; `- key: v` yields the item and, two columns
/// further in, its first key.
fn entries(text: &str) -> impl Iterator<Item = Entry<'_>> {
    text.lines().enumerate().flat_map(|(index, line)| {
        let content = line.trim_start();
        let indent = line.len() - content.len();
        let mut found = Vec::new();
        if content.is_empty() || content.starts_with('#') {
            return found;
        }
        if let Some(rest) = content.strip_prefix("- ").or_else(|| (content == "-").then_some("")) {
            found.push(Entry {
                line: index + 1,
                indent,
                key: None,
            });
            let inner = rest.trim_start();
            if let Some(key) = key_of(inner) {
                let inner_indent = indent + (content.len() - inner.len());
                found.push(Entry {
                    line: index + 1,
                    indent: inner_indent,
                    key: Some(key),
                });
            }
        } else if let Some(key) = key_of(content) {
            found.push(Entry {
                line: index + 1,
                indent,
                key: Some(key),
            });
        }
        found
    })
}

/// The mapping key a YAML line starts with, unquoted; `None` for scalars.
fn key_of(content: &str) -> Option<&str> {
    let (key, _) = content.split_once(':')?;
    let key = key.trim();
    if key.is_empty() || key.starts_with(['-', '{', '[']) {
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

    /// Guarantees: numeric segments select list items, including keys written after the dash.
    #[test]
    fn finds_list_items() {
        let text = "integrations:\n  itsm:\n    - id: a\n      name: A\n    - id: b\n      connection: fax\n";
        assert_eq!(line_of(text, &["integrations", "itsm", "1", "connection"]), Some(6));
        assert_eq!(line_of(text, &["integrations", "itsm", "1", "id"]), Some(5));
        assert_eq!(line_of(text, &["integrations", "itsm", "0", "name"]), Some(4));
    }
}
