//! The field numbers of the OTLP messages fleetpipe reads and writes (opentelemetry-proto
//! v1.10.0, in `proto/`), one module a message: the one table the wire walker, the codec and
//! analytics share.

/// `Export{Trace,Metrics,Logs}ServiceRequest`.
pub mod request {
    /// `resource_spans`, `resource_metrics`, `resource_logs`.
    pub const RESOURCE_DATA: u32 = 1;
}

/// `Resource{Spans,Metrics,Logs}`.
pub mod resource_data {
    pub const RESOURCE: u32 = 1;
    /// `scope_spans`, `scope_metrics`, `scope_logs`.
    pub const SCOPE_DATA: u32 = 2;
}

/// `Resource`.
pub mod resource {
    pub const ATTRIBUTES: u32 = 1;
}

/// `Scope{Spans,Metrics,Logs}`.
pub mod scope_data {
    /// `spans`, `metrics`, `log_records`.
    pub const RECORDS: u32 = 2;
}

/// `KeyValue`.
pub mod key_value {
    pub const KEY: u32 = 1;
    pub const VALUE: u32 = 2;
}

/// `AnyValue`.
pub mod any_value {
    pub const STRING: u32 = 1;
    pub const BOOL: u32 = 2;
    pub const INT: u32 = 3;
    pub const DOUBLE: u32 = 4;
    pub const ARRAY: u32 = 5;
    pub const KVLIST: u32 = 6;
    pub const BYTES: u32 = 7;
    pub const STRING_INDEX: u32 = 8;
}

/// `Span`.
pub mod span {
    pub const TRACE_ID: u32 = 1;
    pub const SPAN_ID: u32 = 2;
    pub const PARENT_SPAN_ID: u32 = 4;
    pub const NAME: u32 = 5;
    pub const KIND: u32 = 6;
    pub const START_TIME: u32 = 7;
    pub const END_TIME: u32 = 8;
    pub const ATTRIBUTES: u32 = 9;
    pub const STATUS: u32 = 15;
}

/// `Status`.
pub mod status {
    pub const MESSAGE: u32 = 2;
    pub const CODE: u32 = 3;
}

/// `Metric`.
pub mod metric {
    pub const NAME: u32 = 1;
    pub const UNIT: u32 = 3;
    pub const GAUGE: u32 = 5;
    pub const SUM: u32 = 7;
    pub const HISTOGRAM: u32 = 9;
    pub const EXPONENTIAL_HISTOGRAM: u32 = 10;
    pub const SUMMARY: u32 = 11;
}

/// `Gauge`, `Sum`, `Histogram`, `ExponentialHistogram`, `Summary`.
pub mod metric_data {
    pub const DATA_POINTS: u32 = 1;
}

/// The fields every kind of data point has at the same number.
pub mod data_point {
    pub const TIME: u32 = 3;
    /// `Histogram`, `ExponentialHistogram` and `Summary` points.
    pub const COUNT: u32 = 4;
    /// `Histogram`, `ExponentialHistogram` and `Summary` points.
    pub const SUM: u32 = 5;
}

/// `NumberDataPoint`.
pub mod number_point {
    pub const AS_DOUBLE: u32 = 4;
    pub const AS_INT: u32 = 6;
    pub const ATTRIBUTES: u32 = 7;
}

/// `HistogramDataPoint`.
pub mod histogram_point {
    pub const ATTRIBUTES: u32 = 9;
}

/// `ExponentialHistogramDataPoint`.
pub mod exponential_histogram_point {
    pub const ATTRIBUTES: u32 = 1;
}

/// `SummaryDataPoint`.
pub mod summary_point {
    pub const ATTRIBUTES: u32 = 7;
}

/// `LogRecord`.
pub mod log_record {
    pub const TIME: u32 = 1;
    pub const SEVERITY_NUMBER: u32 = 2;
    pub const SEVERITY_TEXT: u32 = 3;
    pub const BODY: u32 = 5;
    pub const ATTRIBUTES: u32 = 6;
    pub const TRACE_ID: u32 = 9;
    pub const SPAN_ID: u32 = 10;
    pub const OBSERVED_TIME: u32 = 11;
    pub const EVENT_NAME: u32 = 12;
}
