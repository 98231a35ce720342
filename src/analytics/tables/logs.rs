//! Rows of the `logs` table.

use datafusion::arrow::array::{ArrayRef, Int64Builder, StringBuilder, TimestampNanosecondBuilder};
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

pub(super) struct LogColumns {
    pub(super) context: ContextColumns,
    pub(super) time: TimestampNanosecondBuilder,
    pub(super) severity: Int64Builder,
    /// `severity_text`, `body`, `event_name`.
    pub(super) strings: Vec<StringBuilder>,
    /// `trace_id`, `span_id`.
    pub(super) ids: [IdColumn; 2],
    /// Whether each of the columns above is built, in `LOG_COLUMNS`' order.
    pub(super) kept: [bool; 7],
}

pub(super) const LOG_COLUMNS: [&str; 7] = [
    "time",
    "severity_number",
    "severity_text",
    "body",
    "event_name",
    "trace_id",
    "span_id",
];

impl LogColumns {
    pub(super) fn new() -> LogColumns {
        LogColumns {
            context: ContextColumns::new(),
            time: time_builder(),
            severity: Int64Builder::new(),
            strings: (0..3).map(|_| StringBuilder::new()).collect(),
            ids: [IdColumn::new(), IdColumn::new()],
            kept: [true; 7],
        }
    }

    pub(super) fn keep(&mut self, kept: KeptColumns) {
        self.context.keep(kept, 2);
        self.kept = kept.flags(2, LOG_COLUMNS);
    }

    /// Appends a log record, except fleetpipe's own anomaly records; returns how many.
    pub(super) fn append<'a>(
        &mut self,
        emitter: &Emitter<'_>,
        record: &'a [u8],
        attributes: &mut RecordAttributes<'a>,
    ) -> Result<usize, Malformed> {
        attributes.clear();
        let record = LogRow::read(record, attributes)?;
        if record.event_name == crate::analytics::findings::ANOMALY_EVENT {
            return Ok(0);
        }
        self.context.append(emitter, attributes);
        let time = if record.time > 0 {
            record.time
        } else {
            record.observed_time
        };
        let [
            kept_time,
            kept_severity,
            kept_text,
            kept_body,
            kept_event,
            kept_trace,
            kept_span,
        ] = self.kept;
        append_if(kept_time, &mut self.time, |b| b.append_value(time as i64));
        append_if(kept_severity, &mut self.severity, |b| {
            b.append_value(record.severity_number as i64)
        });
        let [text, body, event] = &mut self.strings[..] else {
            unreachable!("three string columns")
        };
        let [trace_id, span_id] = &mut self.ids;
        append_if(kept_text, text, |b| append_non_empty(b, record.severity_text));
        append_if(kept_body, body, |b| append_text(b, record.body));
        append_if(kept_event, event, |b| append_non_empty(b, record.event_name));
        append_if(kept_trace, trace_id, |b| b.append(record.trace_id));
        append_if(kept_span, span_id, |b| b.append(record.span_id));
        Ok(1)
    }

    pub(super) fn finish(&mut self) -> Result<Vec<ArrayRef>, ArrowError> {
        let mut columns = vec![self.time.finish_sized(), self.severity.finish_sized()];
        columns.extend(self.strings.iter_mut().map(FinishSized::finish_sized));
        columns.extend(
            self.ids
                .iter_mut()
                .map(IdColumn::finish)
                .collect::<Result<Vec<_>, _>>()?,
        );
        columns.extend(self.context.finish_context());
        columns.push(self.context.finish_attributes());
        Ok(columns)
    }
}
