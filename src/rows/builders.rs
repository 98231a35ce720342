//! Arrow builders as the record tables use them: id columns in hex, the columns every record
//! table shares, and builders renewed at the size they held (see [`FinishSized`]).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, GenericByteArray, GenericByteBuilder, MapBuilder,
    PrimitiveBuilder, StringArray, StringBuilder, TimestampNanosecondBuilder,
};
use datafusion::arrow::datatypes::{ArrowPrimitiveType, ByteArrayType};
use datafusion::arrow::error::ArrowError;

use super::attributes::*;
use super::builder::*;
use super::*;
use crate::otlp::wire::codec::{AnyValueRef, Malformed};

/// The two lowercase hex digits of each byte value.
pub(super) const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [DIGITS[byte >> 4], DIGITS[byte & 0x0f]];
        byte += 1;
    }
    pairs
};

/// The lowercase hex digits of up to 32 bytes, one table lookup a byte rather than shifting
/// and masking each byte for its two digits (`cargo bench --bench analytics decode_to_arrow_rows`).
pub(super) fn hex_digits<'b>(bytes: &[u8], buffer: &'b mut [u8; 64]) -> &'b [u8] {
    for (pair, byte) in buffer.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(*byte)]);
    }
    &buffer[..bytes.len().min(32) * 2]
}

/// Lowercase hex, as OTLP/JSON writes ids, 32 bytes of input at a time.
pub(super) fn write_hex(out: &mut impl std::fmt::Write, bytes: &[u8]) -> std::fmt::Result {
    let mut buffer = [0u8; 64];
    for chunk in bytes.chunks(32) {
        let digits = hex_digits(chunk, &mut buffer);
        // Hex digits are ASCII.
        out.write_str(std::str::from_utf8(digits).map_err(|_| std::fmt::Error)?)?;
    }
    Ok(())
}

/// A column of ids in lowercase hex. The digits go in as bytes and the column is checked as
/// UTF-8 once a batch rather than each id on its own: ids are written up to three times a
/// span (`cargo bench --bench analytics decode_to_arrow_rows`).
pub(super) struct IdColumn(BinaryBuilder);

impl IdColumn {
    pub(super) fn new() -> IdColumn {
        IdColumn(BinaryBuilder::new())
    }

    /// Appends an id; an empty id is null.
    pub(super) fn append(&mut self, id: &[u8]) {
        use std::io::Write;
        if id.is_empty() {
            self.0.append_null();
            return;
        }
        let mut buffer = [0u8; 64];
        for chunk in id.chunks(32) {
            // Writing into a binary builder cannot fail.
            let _ = self.0.write_all(hex_digits(chunk, &mut buffer));
        }
        self.0.append_value(b"");
    }

    /// The column, as text; the builder left in its place has room for a whole batch (see
    /// `FinishSized`).
    pub(super) fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        Ok(Arc::new(StringArray::try_from_binary(finish_bytes_sized(&mut self.0))?))
    }
}

/// The text of a field whose column is built; empty otherwise, unchecked.
pub(super) fn utf8_if(kept: bool, bytes: &[u8], field: u32) -> Result<&str, Malformed> {
    match kept {
        true => std::str::from_utf8(bytes).map_err(|_| Malformed::Utf8 { field }),
        false => Ok(""),
    }
}

pub(super) fn append_non_empty(builder: &mut StringBuilder, text: &str) {
    builder.append_option((!text.is_empty()).then_some(text));
}

/// Finishing a builder into a column leaves in its place one with room for a whole batch
/// (`CHUNK_ROWS`) at the sizes per row it just held: consecutive batches of a stream are
/// alike, and a builder that grows by doubling copies its column several times over while it
/// fills (`cargo bench --bench analytics decode_to_arrow_rows`). Only a table's first batch grows.
pub(super) trait FinishSized {
    fn finish_sized(&mut self) -> ArrayRef;
}

/// `held` items of `rows` rows scaled to a whole batch.
pub(super) fn per_batch(held: usize, rows: usize) -> usize {
    held.div_ceil(rows.max(1)) * CHUNK_ROWS
}

/// Finishes a text or binary builder, leaving one sized for a whole batch in its place.
pub(super) fn finish_bytes_sized<T: ByteArrayType>(builder: &mut GenericByteBuilder<T>) -> GenericByteArray<T> {
    let bytes = per_batch(builder.values_slice().len(), builder.len());
    std::mem::replace(builder, GenericByteBuilder::with_capacity(CHUNK_ROWS, bytes)).finish()
}

impl FinishSized for StringBuilder {
    fn finish_sized(&mut self) -> ArrayRef {
        Arc::new(finish_bytes_sized(self))
    }
}

impl<T: ArrowPrimitiveType> FinishSized for PrimitiveBuilder<T> {
    fn finish_sized(&mut self) -> ArrayRef {
        let column = self.finish();
        *self = PrimitiveBuilder::with_capacity(CHUNK_ROWS).with_data_type(column.data_type().clone());
        Arc::new(column)
    }
}

impl FinishSized for BooleanBuilder {
    fn finish_sized(&mut self) -> ArrayRef {
        Arc::new(std::mem::replace(self, BooleanBuilder::with_capacity(CHUNK_ROWS)).finish())
    }
}

impl FinishSized for MapBuilder<StringBuilder, StringBuilder> {
    fn finish_sized(&mut self) -> ArrayRef {
        let rows = self.len();
        let sized = |text: &StringBuilder| {
            let entries = per_batch(text.len(), rows);
            StringBuilder::with_capacity(entries, per_batch(text.values_slice().len(), rows))
        };
        let (keys, values) = (sized(self.keys()), sized(self.values()));
        let next = MapBuilder::with_capacity(None, keys, values, CHUNK_ROWS);
        Arc::new(std::mem::replace(self, next).finish())
    }
}

/// One column of a record table: its name in the table's schema, whether windows build it
/// now, and its builder. Appending to a column that is not built does nothing.
pub(super) struct Column<B> {
    name: &'static str,
    kept: bool,
    pub(super) builder: B,
}

/// A finished column with its name in the table's schema.
pub(super) type Named = (&'static str, ArrayRef);

impl<B> Column<B> {
    pub(super) fn new(name: &'static str, builder: B) -> Column<B> {
        Column {
            name,
            kept: true,
            builder,
        }
    }

    /// Builds the column or not, as `kept` says for `table`; between batches only.
    pub(super) fn keep(&mut self, kept: KeptColumns, table: usize) {
        self.kept = kept.keeps(table, self.name);
    }

    pub(super) fn is_kept(&self) -> bool {
        self.kept
    }

    #[inline(always)]
    pub(super) fn append(&mut self, append: impl FnOnce(&mut B)) {
        if self.kept {
            append(&mut self.builder);
        }
    }
}

impl<B: FinishSized> Column<B> {
    pub(super) fn finish(&mut self) -> Named {
        (self.name, self.builder.finish_sized())
    }
}

impl Column<IdColumn> {
    pub(super) fn finish_ids(&mut self) -> Result<Named, ArrowError> {
        Ok((self.name, self.builder.finish()?))
    }
}

pub(super) fn text_column(name: &'static str) -> Column<StringBuilder> {
    Column::new(name, StringBuilder::new())
}

pub(super) fn time_column(name: &'static str) -> Column<TimestampNanosecondBuilder> {
    Column::new(name, TimestampNanosecondBuilder::new().with_timezone("UTC"))
}

/// The columns every record table has: who emitted the record, the integration it touches,
/// and its other attributes.
pub(super) struct ContextColumns {
    service_name: Column<StringBuilder>,
    agent: Column<StringBuilder>,
    layer: Column<StringBuilder>,
    integration_id: Column<StringBuilder>,
    integration_name: Column<StringBuilder>,
    integration_category: Column<StringBuilder>,
    integration_kind: Column<StringBuilder>,
    integration_connection: Column<StringBuilder>,
    integration_registered: Column<BooleanBuilder>,
    integration_target: Column<StringBuilder>,
    attributes: Column<MapBuilder<StringBuilder, StringBuilder>>,
}

impl ContextColumns {
    pub(super) fn new() -> ContextColumns {
        ContextColumns {
            service_name: text_column("service_name"),
            agent: text_column("agent"),
            layer: text_column("layer"),
            integration_id: text_column("integration_id"),
            integration_name: text_column("integration_name"),
            integration_category: text_column("integration_category"),
            integration_kind: text_column("integration_kind"),
            integration_connection: text_column("integration_connection"),
            integration_registered: Column::new("integration_registered", BooleanBuilder::new()),
            integration_target: text_column("integration_target"),
            attributes: Column::new(
                "attributes",
                MapBuilder::new(None, StringBuilder::new(), StringBuilder::new()),
            ),
        }
    }

    /// Builds only the columns of `table` that `kept` keeps; between batches only.
    pub(super) fn keep(&mut self, kept: KeptColumns, table: usize) {
        self.service_name.keep(kept, table);
        self.agent.keep(kept, table);
        self.layer.keep(kept, table);
        self.integration_id.keep(kept, table);
        self.integration_name.keep(kept, table);
        self.integration_category.keep(kept, table);
        self.integration_kind.keep(kept, table);
        self.integration_connection.keep(kept, table);
        self.integration_registered.keep(kept, table);
        self.integration_target.keep(kept, table);
        self.attributes.keep(kept, table);
    }

    /// Whether the `attributes` map is built: the attributes not lifted are then kept.
    pub(super) fn keeps_attributes(&self) -> bool {
        self.attributes.is_kept()
    }

    /// Appends the context of one record and its attributes that are not lifted.
    pub(super) fn append(&mut self, emitter: &Emitter<'_>, attributes: &RecordAttributes<'_>) {
        self.service_name.append(|b| b.append_option(emitter.service));
        self.agent.append(|b| b.append_option(emitter.agent));
        self.layer.append(|b| b.append_option(emitter.layer));
        let text = |lifted| move |b: &mut StringBuilder| append_text(b, attributes.get(lifted));
        self.integration_id.append(text(Lifted::IntegrationId));
        self.integration_name.append(text(Lifted::IntegrationName));
        self.integration_category.append(text(Lifted::IntegrationCategory));
        self.integration_kind.append(text(Lifted::IntegrationKind));
        self.integration_connection.append(text(Lifted::IntegrationConnection));
        self.integration_target.append(text(Lifted::IntegrationTarget));
        let registered = attributes
            .get(Lifted::IntegrationRegistered)
            .and_then(AnyValueRef::read)
            .and_then(|v| match v {
                AnyValueRef::Bool(b) => Some(b),
                _ => None,
            });
        self.integration_registered.append(|b| b.append_option(registered));
        self.attributes.append(|map| {
            for attribute in &attributes.others {
                map.keys().append_value(String::from_utf8_lossy(attribute.key));
                append_text(map.values(), Some(attribute.value));
            }
            // Appending a map entry only fails on mismatched key/value lengths, which the loop above keeps equal.
            let _ = map.append(true);
        });
    }

    /// The finished columns.
    pub(super) fn finish(&mut self) -> [Named; 11] {
        [
            self.service_name.finish(),
            self.agent.finish(),
            self.layer.finish(),
            self.integration_id.finish(),
            self.integration_name.finish(),
            self.integration_category.finish(),
            self.integration_kind.finish(),
            self.integration_connection.finish(),
            self.integration_registered.finish(),
            self.integration_target.finish(),
            self.attributes.finish(),
        ]
    }
}
