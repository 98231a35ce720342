//! How the report reads, in Markdown and HTML alike: the sections' titles and what they
//! show, and numbers written for people (money in dollars, shares in per cent, times in ms).

use serde_json::Value;

/// A section's title and one sentence on what it shows.
pub(super) fn title(section: &str) -> (&'static str, &'static str) {
    match section {
        "summary" => ("Fleet summary", "The whole fleet over the period."),
        "timeline" => ("Throughput", "Spans, invocations and errors per hour (UTC)."),
        "layers" => (
            "Operating-model layers",
            "Invocations, success, duration and spend per layer of the operating model.",
        ),
        "agents" => (
            "Agents",
            "Invocations, success, duration and spend per agent; cost per success is all the agent's cost over its successful invocations.",
        ),
        "integrations" => (
            "Governed integrations",
            "Scorecards of the registered integrations, per call: an execute_tool span and the client span under it are one call.",
        ),
        "errors" => ("Errors by type", "Failed calls per integration and error.type."),
        "tools" => ("Top tools", "Tools by calls."),
        "mcp_servers" => ("Top MCP servers", "MCP servers by calls."),
        "slowest_traces" => (
            "Slowest traces",
            "From a trace's first span start to its last span end.",
        ),
        "waste" => (
            "Waste ledger",
            "What went round in circles or failed, and the inference tokens and cost of the traces it happened in.",
        ),
        "shadow" => (
            "Shadow integrations",
            "Tools and hosts agents called that the registry does not list, with the entry a reviewer could add.",
        ),
        "anomalies" => ("Anomaly timeline", "Findings of fleetpipe's detectors in the period."),
        "data_quality" => (
            "Data quality",
            "GenAI convention spellings per agent, over its model spans, and the share missing provider, model or token counts. The archive is not sampled.",
        ),
        _ => ("", ""),
    }
}

/// Columns a table does not show (the snippet is shown under the table).
pub(super) fn shown(section: &str, column: &str) -> bool {
    !(section == "shadow" && matches!(column, "snippet" | "reason" | "mcp" | "tool_name" | "server_address"))
}

/// A column's header: its name with spaces.
pub(super) fn header(column: &str) -> String {
    column.replace('_', " ")
}

/// A value for people: money as dollars, shares as per cent, durations in ms, counts with
/// thousands separators, times without their fractions.
pub(super) fn cell(column: &str, value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "–".into(),
        Some(Value::Number(n)) => number(column, n.as_f64().unwrap_or(0.0), n.is_f64()),
        Some(Value::String(text)) if looks_like_time(text) => text.replace('T', " ").chars().take(19).collect(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

fn looks_like_time(text: &str) -> bool {
    text.len() >= 19 && text.as_bytes().get(10) == Some(&b'T') && text[..4].bytes().all(|b| b.is_ascii_digit())
}

fn number(column: &str, value: f64, fractional: bool) -> String {
    if column.contains("usd") || column.starts_with("cost") {
        return dollars(value);
    }
    if column.ends_with("rate") || column.starts_with("missing") {
        return format!("{:.1} %", value * 100.0);
    }
    if column.ends_with("_ms") {
        return format!("{} ms", significant(value));
    }
    if fractional {
        return significant(value);
    }
    thousands(value as i64)
}

/// Dollars to the cent, or to four significant digits below a dollar.
pub(super) fn dollars(value: f64) -> String {
    if value.abs() >= 1.0 || value == 0.0 {
        format!("${value:.2}")
    } else {
        format!("${}", significant(value))
    }
}

/// At most four significant digits, no trailing zeros.
pub(super) fn significant(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let digits = (3 - value.abs().log10().floor() as i32).clamp(0, 9) as usize;
    let text = format!("{value:.digits$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// A count with comma thousands separators.
pub(super) fn thousands(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0 { format!("-{out}") } else { out }
}

/// The change from `previous` to `now`, e.g. `+12.5 %`, or `new` from nothing.
pub(super) fn change(now: f64, previous: f64) -> String {
    if previous == 0.0 {
        return if now == 0.0 { "±0 %".into() } else { "new".into() };
    }
    let percent = (now - previous) / previous.abs() * 100.0;
    format!("{}{:.1} %", if percent >= 0.0 { "+" } else { "" }, percent)
}

/// One sentence a lead reads first: agents, invocations and their success, spend, shadow
/// tools and anomalies of the period.
pub(super) fn headline(report: &Value) -> String {
    let summary = &report["summary"];
    let count = |key: &str| summary[key].as_i64().unwrap_or(0);
    let agents_ok: i64 = report["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| (a["invocations"].as_f64().unwrap_or(0.0) * a["success_rate"].as_f64().unwrap_or(0.0)).round() as i64)
        .sum();
    let invocations = count("invocations");
    let success = match invocations {
        0 => String::new(),
        n => format!(" ({:.0} % succeeded)", agents_ok as f64 / n as f64 * 100.0),
    };
    let shadow = report["shadow"].as_array().map_or(0, Vec::len);
    format!(
        "{} agents ran {} invocations{success} over {} spans, for an estimated {} of model spend{}; {} shadow integration(s) and {} anomaly finding(s).",
        thousands(count("agents")),
        thousands(invocations),
        thousands(count("spans")),
        dollars(summary["cost_usd"].as_f64().unwrap_or(0.0)),
        match count("unpriced_tokens") {
            0 => String::new(),
            n => format!(" ({} tokens had no price)", thousands(n)),
        },
        shadow,
        thousands(count("anomalies")),
    )
}

/// The summary's figures in the order they are shown, with their labels.
pub(super) const SUMMARY: [(&str, &str); 14] = [
    ("agents", "Agents"),
    ("invocations", "Invocations"),
    ("traces", "Traces"),
    ("spans", "Spans"),
    ("error_rate", "Error rate (spans)"),
    ("input_tokens", "Input tokens"),
    ("output_tokens", "Output tokens"),
    ("cache_read_tokens", "Cache read tokens"),
    ("cache_write_tokens", "Cache write tokens"),
    ("reasoning_tokens", "Reasoning tokens"),
    ("cost_usd", "Estimated cost"),
    ("cost_per_invocation", "Cost per invocation"),
    ("unpriced_tokens", "Tokens no price covered"),
    ("anomalies", "Anomalies"),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: money, shares, durations and counts read as a person writes them.
    #[test]
    fn numbers_read_as_people_write_them() {
        let n = |column: &str, value: serde_json::Value| cell(column, Some(&value));
        assert_eq!(n("cost_usd", serde_json::json!(1234.5)), "$1234.50");
        assert_eq!(n("cost_usd", serde_json::json!(0.0123456)), "$0.01235");
        assert_eq!(n("error_rate", serde_json::json!(0.125)), "12.5 %");
        assert_eq!(n("p95_ms", serde_json::json!(1500.0)), "1500 ms");
        assert_eq!(n("spans", serde_json::json!(1234567)), "1,234,567");
        assert_eq!(cell("x", None), "–");
        assert_eq!(
            n("first_seen", serde_json::json!("2026-12-05T09:00:00.123Z")),
            "2026-12-05 09:00:00"
        );
        assert_eq!(change(110.0, 100.0), "+10.0 %");
        assert_eq!(change(5.0, 0.0), "new");
    }
}
