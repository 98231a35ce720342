//! `${env:NAME}` substitution in configuration strings, as the OpenTelemetry Collector does it:
//! `${env:NAME}` and `${env:NAME:-default}` are replaced from the environment, `$$` stands for a
//! literal `$`. A value that is exactly one reference is re-read as a YAML scalar so that
//! `port: ${env:PORT}` yields a number.

use serde_yaml::Value;

/// Replaces references in every string of `value`; returns `(key path, message)` for each
/// reference that cannot be resolved.
pub(super) fn substitute(
    value: &mut Value,
    path: &mut Vec<String>,
    lookup: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<(Vec<String>, String)>,
) {
    match value {
        Value::String(text) => match expand(text, lookup) {
            Ok(Some(expanded)) => *value = expanded,
            Ok(None) => {}
            Err(message) => problems.push((path.clone(), message)),
        },
        Value::Mapping(map) => {
            for (key, child) in map.iter_mut() {
                path.push(key.as_str().unwrap_or("?").to_owned());
                substitute(child, path, lookup, problems);
                path.pop();
            }
        }
        Value::Sequence(items) => {
            for (index, child) in items.iter_mut().enumerate() {
                path.push(index.to_string());
                substitute(child, path, lookup, problems);
                path.pop();
            }
        }
        Value::Tagged(tagged) => substitute(&mut tagged.value, path, lookup, problems),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// `Ok(None)` when the text has nothing to replace.
fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<Value>, String> {
    if !text.contains('$') {
        return Ok(None);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut references = 0;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix("{env:") {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unterminated `${{env:` reference in {text:?}"))?;
            out.push_str(&resolve(&body[..end], lookup)?);
            references += 1;
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    let whole_reference = references == 1 && text.starts_with("${env:") && text.ends_with('}');
    if whole_reference && let Ok(scalar @ (Value::Bool(_) | Value::Number(_))) = serde_yaml::from_str(&out) {
        return Ok(Some(scalar));
    }
    Ok(Some(Value::String(out)))
}

fn resolve(reference: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let (name, default) = match reference.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (reference, None),
    };
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!("`${{env:{reference}}}` does not name an environment variable"));
    }
    match (lookup(name), default) {
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_owned()),
        (None, None) => Err(format!("environment variable {name} is not set")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "API_KEY" => Some("s3cret".into()),
            "PORT" => Some("4317".into()),
            _ => None,
        }
    }

    fn run(yaml: &str) -> (Value, Vec<(Vec<String>, String)>) {
        let mut value: Value = serde_yaml::from_str(yaml).expect("test yaml");
        let mut problems = Vec::new();
        substitute(&mut value, &mut Vec::new(), &env, &mut problems);
        (value, problems)
    }

    /// Guarantees: references inside strings, defaults, `$$` escapes and typed whole values.
    #[test]
    fn replaces_references() {
        let (value, problems) =
            run("a: \"Bearer ${env:API_KEY}\"\nb: ${env:PORT}\nc: ${env:NOPE:-fallback}\nd: cost $$5\n");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(value["a"], Value::from("Bearer s3cret"));
        assert_eq!(value["b"], Value::from(4317));
        assert_eq!(value["c"], Value::from("fallback"));
        assert_eq!(value["d"], Value::from("cost $5"));
    }

    /// Guarantees: a missing variable is an error naming the variable and the key path.
    #[test]
    fn missing_variable_is_named() {
        let (_, problems) = run("exporters:\n  otlp:\n    headers:\n      key: ${env:MISSING}\n");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, ["exporters", "otlp", "headers", "key"]);
        assert!(problems[0].1.contains("MISSING"), "{}", problems[0].1);
    }
}
