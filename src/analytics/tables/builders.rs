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
use super::rows::*;
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

/// The lowercase hex digits of up to 32 bytes, one table lookup a byte (shifting and masking
/// each byte for its two digits made an id cost a third more).
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
/// UTF-8 once a batch: checking each id on its own was a fifth of writing it, and ids are
/// written up to three times a span.
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

/// Appends to the builder of a column the window builds; nothing otherwise.
pub(super) fn append_if<B>(kept: bool, builder: &mut B, append: impl FnOnce(&mut B)) {
    if kept {
        append(builder);
    }
}

pub(super) fn append_non_empty(builder: &mut StringBuilder, text: &str) {
    builder.append_option((!text.is_empty()).then_some(text));
}

/// Finishing a builder into a column leaves in its place one with room for a whole batch
/// (`CHUNK_ROWS`) at the sizes per row it just held: consecutive batches of a stream are
/// alike, and a builder that grows by doubling copies its column several times over while it
/// fills (7% of the conversion). Only a table's first batch grows.
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

/// Builders shared by the three record tables.
pub(super) struct ContextColumns {
    pub(super) strings: Vec<StringBuilder>,
    pub(super) registered: BooleanBuilder,
    pub(super) attributes: MapBuilder<StringBuilder, StringBuilder>,
    /// Whether `strings`, `registered` and `attributes` are built.
    pub(super) kept_strings: [bool; 9],
    pub(super) kept_registered: bool,
    pub(super) kept_attributes: bool,
}

/// The columns of `ContextColumns::strings`, in order.
pub(super) const CONTEXT_STRINGS: [&str; 9] = [
    "service_name",
    "agent",
    "layer",
    "integration_id",
    "integration_name",
    "integration_category",
    "integration_kind",
    "integration_connection",
    "integration_target",
];

pub(super) fn time_builder() -> TimestampNanosecondBuilder {
    TimestampNanosecondBuilder::new().with_timezone("UTC")
}

impl ContextColumns {
    pub(super) fn new() -> ContextColumns {
        ContextColumns {
            strings: (0..9).map(|_| StringBuilder::new()).collect(),
            registered: BooleanBuilder::new(),
            attributes: MapBuilder::new(None, StringBuilder::new(), StringBuilder::new()),
            kept_strings: [true; 9],
            kept_registered: true,
            kept_attributes: true,
        }
    }

    /// Builds only the columns of `table` that `kept` keeps; between batches only.
    pub(super) fn keep(&mut self, kept: KeptColumns, table: usize) {
        self.kept_strings = kept.flags(table, CONTEXT_STRINGS);
        [self.kept_registered, self.kept_attributes] = kept.flags(table, ["integration_registered", "attributes"]);
    }

    /// Appends the context of one record and its attributes that are not lifted.
    pub(super) fn append(&mut self, emitter: &Emitter<'_>, attributes: &RecordAttributes<'_>) {
        let lifted = &attributes.lifted;
        // The emitter's three, then the integration's, lifted in the same order (see `lifted_slot`).
        let emitted = [emitter.service, emitter.agent, emitter.layer];
        for ((builder, value), kept) in self.strings.iter_mut().zip(emitted).zip(self.kept_strings) {
            append_if(kept, builder, |b| b.append_option(value));
        }
        let integration = [lifted[0], lifted[1], lifted[2], lifted[3], lifted[4], lifted[6]];
        let kept_integration = &self.kept_strings[3..];
        for ((builder, value), kept) in self.strings[3..].iter_mut().zip(integration).zip(kept_integration) {
            append_if(*kept, builder, |b| append_text(b, value));
        }
        let registered = lifted[5].and_then(AnyValueRef::read).and_then(|v| match v {
            AnyValueRef::Bool(b) => Some(b),
            _ => None,
        });
        append_if(self.kept_registered, &mut self.registered, |b| {
            b.append_option(registered)
        });
        if self.kept_attributes {
            for attribute in &attributes.others {
                self.attributes
                    .keys()
                    .append_value(String::from_utf8_lossy(attribute.key));
                append_text(self.attributes.values(), Some(attribute.value));
            }
            // Appending a map entry only fails on mismatched key/value lengths, which the loop above keeps equal.
            let _ = self.attributes.append(true);
        }
    }

    pub(super) fn finish_context(&mut self) -> Vec<ArrayRef> {
        let mut columns: Vec<ArrayRef> = self.strings[..8].iter_mut().map(FinishSized::finish_sized).collect();
        columns.push(self.registered.finish_sized());
        columns.push(self.strings[8].finish_sized());
        columns
    }

    pub(super) fn finish_attributes(&mut self) -> ArrayRef {
        self.attributes.finish_sized()
    }
}
