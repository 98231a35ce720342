//! The commands: `run`, `validate` and `config default`. `main.rs` parses the command line and
//! calls [`run`].

mod registry;
mod service;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, DEFAULT_CONFIG};

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
    },
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
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
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the built-in default configuration.
    Default,
}

/// Runs a command to completion.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run { config } => {
            let config = Config::load(config.as_deref())?;
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(service::run(config))
        }
        Command::Validate { config } => {
            let source = config
                .as_ref()
                .map_or("built-in default config".into(), |p| p.display().to_string());
            let loaded = Config::load(config.as_deref())?;
            registry::check(&loaded)?;
            println!("{source}: configuration is valid");
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Default,
        } => {
            print!("{DEFAULT_CONFIG}");
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
            }
        }
    }
}
