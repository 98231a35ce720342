"""A tiny agent instrumented with the OpenTelemetry Python SDK, configured as users do:
OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL (grpc or http/protobuf) and
OTEL_SERVICE_NAME. It sends SPANS spans, a counter and a histogram, and LOGS log records,
flushes, and prints what it sent as JSON."""

import json
import logging
import os
import sys

from opentelemetry import metrics, trace
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

if os.environ["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc":
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
else:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

spans = int(sys.argv[1])
logs = int(sys.argv[2])
resource = Resource.create({"operating_model.layer": "execution"})

tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(), max_export_batch_size=64))
meter_provider = MeterProvider(resource=resource, metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=60000)])
logger_provider = LoggerProvider(resource=resource)
logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))

tracer = tracer_provider.get_tracer("python-agent")
meter = meter_provider.get_meter("python-agent")
tool_calls = meter.create_counter("agent.tool.calls")
latency = meter.create_histogram("agent.tool.latency", unit="s")
logger = logging.getLogger("python-agent")
logger.addHandler(LoggingHandler(logger_provider=logger_provider))
logger.setLevel(logging.INFO)

span_ids = []
with tracer.start_as_current_span("invoke_agent planner") as root:
    span_ids.append(format(root.get_span_context().span_id, "016x"))
    for i in range(spans - 1):
        with tracer.start_as_current_span(f"execute_tool jira_search {i}", kind=trace.SpanKind.CLIENT) as span:
            span.set_attribute("gen_ai.tool.name", "jira_search")
            span_ids.append(format(span.get_span_context().span_id, "016x"))
            tool_calls.add(1, {"gen_ai.tool.name": "jira_search"})
            latency.record(0.01 * i, {"gen_ai.tool.name": "jira_search"})
for i in range(logs):
    logger.info("tool call %d finished", i)

ok = tracer_provider.force_flush() and meter_provider.force_flush() and logger_provider.force_flush()
tracer_provider.shutdown()
meter_provider.shutdown()
logger_provider.shutdown()
print(json.dumps({"flushed": bool(ok), "span_ids": span_ids}))
