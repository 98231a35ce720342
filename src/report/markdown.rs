//! The report as Markdown: the summary as a list, every other section as a table, the shadow
//! integrations' registry entries as YAML blocks.

use serde_json::Value;

use super::present::{self, cell, header, shown, title};
use super::{PriceTable, Report, Table};

pub(super) fn render(report: &Report) -> String {
    let mut out = String::from("# Fleet performance report\n");
    let json = report.json();
    let (source, as_of) = PriceTable::built_in_source();
    out.push_str(&format!(
        "\nPeriod: {} to {}. Prices: {source}, as of {as_of}; {} configured.\n",
        json["period"]["from"].as_str().unwrap_or("the start of the archive"),
        json["period"]["to"].as_str().unwrap_or("its end"),
        report.configured_prices,
    ));
    out.push_str(&format!("\n**{}**\n", present::headline(&json)));
    for (section, table) in &report.sections {
        let (heading, about) = title(section);
        out.push_str(&format!("\n## {heading}\n\n{about}\n\n"));
        if *section == "summary" {
            summary(&mut out, &json["summary"]);
            continue;
        }
        if table.rows.is_empty() {
            out.push_str("None in this period.\n");
            continue;
        }
        rows(&mut out, section, table);
        if *section == "shadow" {
            for row in &table.rows {
                let snippet = row.get("snippet").and_then(Value::as_str).unwrap_or_default();
                let target = row.get("target").and_then(Value::as_str).unwrap_or_default();
                out.push_str(&format!(
                    "\nTo govern `{target}`, add to CONFIG.yaml:\n\n```yaml\n{snippet}```\n"
                ));
            }
        }
    }
    out
}

fn summary(out: &mut String, summary: &Value) {
    for (key, label) in present::SUMMARY {
        let now = cell(key, summary.get(key));
        match summary["previous"].get(key) {
            Some(previous) => out.push_str(&format!(
                "- {label}: {now} (previous period: {}, {})\n",
                cell(key, Some(previous)),
                present::change(summary[key].as_f64().unwrap_or(0.0), previous.as_f64().unwrap_or(0.0))
            )),
            None => out.push_str(&format!("- {label}: {now}\n")),
        }
    }
}

fn rows(out: &mut String, section: &str, table: &Table) {
    let columns: Vec<&String> = table.columns.iter().filter(|c| shown(section, c)).collect();
    let headers: Vec<String> = columns.iter().map(|c| header(c)).collect();
    out.push_str(&format!(
        "| {} |\n|{}\n",
        headers.join(" | "),
        " --- |".repeat(columns.len())
    ));
    for row in &table.rows {
        let cells: Vec<String> = columns.iter().map(|c| cell(c, row.get(c.as_str()))).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
}
