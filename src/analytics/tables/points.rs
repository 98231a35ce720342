//! Rows of the `metric_points` table.

use datafusion::arrow::array::{ArrayRef, Float64Builder, Int64Builder, StringBuilder, TimestampNanosecondBuilder};

use super::attributes::*;
use super::builders::*;
use super::*;
use crate::otlp::fields;
use crate::otlp::semconv::TagNames;
use crate::otlp::wire::codec::{Malformed, fields};

/// The kinds of metric data, by their field number in `Metric`, and the field number of
/// attributes in their data points.
pub(super) const METRIC_DATA: [(u32, &str, u32); 5] = [
    (fields::metric::GAUGE, "gauge", fields::number_point::ATTRIBUTES),
    (fields::metric::SUM, "sum", fields::number_point::ATTRIBUTES),
    (
        fields::metric::HISTOGRAM,
        "histogram",
        fields::histogram_point::ATTRIBUTES,
    ),
    (
        fields::metric::EXPONENTIAL_HISTOGRAM,
        "exponential_histogram",
        fields::exponential_histogram_point::ATTRIBUTES,
    ),
    (fields::metric::SUMMARY, "summary", fields::summary_point::ATTRIBUTES),
];

/// One metric data point, whatever its type.
#[derive(Default)]
pub(super) struct PointRow {
    pub(super) time: u64,
    /// Gauge and sum values.
    pub(super) value: Option<f64>,
    /// Histogram and summary counts and sums.
    pub(super) count: Option<i64>,
    pub(super) sum: Option<f64>,
}

impl PointRow {
    pub(super) fn read<'a>(
        point: &'a [u8],
        kind: &str,
        attributes_field: u32,
        attributes: &mut RecordAttributes<'a>,
    ) -> Result<PointRow, Malformed> {
        let number = matches!(kind, "gauge" | "sum");
        let mut row = PointRow::default();
        for f in fields(point) {
            let f = f?;
            match f.number {
                n if n == attributes_field => attributes.push(&f, CONTEXT_SLOTS)?,
                fields::data_point::TIME => row.time = f.fixed64()?,
                fields::number_point::AS_DOUBLE if number => row.value = Some(f64::from_bits(f.fixed64()?)),
                fields::number_point::AS_INT if number => row.value = Some(f.fixed64()? as i64 as f64),
                fields::data_point::COUNT if !number => row.count = Some(f.fixed64()? as i64),
                fields::data_point::SUM if !number => row.sum = Some(f64::from_bits(f.fixed64()?)),
                _ => {}
            }
        }
        // A summary's sum is not optional: absent on the wire means zero.
        if kind == "summary" {
            row.sum = row.sum.or(Some(0.0));
        }
        Ok(row)
    }
}

pub(super) struct PointColumns {
    pub(super) context: ContextColumns,
    pub(super) time: TimestampNanosecondBuilder,
    pub(super) strings: Vec<StringBuilder>,
    pub(super) value: Float64Builder,
    pub(super) count: Int64Builder,
    pub(super) sum: Float64Builder,
    /// Whether each of the columns above is built, in `POINT_COLUMNS`' order.
    pub(super) kept: [bool; 7],
}

pub(super) const POINT_COLUMNS: [&str; 7] = ["time", "metric_name", "metric_type", "unit", "value", "count", "sum"];

impl PointColumns {
    pub(super) fn new() -> PointColumns {
        PointColumns {
            context: ContextColumns::new(),
            time: time_builder(),
            strings: (0..3).map(|_| StringBuilder::new()).collect(),
            value: Float64Builder::new(),
            count: Int64Builder::new(),
            sum: Float64Builder::new(),
            kept: [true; 7],
        }
    }

    pub(super) fn keep(&mut self, kept: KeptColumns) {
        self.context.keep(kept, 1);
        self.kept = kept.flags(1, POINT_COLUMNS);
    }

    /// Appends each data point of a `Metric`; returns how many. A malformed metric adds none.
    pub(super) fn append(&mut self, emitter: &Emitter<'_>, metric: &[u8], tags: &TagNames) -> Result<usize, Malformed> {
        let (mut name, mut unit, mut data) = ("", "", None);
        for f in fields(metric) {
            let f = f?;
            match f.number {
                fields::metric::NAME => name = f.str()?,
                fields::metric::UNIT => unit = f.str()?,
                n => {
                    if let Some(kind) = METRIC_DATA.iter().find(|(number, _, _)| *number == n) {
                        data = Some((kind, f.bytes()?));
                    }
                }
            }
        }
        let Some((&(_, kind, attributes_field), data)) = data else {
            return Ok(0);
        };
        let mut rows = Vec::new();
        for f in fields(data) {
            let f = f?;
            if f.number == fields::metric_data::DATA_POINTS {
                let mut point_attributes = RecordAttributes::new(self.context.kept_attributes, tags);
                let row = PointRow::read(f.bytes()?, kind, attributes_field, &mut point_attributes)?;
                rows.push((row, point_attributes));
            }
        }
        let [
            kept_time,
            kept_name,
            kept_kind,
            kept_unit,
            kept_value,
            kept_count,
            kept_sum,
        ] = self.kept;
        for (row, point_attributes) in &rows {
            self.context.append(emitter, point_attributes);
            append_if(kept_time, &mut self.time, |b| b.append_value(row.time as i64));
            append_if(kept_name, &mut self.strings[0], |b| b.append_value(name));
            append_if(kept_kind, &mut self.strings[1], |b| b.append_value(kind));
            append_if(kept_unit, &mut self.strings[2], |b| append_non_empty(b, unit));
            append_if(kept_value, &mut self.value, |b| b.append_option(row.value));
            append_if(kept_count, &mut self.count, |b| b.append_option(row.count));
            append_if(kept_sum, &mut self.sum, |b| b.append_option(row.sum));
        }
        Ok(rows.len())
    }

    pub(super) fn finish(&mut self) -> Vec<ArrayRef> {
        let mut columns = vec![self.time.finish_sized()];
        columns.extend(self.strings.iter_mut().map(FinishSized::finish_sized));
        columns.push(self.value.finish_sized());
        columns.push(self.count.finish_sized());
        columns.push(self.sum.finish_sized());
        columns.extend(self.context.finish_context());
        columns.push(self.context.finish_attributes());
        columns
    }
}
