//! Rows of the `logs` table.

use datafusion::arrow::array::{Int64Builder, StringBuilder, TimestampNanosecondBuilder};
use datafusion::arrow::error::ArrowError;

use super::attributes::*;
use super::builders::*;
use super::*;
use crate::otlp::fields;
use crate::otlp::wire::codec::{Malformed, fields};

/// A log record's fields that have columns.
#[derive(Default)]
pub(super) struct LogRow<'a> {
    pub(super) time: u64,
    pub(super) observed_time: u64,
    pub(super) severity_number: u64,
    pub(super) severity_text: &'a str,
    pub(super) body: Option<&'a [u8]>,
    pub(super) event_name: &'a str,
    pub(super) trace_id: &'a [u8],
    pub(super) span_id: &'a [u8],
}

impl<'a> LogRow<'a> {
    pub(super) fn read(record: &'a [u8], attributes: &mut RecordAttributes<'a>) -> Result<LogRow<'a>, Malformed> {
        let mut row = LogRow::default();
        for f in fields(record) {
            let f = f?;
            match f.number {
                fields::log_record::TIME => row.time = f.fixed64()?,
                fields::log_record::OBSERVED_TIME => row.observed_time = f.fixed64()?,
                fields::log_record::SEVERITY_NUMBER => row.severity_number = f.varint()?,
                fields::log_record::SEVERITY_TEXT => row.severity_text = f.str()?,
                fields::log_record::BODY => row.body = Some(f.bytes()?),
                fields::log_record::ATTRIBUTES => attributes.push(&f, CONTEXT_SLOTS)?,
                fields::log_record::TRACE_ID => row.trace_id = f.bytes()?,
                fields::log_record::SPAN_ID => row.span_id = f.bytes()?,
                fields::log_record::EVENT_NAME => row.event_name = f.str()?,
                _ => {}
            }
        }
        Ok(row)
    }
}

/// The builders of the `logs` table.
pub(super) struct LogColumns {
    context: ContextColumns,
    time: Column<TimestampNanosecondBuilder>,
    severity_number: Column<Int64Builder>,
    severity_text: Column<StringBuilder>,
    body: Column<StringBuilder>,
    event_name: Column<StringBuilder>,
    trace_id: Column<IdColumn>,
    span_id: Column<IdColumn>,
}

impl LogColumns {
    pub(super) fn new() -> LogColumns {
        LogColumns {
            context: ContextColumns::new(),
            time: time_column("time"),
            severity_number: Column::new("severity_number", Int64Builder::new()),
            severity_text: text_column("severity_text"),
            body: text_column("body"),
            event_name: text_column("event_name"),
            trace_id: Column::new("trace_id", IdColumn::new()),
            span_id: Column::new("span_id", IdColumn::new()),
        }
    }

    pub(super) fn keep(&mut self, kept: KeptColumns) {
        const TABLE: usize = 2;
        self.context.keep(kept, TABLE);
        self.time.keep(kept, TABLE);
        self.severity_number.keep(kept, TABLE);
        for text in [&mut self.severity_text, &mut self.body, &mut self.event_name] {
            text.keep(kept, TABLE);
        }
        self.trace_id.keep(kept, TABLE);
        self.span_id.keep(kept, TABLE);
    }

    /// Appends a log record, except fleetpipe's own anomaly records unless `with_findings`;
    /// returns how many.
    pub(super) fn append<'a>(
        &mut self,
        emitter: &Emitter<'_>,
        record: &'a [u8],
        attributes: &mut RecordAttributes<'a>,
        with_findings: bool,
    ) -> Result<usize, Malformed> {
        attributes.clear();
        let record = LogRow::read(record, attributes)?;
        if !with_findings && record.event_name == crate::otlp::semconv::ANOMALY_EVENT {
            return Ok(0);
        }
        self.context.append(emitter, attributes);
        let time = if record.time > 0 {
            record.time
        } else {
            record.observed_time
        };
        self.time.append(|b| b.append_value(time as i64));
        self.severity_number
            .append(|b| b.append_value(record.severity_number as i64));
        self.severity_text.append(|b| append_non_empty(b, record.severity_text));
        self.body.append(|b| append_text(b, record.body));
        self.event_name.append(|b| append_non_empty(b, record.event_name));
        self.trace_id.append(|b| b.append(record.trace_id));
        self.span_id.append(|b| b.append(record.span_id));
        Ok(1)
    }

    /// The finished columns.
    pub(super) fn finish(&mut self) -> Result<Vec<Named>, ArrowError> {
        let mut columns = vec![
            self.time.finish(),
            self.severity_number.finish(),
            self.severity_text.finish(),
            self.body.finish(),
            self.event_name.finish(),
            self.trace_id.finish_ids()?,
            self.span_id.finish_ids()?,
        ];
        columns.extend(self.context.finish());
        Ok(columns)
    }
}
