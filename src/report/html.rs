//! The report as one self-contained HTML page: no script, no font or image from the network,
//! charts as inline SVG with axes, units and legends, readable when printed.

use serde_json::{Map, Value};

use super::present::{self, cell, header, shown, title};
use super::{PriceTable, Report, Table};

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1f2933;margin:0;background:#f5f7fa}
main{max-width:1180px;margin:0 auto;padding:24px 32px 48px;background:#fff}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:36px 0 4px;border-bottom:2px solid #e4e7eb;padding-bottom:4px}
p.about,p.meta{color:#52606d;margin:4px 0 12px}p.headline{font-size:16px;background:#f0f4f8;border-left:4px solid #2f80ed;padding:10px 14px;margin:12px 0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px}
.card{border:1px solid #e4e7eb;border-radius:6px;padding:10px 12px}
.card .label{color:#52606d;font-size:12px}.card .value{font-size:20px;font-weight:600}
.card .previous{color:#7b8794;font-size:12px}
table{border-collapse:collapse;width:100%;font-size:13px;margin:8px 0}
th{text-align:left;background:#f0f4f8;font-weight:600}th,td{padding:5px 8px;border-bottom:1px solid #e4e7eb;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
pre{background:#f0f4f8;padding:8px 10px;border-radius:4px;font-size:12px;overflow-x:auto}
svg{display:block;margin:8px 0}svg text{font:11px system-ui,sans-serif;fill:#3e4c59}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:16px}
@media print{body{background:#fff}main{padding:0}h2{break-after:avoid}table,svg,.card,pre{break-inside:avoid}.charts{grid-template-columns:1fr}}
";

const BLUE: &str = "#2f80ed";
const RED: &str = "#d64545";

pub(super) fn render(report: &Report) -> String {
    let json = report.json();
    let mut page = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    page.push_str(&format!(
        "<title>Fleet performance report</title><style>{STYLE}</style></head><body><main>"
    ));
    let (source, as_of) = PriceTable::built_in_source();
    page.push_str(&format!(
        "<h1>Fleet performance report</h1><p class=\"meta\">Period: {} to {}. Costs are estimates at list prices ({}, as of {}) with {} configured price(s); tokens no price covered are counted apart.</p>",
        escape(json["period"]["from"].as_str().unwrap_or("the start of the archive")),
        escape(json["period"]["to"].as_str().unwrap_or("its end")),
        escape(source),
        escape(as_of),
        report.configured_prices
    ));
    page.push_str(&format!(
        "<p class=\"headline\">{}</p>",
        escape(&present::headline(&json))
    ));
    for (section, table) in &report.sections {
        let (heading, about) = title(section);
        page.push_str(&format!(
            "<section id=\"{section}\"><h2>{heading}</h2><p class=\"about\">{}</p>",
            escape(about)
        ));
        match *section {
            "summary" => cards(&mut page, &json["summary"]),
            "timeline" => page.push_str(&timeline(table)),
            "agents" => {
                page.push_str("<div class=\"charts\">");
                page.push_str(&bars(
                    "Estimated cost per agent",
                    "US dollars",
                    table,
                    "name",
                    "cost_usd",
                ));
                page.push_str(&bars(
                    "p95 invocation duration per agent",
                    "ms",
                    table,
                    "name",
                    "p95_ms",
                ));
                page.push_str("</div>");
            }
            "integrations" => {
                page.push_str("<div class=\"charts\">");
                page.push_str(&bars("Calls per integration", "calls", table, "id", "calls"));
                page.push_str(&bars("p95 latency per call", "ms", table, "id", "p95_ms"));
                page.push_str("</div>");
            }
            _ => {}
        }
        if *section != "summary" && *section != "timeline" {
            rows(&mut page, section, table);
        }
        if *section == "shadow" {
            for row in &table.rows {
                let text = |key: &str| escape(row.get(key).and_then(Value::as_str).unwrap_or_default());
                page.push_str(&format!(
                    "<p>To govern <code>{}</code>, add to CONFIG.yaml:</p><pre>{}</pre>",
                    text("target"),
                    text("snippet")
                ));
            }
        }
        page.push_str("</section>");
    }
    page.push_str("</main></body></html>\n");
    page
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn cards(page: &mut String, summary: &Value) {
    page.push_str("<div class=\"cards\">");
    for (key, label) in present::SUMMARY {
        let previous = summary["previous"].get(key).map_or(String::new(), |previous| {
            format!(
                "<div class=\"previous\">{} vs {} before</div>",
                present::change(summary[key].as_f64().unwrap_or(0.0), previous.as_f64().unwrap_or(0.0)),
                escape(&cell(key, Some(previous)))
            )
        });
        page.push_str(&format!(
            "<div class=\"card\"><div class=\"label\">{label}</div><div class=\"value\">{}</div>{previous}</div>",
            escape(&cell(key, summary.get(key)))
        ));
    }
    page.push_str("</div>");
}

fn rows(page: &mut String, section: &str, table: &Table) {
    if table.rows.is_empty() {
        page.push_str("<p>None in this period.</p>");
        return;
    }
    let columns: Vec<&String> = table.columns.iter().filter(|c| shown(section, c)).collect();
    page.push_str("<table><thead><tr>");
    for column in &columns {
        page.push_str(&format!("<th>{}</th>", escape(&header(column))));
    }
    page.push_str("</tr></thead><tbody>");
    for row in &table.rows {
        page.push_str("<tr>");
        for column in &columns {
            let value = row.get(column.as_str());
            let class = if value.is_some_and(Value::is_number) {
                " class=\"n\""
            } else {
                ""
            };
            page.push_str(&format!("<td{class}>{}</td>", escape(&cell(column, value))));
        }
        page.push_str("</tr>");
    }
    page.push_str("</tbody></table>");
}

/// A number of a row, 0 when absent.
fn number(row: &Map<String, Value>, key: &str) -> f64 {
    row.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

/// A round upper bound for an axis: 1, 2 or 5 times a power of ten.
fn axis_top(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|top| *top >= max)
        .unwrap_or(10.0 * power)
}

/// Horizontal bars of `value` per `label` of `table`'s rows (the first 12), with a value
/// axis in `unit`.
fn bars(heading: &str, unit: &str, table: &Table, label: &str, value: &str) -> String {
    let items: Vec<(String, f64)> = table
        .rows
        .iter()
        .take(12)
        .map(|row| (cell(label, row.get(label)), number(row, value)))
        .collect();
    let (left, width, row_height) = (150.0, 360.0, 22.0);
    let height = items.len() as f64 * row_height + 60.0;
    let top = axis_top(items.iter().map(|(_, v)| *v).fold(0.0, f64::max));
    let mut svg = format!(
        "<figure><svg viewBox=\"0 0 {} {height}\" width=\"100%\" role=\"img\" aria-label=\"{}\"><text x=\"0\" y=\"12\" style=\"font-weight:600\">{}</text>",
        left + width + 60.0,
        escape(heading),
        escape(heading)
    );
    for (i, (name, v)) in items.iter().enumerate() {
        let y = 22.0 + i as f64 * row_height;
        let w = v / top * width;
        let shown_value = cell(value, Some(&serde_json::json!(v)));
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect x=\"{left}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{BLUE}\"/><text x=\"{}\" y=\"{}\">{}</text>",
            left - 6.0,
            y + 14.0,
            escape(&truncate(name, 22)),
            row_height - 6.0,
            left + w + 4.0,
            y + 14.0,
            escape(&shown_value)
        ));
    }
    let axis_y = 22.0 + items.len() as f64 * row_height;
    svg.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{axis_y}\" x2=\"{}\" y2=\"{axis_y}\" stroke=\"#9aa5b1\"/>",
        left + width
    ));
    for tick in [0.0, 0.5, 1.0] {
        let x = left + tick * width;
        svg.push_str(&format!(
            "<line x1=\"{x}\" y1=\"{axis_y}\" x2=\"{x}\" y2=\"{}\" stroke=\"#9aa5b1\"/><text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            axis_y + 4.0,
            axis_y + 16.0,
            escape(&present::significant(top * tick))
        ));
    }
    svg.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text></svg></figure>",
        left + width / 2.0,
        axis_y + 30.0,
        escape(unit)
    ));
    svg
}

fn truncate(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Columns of spans per hour, errors in red over them, with both axes and a legend.
fn timeline(table: &Table) -> String {
    if table.rows.is_empty() {
        return "<p>None in this period.</p>".into();
    }
    let (left, width, height, bottom) = (56.0, 1000.0, 180.0, 210.0);
    let hours = table.rows.len() as f64;
    let step = width / hours;
    let top = axis_top(table.rows.iter().map(|r| number(r, "spans")).fold(0.0, f64::max));
    let y = |v: f64| bottom - v / top * height;
    let mut svg = format!(
        "<svg viewBox=\"0 0 {} 270\" width=\"100%\" role=\"img\" aria-label=\"Spans and errors per hour\">",
        left + width + 10.0
    );
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let ty = y(top * tick);
        svg.push_str(&format!(
            "<line x1=\"{left}\" y1=\"{ty}\" x2=\"{}\" y2=\"{ty}\" stroke=\"#e4e7eb\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            left + width,
            left - 6.0,
            ty + 4.0,
            escape(&present::thousands((top * tick) as i64))
        ));
    }
    for (i, row) in table.rows.iter().enumerate() {
        let x = left + i as f64 * step;
        for (key, colour) in [("spans", BLUE), ("errors", RED)] {
            let v = number(row, key);
            svg.push_str(&format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\"><title>{}: {} {key}</title></rect>",
                x + step * 0.1,
                y(v),
                (step * 0.8).max(0.5),
                bottom - y(v),
                escape(&cell("hour", row.get("hour"))),
                v
            ));
        }
    }
    svg.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{bottom}\" x2=\"{}\" y2=\"{bottom}\" stroke=\"#9aa5b1\"/>",
        left + width
    ));
    let last = table.rows.len() - 1;
    for i in [0, last / 2, last] {
        let x = left + (i as f64 + 0.5) * step;
        svg.push_str(&format!(
            "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            bottom + 16.0,
            escape(&cell("hour", table.rows[i].get("hour")))
        ));
    }
    svg.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">hour (UTC)</text><text x=\"12\" y=\"{}\" transform=\"rotate(-90 12 {})\" text-anchor=\"middle\">spans per hour</text>",
        left + width / 2.0,
        bottom + 34.0,
        bottom - height / 2.0,
        bottom - height / 2.0
    ));
    svg.push_str(&format!(
        "<rect x=\"{left}\" y=\"254\" width=\"10\" height=\"10\" fill=\"{BLUE}\"/><text x=\"{}\" y=\"263\">spans</text><rect x=\"{}\" y=\"254\" width=\"10\" height=\"10\" fill=\"{RED}\"/><text x=\"{}\" y=\"263\">errors</text></svg>",
        left + 14.0,
        left + 70.0,
        left + 84.0
    ));
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: axes end at a round number at or above the largest value.
    #[test]
    fn axes_end_at_round_numbers() {
        assert_eq!(axis_top(0.0), 1.0);
        assert_eq!(axis_top(7.0), 10.0);
        assert_eq!(axis_top(120.0), 200.0);
        assert_eq!(axis_top(0.03), 0.05);
        assert_eq!(escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
