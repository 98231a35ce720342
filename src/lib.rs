//! fleetpipe: an OTLP pipeline stage for fleets of AI agents.

pub mod analytics;
pub mod app;
pub mod archive;
pub mod compression;
pub mod config;
pub mod enrich;
pub mod export;
pub mod govern;
pub mod grpc_codec;
pub mod kafka;
pub mod memory;
pub mod otlp;
pub mod pipeline;
pub mod receiver;
pub mod registry;
pub mod report;
pub mod route;
pub mod rows;
pub mod server;
pub mod spool;
pub mod telemetry;
