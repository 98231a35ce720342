//! `fleetpipe query`, the client of a running fleetpipe's `POST /query`, and the detector
//! check that `validate` runs.

use anyhow::{Context, bail};

use super::QueryFormat;
use super::components::Config;
use crate::analytics::query::Rows;

pub(super) async fn run(endpoint: &str, sql: &str, format: QueryFormat) -> anyhow::Result<()> {
    crate::export::install_crypto_provider();
    let url = format!("{}/query", endpoint.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&url)
        .body(sql.to_owned())
        .send()
        .await
        .with_context(|| format!("cannot reach fleetpipe at {url}; is it running with an analytics exporter?"))?;
    let status = response.status();
    let body = response.bytes().await.context("reading the answer")?;
    if !status.is_success() {
        let error: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let hint = if status == reqwest::StatusCode::NOT_FOUND {
            " (is an analytics exporter configured there?)"
        } else {
            ""
        };
        bail!(
            "query refused ({status}): {}{hint}",
            error["error"].as_str().unwrap_or("no reason given")
        );
    }
    let rows: Rows = serde_json::from_slice(&body).context("the answer is not query rows")?;
    if !rows.left_out.is_empty() {
        eprintln!(
            "note: live windows leave out {} (null here): no loaded detector reads them; set `columns: all` on the analytics exporter to keep every column",
            rows.left_out.join(", ")
        );
    }
    print_rows(&rows, format);
    Ok(())
}

/// Runs `sql` over the Parquet archive in `archive` and prints the rows.
pub(super) async fn run_archive(archive: &std::path::Path, sql: &str, format: QueryFormat) -> anyhow::Result<()> {
    // Decoding only the columns the SQL reads is what keeps a query over a large archive
    // fast; SQL that cannot be planned is refused by the query itself, below.
    let columns = crate::archive::Columns::read_by(&[sql], |_| {})
        .await
        .unwrap_or(crate::archive::Columns::All);
    let context = crate::archive::session(archive, crate::archive::Period::default(), &columns).await?;
    let batches = context.sql(sql).await?.collect().await?;
    print_rows(&crate::analytics::query::rows(&batches), format);
    Ok(())
}

fn print_rows(rows: &Rows, format: QueryFormat) {
    print!(
        "{}",
        match format {
            QueryFormat::Table => rows.table(),
            QueryFormat::Json => rows.json(),
            QueryFormat::Csv => rows.csv(),
        }
    );
}

/// Runs the checks of every exporter that reads more than its settings (analytics plans its
/// detectors), once each; prints what each checked, or fails listing every problem.
pub(super) async fn check_exporters(config: &Config) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for (name, exporter) in &config.exporters {
        match exporter.check().await {
            Ok(Some(checked)) => println!("exporters.{name}: {checked}"),
            Ok(None) => {}
            Err(errors) => problems.extend(errors.iter().map(|e| format!("  - exporters.{name}: {e}"))),
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    bail!("{} detector problem(s):\n{}", problems.len(), problems.join("\n"))
}
