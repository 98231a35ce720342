//! Rows of the `spans` table.

use datafusion::arrow::array::{ArrayRef, Float64Builder, Int64Builder, StringBuilder, TimestampNanosecondBuilder};
use datafusion::arrow::error::ArrowError;

use super::attributes::*;
use super::builders::*;
use super::*;
use crate::otlp::fields;
use crate::otlp::wire::codec::{Malformed, fields};

/// A span's fields that have columns; read whole before anything is appended, so that a
/// malformed span leaves no partial row.
#[derive(Default)]
pub(super) struct SpanRow<'a> {
    pub(super) trace_id: &'a [u8],
    pub(super) span_id: &'a [u8],
    pub(super) parent_span_id: &'a [u8],
    /// Text checked as UTF-8 only when its column is built (see `SpanColumns::append`).
    pub(super) name: &'a [u8],
    pub(super) kind: u64,
    pub(super) start: u64,
    pub(super) end: u64,
    pub(super) status_message: &'a [u8],
    pub(super) status_code: u64,
}

impl<'a> SpanRow<'a> {
    pub(super) fn read(span: &'a [u8], attributes: &mut RecordAttributes<'a>) -> Result<SpanRow<'a>, Malformed> {
        let mut row = SpanRow::default();
        for f in fields(span) {
            let f = f?;
            match f.number {
                fields::span::TRACE_ID => row.trace_id = f.bytes()?,
                fields::span::SPAN_ID => row.span_id = f.bytes()?,
                fields::span::PARENT_SPAN_ID => row.parent_span_id = f.bytes()?,
                fields::span::NAME => row.name = f.bytes()?,
                fields::span::KIND => row.kind = f.varint()?,
                fields::span::START_TIME => row.start = f.fixed64()?,
                fields::span::END_TIME => row.end = f.fixed64()?,
                fields::span::ATTRIBUTES => attributes.push(&f, LIFTED_SLOTS)?,
                fields::span::STATUS => {
                    for s in fields(f.bytes()?) {
                        let s = s?;
                        match s.number {
                            fields::status::MESSAGE => row.status_message = s.bytes()?,
                            fields::status::CODE => row.status_code = s.varint()?,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(row)
    }
}

/// A span's trace id, found without reading the rest of the span (it is the first field as
/// every SDK writes it); empty when absent or malformed, which `SpanRow::read` reports.
pub(super) fn span_trace_id(span: &[u8]) -> &[u8] {
    fields(span)
        .map_while(Result::ok)
        .find(|f| f.number == fields::span::TRACE_ID)
        .and_then(|f| f.bytes().ok())
        .unwrap_or_default()
}

pub(super) struct SpanColumns {
    pub(super) context: ContextColumns,
    /// `trace_id`, `span_id`, `parent_span_id`.
    pub(super) ids: [IdColumn; 3],
    /// `name`, `kind`, `status_code`, `status_message`.
    pub(super) strings: Vec<StringBuilder>,
    pub(super) times: [TimestampNanosecondBuilder; 2],
    pub(super) duration: Float64Builder,
    pub(super) genai_strings: Vec<StringBuilder>,
    pub(super) ints: Vec<Int64Builder>,
    /// Whether `ids` and `strings`, `times` and `duration`, `genai_strings`, `ints` are built.
    pub(super) kept_strings: [bool; 7],
    pub(super) kept_times: [bool; 3],
    pub(super) kept_genai: [bool; 7],
    pub(super) kept_ints: [bool; 4],
}

/// The columns of `SpanColumns::ids` and `strings`, `genai_strings` and `ints`, in order.
pub(super) const SPAN_STRINGS: [&str; 7] = [
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "status_code",
    "status_message",
];
pub(super) const SPAN_GENAI_STRINGS: [&str; 7] = [
    "operation",
    "tool_name",
    "model",
    "provider",
    "mcp_method",
    "server_address",
    "error_type",
];
pub(super) const SPAN_INTS: [&str; 4] = ["input_tokens", "output_tokens", "http_status_code", "grpc_status_code"];

impl SpanColumns {
    pub(super) fn new() -> SpanColumns {
        SpanColumns {
            context: ContextColumns::new(),
            ids: [IdColumn::new(), IdColumn::new(), IdColumn::new()],
            strings: (0..4).map(|_| StringBuilder::new()).collect(),
            times: [time_builder(), time_builder()],
            duration: Float64Builder::new(),
            genai_strings: (0..7).map(|_| StringBuilder::new()).collect(),
            ints: (0..4).map(|_| Int64Builder::new()).collect(),
            kept_strings: [true; 7],
            kept_times: [true; 3],
            kept_genai: [true; 7],
            kept_ints: [true; 4],
        }
    }

    pub(super) fn keep(&mut self, kept: KeptColumns) {
        self.context.keep(kept, 0);
        self.kept_strings = kept.flags(0, SPAN_STRINGS);
        self.kept_times = kept.flags(0, ["start_time", "end_time", "duration_ms"]);
        self.kept_genai = kept.flags(0, SPAN_GENAI_STRINGS);
        self.kept_ints = kept.flags(0, SPAN_INTS);
    }

    pub(super) fn append<'a>(
        &mut self,
        emitter: &Emitter<'_>,
        span: &'a [u8],
        attributes: &mut RecordAttributes<'a>,
    ) -> Result<usize, Malformed> {
        attributes.clear();
        let span = SpanRow::read(span, attributes)?;
        let [
            kept_trace,
            kept_span,
            kept_parent,
            kept_name,
            kept_kind,
            kept_status,
            kept_message,
        ] = self.kept_strings;
        // Checked before anything is appended, so that a malformed span leaves no partial row;
        // a column not built needs no check (it was 3 % of the conversion).
        let name = utf8_if(kept_name, span.name, fields::span::NAME)?;
        let status_message = utf8_if(kept_message, span.status_message, fields::status::MESSAGE)?;
        self.context.append(emitter, attributes);
        let kind = match span.kind {
            1 => "internal",
            2 => "server",
            3 => "client",
            4 => "producer",
            5 => "consumer",
            _ => "unspecified",
        };
        let status_code = match span.status_code {
            1 => "ok",
            2 => "error",
            _ => "unset",
        };
        let [trace_id, span_id, parent] = &mut self.ids;
        let [name_column, kind_column, status_column, message] = &mut self.strings[..] else {
            unreachable!("four string columns")
        };
        append_if(kept_trace, trace_id, |b| b.append(span.trace_id));
        append_if(kept_span, span_id, |b| b.append(span.span_id));
        append_if(kept_parent, parent, |b| b.append(span.parent_span_id));
        append_if(kept_name, name_column, |b| b.append_value(name));
        append_if(kept_kind, kind_column, |b| b.append_value(kind));
        append_if(kept_status, status_column, |b| b.append_value(status_code));
        append_if(kept_message, message, |b| append_non_empty(b, status_message));
        let [kept_start, kept_end, kept_duration] = self.kept_times;
        append_if(kept_start, &mut self.times[0], |b| b.append_value(span.start as i64));
        append_if(kept_end, &mut self.times[1], |b| b.append_value(span.end as i64));
        let duration_ms = span.end.saturating_sub(span.start) as f64 / 1e6;
        append_if(kept_duration, &mut self.duration, |b| b.append_value(duration_ms));
        // Slots 7..14 are the GenAI/MCP strings, 14..18 the integers (see `lifted_slot`).
        let lifted = &attributes.lifted[CONTEXT_SLOTS..];
        for ((builder, value), kept) in self.genai_strings.iter_mut().zip(&lifted[..7]).zip(self.kept_genai) {
            append_if(kept, builder, |b| append_text(b, *value));
        }
        for ((builder, value), kept) in self.ints.iter_mut().zip(&lifted[7..]).zip(self.kept_ints) {
            append_if(kept, builder, |b| append_int(b, *value));
        }
        Ok(1)
    }

    /// The columns of a batch, in the schema's order.
    pub(super) fn finish(&mut self) -> Result<Vec<ArrayRef>, ArrowError> {
        let mut columns = self
            .ids
            .iter_mut()
            .map(IdColumn::finish)
            .collect::<Result<Vec<_>, _>>()?;
        columns.extend(self.strings[..2].iter_mut().map(FinishSized::finish_sized));
        for time in &mut self.times {
            columns.push(time.finish_sized());
        }
        columns.push(self.duration.finish_sized());
        columns.extend(self.strings[2..].iter_mut().map(FinishSized::finish_sized));
        columns.extend(self.context.finish_context());
        let mut g = self.genai_strings.iter_mut().map(FinishSized::finish_sized);
        let mut i = self.ints.iter_mut().map(FinishSized::finish_sized);
        // operation, tool_name, model, provider, input_tokens, output_tokens, mcp_method,
        // server_address, error_type, http_status_code, grpc_status_code
        let ordered = [
            g.next(),
            g.next(),
            g.next(),
            g.next(),
            i.next(),
            i.next(),
            g.next(),
            g.next(),
            g.next(),
            i.next(),
            i.next(),
        ];
        columns.extend(ordered.into_iter().flatten());
        columns.push(self.context.finish_attributes());
        Ok(columns)
    }
}
