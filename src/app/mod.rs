//! The commands: `run`, `validate` and `config default`. `main.rs` parses the command line and
//! calls [`run`].

pub mod components;
#[cfg(test)]
mod config_tests;
mod flows;
mod query;
mod registry;
mod service;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::DEFAULT_CONFIG;
use components::Config;

/// fleetpipe: the OTLP pipeline stage for fleets of AI agents.
#[derive(Debug, Parser)]
#[command(name = "fleetpipe", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Receive, process and export telemetry until SIGTERM/SIGINT.
    Run {
        /// Configuration file; the built-in defaults when left out.
        #[arg(long, short, env = "FLEETPIPE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Check a configuration file and list every problem by key path and line.
    Validate {
        #[arg(long, short, env = "FLEETPIPE_CONFIG")]
        config: Option<PathBuf>,
        /// Also print, per exporter, what it gets: signals, layers, integrations, and what is
        /// removed or hashed first.
        #[arg(long)]
        explain: bool,
    },
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Run SQL against the live analytics windows of a running fleetpipe.
    Query {
        /// The query, e.g. `SELECT integration_id, count(*) FROM spans GROUP BY 1`.
        sql: Option<String>,
        /// Read the query from a file (a detector file works: its header is a comment).
        #[arg(long, conflicts_with = "sql")]
        file: Option<PathBuf>,
        /// The running fleetpipe's metrics endpoint.
        #[arg(long, default_value = "http://127.0.0.1:8888")]
        endpoint: String,
        /// Query the Parquet archive in this folder (`spans`, `metric_points`, `logs`)
        /// instead of a running fleetpipe's live windows.
        #[arg(long)]
        archive: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "table")]
        format: QueryFormat,
        /// Print the tables and their columns instead of querying.
        #[arg(long)]
        schema: bool,
    },
    /// The fleet performance report over the Parquet archive.
    Report {
        /// The archive's folder (the `archive` exporter's `path`).
        #[arg(long, default_value = "fleetpipe-data/archive")]
        archive: PathBuf,
        /// Only the last stretch of time, e.g. `24h`, `7d`; the whole archive when left out.
        #[arg(long, conflicts_with_all = ["from", "to"])]
        since: Option<humantime::Duration>,
        /// Only records from this time on (RFC 3339, e.g. `2026-12-01T00:00:00Z`).
        #[arg(long)]
        from: Option<humantime::Timestamp>,
        /// Only records before this time (RFC 3339).
        #[arg(long)]
        to: Option<humantime::Timestamp>,
        /// Set each figure of the summary against the period of equal length before.
        #[arg(long, value_enum)]
        compare: Option<Compare>,
        #[arg(long, value_enum, default_value = "md")]
        format: ReportFormat,
        /// Configuration whose `report.prices` override and extend the built-in price table.
        #[arg(long, short, env = "FLEETPIPE_CONFIG")]
        config: Option<PathBuf>,
        /// Write the report to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The integration registry as fleetpipe reads it.
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
        /// Configuration whose `registry:` section (and enrich settings) to use.
        #[arg(long, short, env = "FLEETPIPE_CONFIG", global = true)]
        config: Option<PathBuf>,
        /// The operating model's CONFIG.yaml, or a checkout holding it; wins over --config.
        #[arg(long, global = true)]
        registry: Option<PathBuf>,
    },
}

/// Output formats of `fleetpipe query`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum QueryFormat {
    Table,
    Json,
    Csv,
}

/// Output formats of `fleetpipe report`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ReportFormat {
    /// One self-contained page: open it in a browser, print it, mail it.
    Html,
    Json,
    Md,
}

/// What `fleetpipe report --compare` sets the period against.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Compare {
    /// The period of equal length just before.
    Previous,
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Print every integration: id, name, category/kind, connection, layers, match rules.
    Show,
    /// Say which integration and layer attributes resolve to, and by which rule. Give
    /// `key=value` pairs, or an OTLP/JSON span (or traces request) on stdin.
    Explain {
        /// Attributes, e.g. `gen_ai.tool.name=jira_search service.name=planner-1`.
        attributes: Vec<String>,
    },
    /// Print a CONFIG.yaml entry for every shadow integration a running fleetpipe has seen
    /// (or the archive holds), with the registered integration it most likely is and why.
    Suggest {
        /// The metrics endpoint of a running fleetpipe (`service.telemetry.metrics.endpoint`).
        #[arg(long, default_value = "http://127.0.0.1:8888", conflicts_with = "archive")]
        endpoint: String,
        /// Read the shadow calls from this archive instead.
        #[arg(long)]
        archive: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the built-in default configuration.
    Default,
}

/// What the binary prints when a command fails: the error and its causes, each said once. A
/// message that already quotes its cause (as thiserror's and DataFusion's do) is not followed
/// by it again.
pub fn error_message(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// Runs a command to completion.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run { config } => {
            let config = Config::load(config.as_deref())?;
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(service::run(config))
        }
        Command::Validate { config, explain } => {
            let source = config
                .as_ref()
                .map_or("built-in default config".into(), |p| p.display().to_string());
            let loaded = Config::load(config.as_deref())?;
            let registry = registry::check(&loaded)?;
            let (allowed, entry_warnings) = flows::entries(&loaded, registry.as_ref())?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(query::check_exporters(&loaded))?;
            for warning in loaded.warnings().into_iter().chain(entry_warnings) {
                eprintln!("warning: {warning}");
            }
            if explain {
                for line in flows::explain(&loaded, &allowed)? {
                    println!("{line}");
                }
            }
            println!("{source}: configuration is valid");
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Default,
        } => {
            print!("{DEFAULT_CONFIG}");
            Ok(())
        }
        Command::Query {
            sql,
            file,
            endpoint,
            archive,
            format,
            schema,
        } => {
            if schema {
                print!("{}", crate::analytics::query::schema_text());
                return Ok(());
            }
            let sql = match (sql, file) {
                (Some(sql), _) => sql,
                (None, Some(file)) => {
                    std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?
                }
                (None, None) => anyhow::bail!("give the SQL, or --file, or --schema"),
            };
            // DataFusion runs a query's partitions as tasks: one thread per core, so it uses them all.
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            match archive {
                Some(archive) => runtime.block_on(query::run_archive(&archive, &sql, format)),
                None => runtime.block_on(query::run(&endpoint, &sql, format)),
            }
        }
        Command::Report {
            archive,
            since,
            from,
            to,
            compare,
            format,
            config,
            out,
        } => {
            let period = period(since, from, to);
            let settings = Config::load_report_section(config.as_deref())?;
            // DataFusion runs a query's partitions as tasks: one thread per core, so it uses them all.
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let report = runtime.block_on(crate::report::Report::over(
                &archive,
                period,
                &settings,
                compare.is_some(),
            ))?;
            let text = match format {
                ReportFormat::Html => report.html(),
                ReportFormat::Json => format!("{:#}\n", report.json()),
                ReportFormat::Md => report.markdown(),
            };
            match out {
                Some(path) => std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?,
                None => print!("{text}"),
            }
            Ok(())
        }
        Command::Registry {
            command,
            config,
            registry,
        } => {
            let source = registry::Source { config, registry };
            match command {
                RegistryCommand::Show => registry::show(&source),
                RegistryCommand::Explain { attributes } => registry::explain(&source, &attributes),
                RegistryCommand::Suggest { endpoint, archive } => {
                    registry::suggest(&source, &endpoint, archive.as_deref())
                }
            }
        }
    }
}

/// The period `report` covers: the last `since`, or from `from` to `to`.
fn period(
    since: Option<humantime::Duration>,
    from: Option<humantime::Timestamp>,
    to: Option<humantime::Timestamp>,
) -> crate::archive::Period {
    let nanos = |time: std::time::SystemTime| {
        time.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    };
    let now = std::time::SystemTime::now();
    let (from, to) = match since {
        // The end is now, so that the period has a length to compare with the one before.
        Some(since) => (Some(now - *since), Some(now)),
        None => (from.map(Into::into), to.map(Into::into)),
    };
    crate::archive::Period {
        from: from.map(nanos),
        to: to.map(nanos),
    }
}
