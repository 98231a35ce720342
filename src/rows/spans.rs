//! Rows of the `spans` table.

use datafusion::arrow::array::{Float64Builder, Int64Builder, StringBuilder, TimestampNanosecondBuilder};
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

/// The builders of the `spans` table.
pub(super) struct SpanColumns {
    context: ContextColumns,
    trace_id: Column<IdColumn>,
    span_id: Column<IdColumn>,
    parent_span_id: Column<IdColumn>,
    name: Column<StringBuilder>,
    kind: Column<StringBuilder>,
    start_time: Column<TimestampNanosecondBuilder>,
    end_time: Column<TimestampNanosecondBuilder>,
    duration_ms: Column<Float64Builder>,
    status_code: Column<StringBuilder>,
    status_message: Column<StringBuilder>,
    operation: Column<StringBuilder>,
    tool_name: Column<StringBuilder>,
    model: Column<StringBuilder>,
    provider: Column<StringBuilder>,
    input_tokens: Column<Int64Builder>,
    output_tokens: Column<Int64Builder>,
    mcp_method: Column<StringBuilder>,
    server_address: Column<StringBuilder>,
    error_type: Column<StringBuilder>,
    http_status_code: Column<Int64Builder>,
    grpc_status_code: Column<Int64Builder>,
    response_model: Column<StringBuilder>,
    cache_read_tokens: Column<Int64Builder>,
    cache_write_tokens: Column<Int64Builder>,
    reasoning_tokens: Column<Int64Builder>,
    conversation_id: Column<StringBuilder>,
    agent_id: Column<StringBuilder>,
    agent_name: Column<StringBuilder>,
    agent_version: Column<StringBuilder>,
    genai_spellings: Column<StringBuilder>,
}

/// The other GenAI spellings a span's keys show, comma-separated; `None` when only the current
/// conventions' (or no GenAI key at all).
fn spellings_text(bits: u8) -> Option<&'static str> {
    // Indexed by the bits: DEPRECATED 1, OPENINFERENCE 2, OPENLLMETRY 4.
    const NAMES: [&str; 8] = [
        "",
        "deprecated",
        "openinference",
        "deprecated,openinference",
        "openllmetry",
        "deprecated,openllmetry",
        "openinference,openllmetry",
        "deprecated,openinference,openllmetry",
    ];
    (bits != 0).then(|| NAMES[usize::from(bits & 7)])
}

fn int_column(name: &'static str) -> Column<Int64Builder> {
    Column::new(name, Int64Builder::new())
}

fn id_column(name: &'static str) -> Column<IdColumn> {
    Column::new(name, IdColumn::new())
}

impl SpanColumns {
    pub(super) fn new() -> SpanColumns {
        SpanColumns {
            context: ContextColumns::new(),
            trace_id: id_column("trace_id"),
            span_id: id_column("span_id"),
            parent_span_id: id_column("parent_span_id"),
            name: text_column("name"),
            kind: text_column("kind"),
            start_time: time_column("start_time"),
            end_time: time_column("end_time"),
            duration_ms: Column::new("duration_ms", Float64Builder::new()),
            status_code: text_column("status_code"),
            status_message: text_column("status_message"),
            operation: text_column("operation"),
            tool_name: text_column("tool_name"),
            model: text_column("model"),
            provider: text_column("provider"),
            input_tokens: int_column("input_tokens"),
            output_tokens: int_column("output_tokens"),
            mcp_method: text_column("mcp_method"),
            server_address: text_column("server_address"),
            error_type: text_column("error_type"),
            http_status_code: int_column("http_status_code"),
            grpc_status_code: int_column("grpc_status_code"),
            response_model: text_column("response_model"),
            cache_read_tokens: int_column("cache_read_tokens"),
            cache_write_tokens: int_column("cache_write_tokens"),
            reasoning_tokens: int_column("reasoning_tokens"),
            conversation_id: text_column("conversation_id"),
            agent_id: text_column("agent_id"),
            agent_name: text_column("agent_name"),
            agent_version: text_column("agent_version"),
            genai_spellings: text_column("genai_spellings"),
        }
    }

    pub(super) fn keep(&mut self, kept: KeptColumns) {
        const TABLE: usize = 0;
        self.context.keep(kept, TABLE);
        for ids in [&mut self.trace_id, &mut self.span_id, &mut self.parent_span_id] {
            ids.keep(kept, TABLE);
        }
        for text in [
            &mut self.name,
            &mut self.kind,
            &mut self.status_code,
            &mut self.status_message,
            &mut self.operation,
            &mut self.tool_name,
            &mut self.model,
            &mut self.provider,
            &mut self.mcp_method,
            &mut self.server_address,
            &mut self.error_type,
            &mut self.response_model,
            &mut self.conversation_id,
            &mut self.agent_id,
            &mut self.agent_name,
            &mut self.agent_version,
            &mut self.genai_spellings,
        ] {
            text.keep(kept, TABLE);
        }
        self.start_time.keep(kept, TABLE);
        self.end_time.keep(kept, TABLE);
        self.duration_ms.keep(kept, TABLE);
        for ints in [
            &mut self.input_tokens,
            &mut self.output_tokens,
            &mut self.http_status_code,
            &mut self.grpc_status_code,
            &mut self.cache_read_tokens,
            &mut self.cache_write_tokens,
            &mut self.reasoning_tokens,
        ] {
            ints.keep(kept, TABLE);
        }
    }

    pub(super) fn append<'a>(
        &mut self,
        emitter: &Emitter<'_>,
        span: &'a [u8],
        attributes: &mut RecordAttributes<'a>,
    ) -> Result<usize, Malformed> {
        attributes.clear();
        let span = SpanRow::read(span, attributes)?;
        // Checked before anything is appended, so that a malformed span leaves no partial row;
        // a column not built needs no check (`cargo bench --bench analytics decode_to_arrow_rows`).
        let name = utf8_if(self.name.is_kept(), span.name, fields::span::NAME)?;
        let status_message = utf8_if(
            self.status_message.is_kept(),
            span.status_message,
            fields::status::MESSAGE,
        )?;
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
        self.trace_id.append(|b| b.append(span.trace_id));
        self.span_id.append(|b| b.append(span.span_id));
        self.parent_span_id.append(|b| b.append(span.parent_span_id));
        self.name.append(|b| b.append_value(name));
        self.kind.append(|b| b.append_value(kind));
        self.status_code.append(|b| b.append_value(status_code));
        self.status_message.append(|b| append_non_empty(b, status_message));
        self.start_time.append(|b| b.append_value(span.start as i64));
        self.end_time.append(|b| b.append_value(span.end as i64));
        let duration_ms = span.end.saturating_sub(span.start) as f64 / 1e6;
        self.duration_ms.append(|b| b.append_value(duration_ms));
        let attributes = &*attributes;
        let text = |lifted| move |b: &mut StringBuilder| append_text(b, attributes.get(lifted));
        let int = |lifted| move |b: &mut Int64Builder| append_int(b, attributes.get(lifted));
        self.operation.append(text(Lifted::Operation));
        self.tool_name.append(text(Lifted::ToolName));
        self.model.append(text(Lifted::Model));
        self.provider.append(text(Lifted::Provider));
        self.mcp_method.append(text(Lifted::McpMethod));
        self.server_address.append(text(Lifted::ServerAddress));
        self.error_type.append(text(Lifted::ErrorType));
        self.input_tokens.append(int(Lifted::InputTokens));
        self.output_tokens.append(int(Lifted::OutputTokens));
        self.http_status_code.append(int(Lifted::HttpStatusCode));
        self.grpc_status_code.append(int(Lifted::GrpcStatusCode));
        self.response_model.append(text(Lifted::ResponseModel));
        self.cache_read_tokens.append(int(Lifted::CacheReadTokens));
        self.cache_write_tokens.append(int(Lifted::CacheWriteTokens));
        self.reasoning_tokens.append(int(Lifted::ReasoningTokens));
        self.conversation_id.append(text(Lifted::ConversationId));
        self.agent_id.append(text(Lifted::AgentId));
        self.agent_name.append(text(Lifted::AgentName));
        self.agent_version.append(text(Lifted::AgentVersion));
        let spellings = spellings_text(attributes.spellings);
        self.genai_spellings.append(|b| b.append_option(spellings));
        Ok(1)
    }

    /// The finished columns.
    pub(super) fn finish(&mut self) -> Result<Vec<Named>, ArrowError> {
        let mut columns = vec![
            self.trace_id.finish_ids()?,
            self.span_id.finish_ids()?,
            self.parent_span_id.finish_ids()?,
            self.name.finish(),
            self.kind.finish(),
            self.start_time.finish(),
            self.end_time.finish(),
            self.duration_ms.finish(),
            self.status_code.finish(),
            self.status_message.finish(),
            self.operation.finish(),
            self.tool_name.finish(),
            self.model.finish(),
            self.provider.finish(),
            self.input_tokens.finish(),
            self.output_tokens.finish(),
            self.mcp_method.finish(),
            self.server_address.finish(),
            self.error_type.finish(),
            self.http_status_code.finish(),
            self.grpc_status_code.finish(),
            self.response_model.finish(),
            self.cache_read_tokens.finish(),
            self.cache_write_tokens.finish(),
            self.reasoning_tokens.finish(),
            self.conversation_id.finish(),
            self.agent_id.finish(),
            self.agent_name.finish(),
            self.agent_version.finish(),
            self.genai_spellings.finish(),
        ];
        columns.extend(self.context.finish());
        Ok(columns)
    }
}

#[cfg(test)]
mod spelling_tests {
    use super::*;

    /// Guarantees: each spelling bit reads as its name, together comma-separated.
    #[test]
    fn spellings_read_by_name() {
        assert_eq!(spellings_text(0), None);
        assert_eq!(spellings_text(DEPRECATED), Some("deprecated"));
        assert_eq!(spellings_text(OPENINFERENCE), Some("openinference"));
        assert_eq!(spellings_text(OPENLLMETRY), Some("openllmetry"));
        assert_eq!(spellings_text(DEPRECATED | OPENLLMETRY), Some("deprecated,openllmetry"));
    }
}
