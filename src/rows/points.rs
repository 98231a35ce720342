//! Rows of the `metric_points` table.

use datafusion::arrow::array::{Float64Builder, Int64Builder, StringBuilder, TimestampNanosecondBuilder};

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

/// The builders of the `metric_points` table.
pub(super) struct PointColumns {
    context: ContextColumns,
    time: Column<TimestampNanosecondBuilder>,
    metric_name: Column<StringBuilder>,
    metric_type: Column<StringBuilder>,
    unit: Column<StringBuilder>,
    value: Column<Float64Builder>,
    count: Column<Int64Builder>,
    sum: Column<Float64Builder>,
}

impl PointColumns {
    pub(super) fn new() -> PointColumns {
        PointColumns {
            context: ContextColumns::new(),
            time: time_column("time"),
            metric_name: text_column("metric_name"),
            metric_type: text_column("metric_type"),
            unit: text_column("unit"),
            value: Column::new("value", Float64Builder::new()),
            count: Column::new("count", Int64Builder::new()),
            sum: Column::new("sum", Float64Builder::new()),
        }
    }

    pub(super) fn keep(&mut self, kept: KeptColumns) {
        const TABLE: usize = 1;
        self.context.keep(kept, TABLE);
        self.time.keep(kept, TABLE);
        for text in [&mut self.metric_name, &mut self.metric_type, &mut self.unit] {
            text.keep(kept, TABLE);
        }
        self.value.keep(kept, TABLE);
        self.count.keep(kept, TABLE);
        self.sum.keep(kept, TABLE);
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
                let mut point_attributes = RecordAttributes::new(self.context.keeps_attributes(), tags);
                let row = PointRow::read(f.bytes()?, kind, attributes_field, &mut point_attributes)?;
                rows.push((row, point_attributes));
            }
        }
        for (row, point_attributes) in &rows {
            self.context.append(emitter, point_attributes);
            self.time.append(|b| b.append_value(row.time as i64));
            self.metric_name.append(|b| b.append_value(name));
            self.metric_type.append(|b| b.append_value(kind));
            self.unit.append(|b| append_non_empty(b, unit));
            self.value.append(|b| b.append_option(row.value));
            self.count.append(|b| b.append_option(row.count));
            self.sum.append(|b| b.append_option(row.sum));
        }
        Ok(rows.len())
    }

    /// The finished columns.
    pub(super) fn finish(&mut self) -> Vec<Named> {
        let mut columns = vec![
            self.time.finish(),
            self.metric_name.finish(),
            self.metric_type.finish(),
            self.unit.finish(),
            self.value.finish(),
            self.count.finish(),
            self.sum.finish(),
        ];
        columns.extend(self.context.finish());
        columns
    }
}
