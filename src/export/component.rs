//! The exporter types' entries for the component table: their checks and how each starts.

use std::any::Any;

use super::config::{
    DebugExporterConfig, FileExporterConfig, OtlpExporterConfig, OtlpGrpcExporterConfig, OtlpHttpExporterConfig,
    QueueConfig, RetryConfig, queue_and_retry_problems,
};
use super::kafka::{KafkaExporterConfig, KafkaSender};
use super::local::{DebugSender, FileSender};
use super::otlp_grpc::OtlpGrpcSender;
use super::otlp_http::OtlpHttpSender;
use super::{Destination, start};
use crate::config::Problem;
use crate::pipeline::component::{ExporterContext, ExporterSettings, Settings, StartError, StartedExporter};

fn setup_error(context: &ExporterContext<'_>, error: super::ExportError) -> StartError {
    StartError::new(format!("exporters.{}", context.name), error)
}

impl Settings for OtlpGrpcExporterConfig {
    /// Those of both OTLP exporters, and per-signal endpoints, which only HTTP has.
    fn problems(&self) -> Vec<Problem> {
        let per_signal = [
            ("traces_endpoint", self.0.traces_endpoint.is_some()),
            ("metrics_endpoint", self.0.metrics_endpoint.is_some()),
            ("logs_endpoint", self.0.logs_endpoint.is_some()),
        ];
        let mut problems: Vec<Problem> = per_signal
            .into_iter()
            .filter(|(_, set)| *set)
            .map(|(key, _)| Problem::new(key, "only `otlp_http` exporters take per-signal endpoints"))
            .collect();
        problems.extend(self.0.problems());
        problems
    }

    fn warnings(&self) -> Vec<Problem> {
        self.0.warnings()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Starts an OTLP exporter sending to `destination` with `config`'s retries and queue.
fn start_otlp(
    context: ExporterContext<'_>,
    destination: Destination,
    config: &OtlpExporterConfig,
) -> Result<StartedExporter, StartError> {
    for warning in config.warnings() {
        tracing::warn!(exporter = context.name, key = %warning.key, "{}", warning.message);
    }
    start(
        context,
        destination,
        config.retry_on_failure.clone(),
        &config.sending_queue,
    )
}

impl ExporterSettings for OtlpGrpcExporterConfig {
    fn leaves_the_host(&self) -> bool {
        true
    }

    fn start(&self, context: ExporterContext<'_>) -> Result<StartedExporter, StartError> {
        let sender = OtlpGrpcSender::new(&self.0).map_err(|e| setup_error(&context, e))?;
        start_otlp(context, Destination::Grpc(sender), &self.0)
    }
}

impl Settings for OtlpHttpExporterConfig {
    fn problems(&self) -> Vec<Problem> {
        self.0.problems()
    }

    fn warnings(&self) -> Vec<Problem> {
        self.0.warnings()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl ExporterSettings for OtlpHttpExporterConfig {
    fn leaves_the_host(&self) -> bool {
        true
    }

    fn start(&self, context: ExporterContext<'_>) -> Result<StartedExporter, StartError> {
        let sender = OtlpHttpSender::new(&self.0).map_err(|e| setup_error(&context, e))?;
        start_otlp(context, Destination::Http(Box::new(sender)), &self.0)
    }
}

impl Settings for DebugExporterConfig {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl ExporterSettings for DebugExporterConfig {
    fn start(&self, context: ExporterContext<'_>) -> Result<StartedExporter, StartError> {
        let destination = Destination::Debug(DebugSender::new(context.name, self));
        start(context, destination, RetryConfig::default(), &QueueConfig::default())
    }
}

impl Settings for FileExporterConfig {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl ExporterSettings for FileExporterConfig {
    fn start(&self, context: ExporterContext<'_>) -> Result<StartedExporter, StartError> {
        let destination = Destination::File(FileSender::new(self));
        start(context, destination, RetryConfig::default(), &QueueConfig::default())
    }
}

impl Settings for KafkaExporterConfig {
    fn problems(&self) -> Vec<Problem> {
        let mut problems = KafkaExporterConfig::problems(self);
        problems.extend(queue_and_retry_problems(&self.sending_queue, &self.retry_on_failure));
        problems
    }

    fn warnings(&self) -> Vec<Problem> {
        KafkaExporterConfig::warnings(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl ExporterSettings for KafkaExporterConfig {
    fn leaves_the_host(&self) -> bool {
        true
    }

    fn start(&self, context: ExporterContext<'_>) -> Result<StartedExporter, StartError> {
        for warning in self.warnings() {
            tracing::warn!(exporter = context.name, key = %warning.key, "{}", warning.message);
        }
        let sender = KafkaSender::new(self).map_err(|e| setup_error(&context, e))?;
        let destination = Destination::Kafka(Box::new(sender));
        start(context, destination, self.retry_on_failure.clone(), &self.sending_queue)
    }
}
