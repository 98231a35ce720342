//! Doubles in OTLP/JSON beyond what the generated serde types read and write.
//!
//! The proto3 JSON mapping writes a double as a number, or as the strings `"NaN"`,
//! `"Infinity"` and `"-Infinity"`, and readers also accept a number in a string. The
//! generated types read only numbers (and inside a metric's oneof, an unreadable value is
//! silently dropped, the whole `histogram` with it); serde_json writes a NaN as `null`.
//!
//! So one pass over the text finds every value in a double's place (the keys below, and the
//! elements of `explicitBounds`): reading, a numeric string loses its quotes and a special
//! one becomes a [`SENTINELS`] number that [`restore`] turns back after decoding; writing,
//! the reverse. The same pass notes what else decoding needs to know ([`Scan`]).

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Exemplar, exemplar, metric::Data, number_data_point};

use crate::otlp::Payload;

/// Stand-ins for the three doubles JSON numbers cannot carry. Each is an odd 16-digit
/// integer over 10^22: exact in an f64, and read to the same f64 by any correctly rounding
/// parser (serde_json's fast path included). A sender's own number equal to one of them is
/// read as the special value; that changes only that sender's data, and only to a value the
/// encoding allows anyway.
const SENTINELS: [(f64, &str); 3] = [
    (4503599627370497e-22, "NaN"),
    (4503599627370499e-22, "Infinity"),
    (-4503599627370499e-22, "-Infinity"),
];
const SENTINEL_TEXT: [&str; 3] = ["4503599627370497e-22", "4503599627370499e-22", "-4503599627370499e-22"];

fn special_of(value: f64) -> Option<&'static str> {
    SENTINELS
        .iter()
        .find(|(sentinel, _)| *sentinel == value)
        .map(|(_, name)| *name)
}

fn sentinel_of(value: f64) -> f64 {
    let index = if value.is_nan() {
        0
    } else if value > 0.0 {
        1
    } else {
        2
    };
    SENTINELS[index].0
}

/// Which way [`rewrite`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    /// Quoted doubles become numbers (special ones sentinels).
    Read,
    /// Sentinel numbers become the quoted special names.
    Write,
}

/// What one pass over the text found besides doubles.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Scan {
    /// A key with an underscore: a proto field name in snake_case.
    pub(super) snake_case_key: bool,
    /// Values given to a metric's data oneof (`gauge`, `sum`, …) and to a point's or an
    /// exemplar's value oneof (`asDouble`, `asInt`), `null` aside: each must survive decoding.
    pub(super) oneof_values: usize,
    /// Sentinels written (reading) or found (writing).
    pub(super) specials: usize,
}

/// The role of the key a value belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    /// A double field.
    Double,
    /// `sum`: a double in a point, a metric's data when its value is an object.
    Sum,
    /// `explicitBounds`: an array of doubles.
    Bounds,
    /// `gauge`, `histogram`, `exponentialHistogram`, `summary`: a metric's data oneof.
    MetricData,
    /// `asInt`: a point's or an exemplar's value oneof that is not a double.
    IntValue,
    Other,
}

impl Key {
    fn of(name: &[u8]) -> Key {
        match name {
            b"doubleValue" | b"double_value" | b"asDouble" | b"as_double" | b"min" | b"max" | b"quantile"
            | b"value" => Key::Double,
            b"sum" => Key::Sum,
            b"explicitBounds" | b"explicit_bounds" => Key::Bounds,
            b"gauge" | b"histogram" | b"exponentialHistogram" | b"exponential_histogram" | b"summary" => {
                Key::MetricData
            }
            b"asInt" | b"as_int" => Key::IntValue,
            _ => Key::Other,
        }
    }

    fn takes_double(self) -> bool {
        matches!(self, Key::Double | Key::Sum)
    }

    /// Whether a value under this key is a point's or an exemplar's value oneof, which must
    /// survive decoding.
    fn is_scalar_oneof(self, name: &[u8]) -> bool {
        self == Key::IntValue || matches!(name, b"asDouble" | b"as_double")
    }
}

/// One container open at the current position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    Object,
    Array { bounds: bool },
}

/// Scans OTLP/JSON text and, where a double needs it, rewrites it in `direction`. Gives the
/// scan and the new text when anything changed. Text that is not JSON is passed through for
/// the decoder to name the error.
pub(super) fn rewrite(json: &[u8], direction: Direction) -> (Scan, Option<Vec<u8>>) {
    let mut scan = Scan::default();
    let mut out = Edits::new(json);
    let mut stack: Vec<Frame> = Vec::new();
    let mut key = (Key::Other, &b""[..]);
    let mut index = 0;
    while index < json.len() {
        let in_double_place = match stack.last() {
            Some(Frame::Array { bounds }) => *bounds,
            Some(Frame::Object) => key.0.takes_double(),
            None => false,
        };
        let scalar_oneof = stack.last() == Some(&Frame::Object) && key.0.is_scalar_oneof(key.1);
        match json[index] {
            b'"' => {
                let end = string_end(json, index + 1);
                if end >= json.len() {
                    // Unterminated: the decoder names the error.
                    break;
                }
                let content = &json[index + 1..end];
                let after = skip_whitespace(json, end + 1);
                if json.get(after) == Some(&b':') {
                    scan.snake_case_key |= content.contains(&b'_');
                    key = (Key::of(content), content);
                    index = after + 1;
                    continue;
                }
                scan.oneof_values += usize::from(scalar_oneof);
                let unquoted = (direction == Direction::Read && in_double_place)
                    .then(|| unquoted_double(content))
                    .flatten();
                if let Some(number) = unquoted {
                    scan.specials += usize::from(number.is_sentinel);
                    out.replace(index..end + 1, number.text.as_bytes());
                }
                index = end + 1;
            }
            b'{' => {
                let data = stack.last() == Some(&Frame::Object) && matches!(key.0, Key::MetricData | Key::Sum);
                scan.oneof_values += usize::from(data || scalar_oneof);
                stack.push(Frame::Object);
                index += 1;
            }
            b'[' => {
                scan.oneof_values += usize::from(scalar_oneof);
                let bounds = stack.last() == Some(&Frame::Object) && key.0 == Key::Bounds;
                stack.push(Frame::Array { bounds });
                index += 1;
            }
            b'}' | b']' => {
                stack.pop();
                index += 1;
            }
            b'-' | b'0'..=b'9' => {
                let end = number_end(json, index);
                scan.oneof_values += usize::from(scalar_oneof);
                if direction == Direction::Write && in_double_place {
                    let special = std::str::from_utf8(&json[index..end])
                        .ok()
                        .and_then(|text| text.parse::<f64>().ok())
                        .and_then(special_of);
                    if let Some(name) = special {
                        scan.specials += 1;
                        out.replace(index..end, format!("\"{name}\"").as_bytes());
                    }
                }
                index = end;
            }
            b't' | b'f' => {
                scan.oneof_values += usize::from(scalar_oneof);
                index += 1;
                while index < json.len() && json[index].is_ascii_alphabetic() {
                    index += 1;
                }
            }
            _ => index += 1,
        }
    }
    (scan, out.finish())
}

/// The index of the quote closing the string that starts at `start`, or the text's length.
fn string_end(json: &[u8], start: usize) -> usize {
    let mut end = start;
    while end < json.len() && json[end] != b'"' {
        end += if json[end] == b'\\' { 2 } else { 1 };
    }
    end.min(json.len())
}

fn skip_whitespace(json: &[u8], mut index: usize) -> usize {
    while index < json.len() && json[index].is_ascii_whitespace() {
        index += 1;
    }
    index
}

fn number_end(json: &[u8], mut index: usize) -> usize {
    while index < json.len() && matches!(json[index], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
        index += 1;
    }
    index
}

/// A quoted double as the JSON number to put in its place.
struct Unquoted {
    text: String,
    is_sentinel: bool,
}

fn unquoted_double(content: &[u8]) -> Option<Unquoted> {
    let text = std::str::from_utf8(content).ok()?;
    if let Some(index) = SENTINELS.iter().position(|(_, name)| *name == text) {
        return Some(Unquoted {
            text: SENTINEL_TEXT[index].to_owned(),
            is_sentinel: true,
        });
    }
    let value = text.parse::<f64>().ok().filter(|value| value.is_finite())?;
    // The sender's digits when they are a JSON number already, else the shortest exact form.
    let text = if is_json_number(content) {
        text.to_owned()
    } else {
        format!("{value:?}")
    };
    Some(Unquoted {
        text,
        is_sentinel: false,
    })
}

/// Whether the bytes are a number by JSON's grammar: `-? int frac? exp?`.
fn is_json_number(bytes: &[u8]) -> bool {
    let digits = |from: usize| from + bytes[from..].iter().take_while(|b| b.is_ascii_digit()).count();
    let mut index = usize::from(bytes.first() == Some(&b'-'));
    let int_end = digits(index);
    if int_end == index || (bytes[index] == b'0' && int_end - index > 1) {
        return false;
    }
    index = int_end;
    if bytes.get(index) == Some(&b'.') {
        let end = digits(index + 1);
        if end == index + 1 {
            return false;
        }
        index = end;
    }
    if matches!(bytes.get(index), Some(b'e' | b'E')) {
        index += 1;
        if matches!(bytes.get(index), Some(b'+' | b'-')) {
            index += 1;
        }
        let end = digits(index);
        if end == index {
            return false;
        }
        index = end;
    }
    index == bytes.len()
}

/// The text with some ranges replaced, copied only once the first replacement comes.
struct Edits<'a> {
    source: &'a [u8],
    out: Option<Vec<u8>>,
    copied: usize,
}

impl<'a> Edits<'a> {
    fn new(source: &'a [u8]) -> Edits<'a> {
        Edits {
            source,
            out: None,
            copied: 0,
        }
    }

    fn replace(&mut self, range: std::ops::Range<usize>, with: &[u8]) {
        let out = self
            .out
            .get_or_insert_with(|| Vec::with_capacity(self.source.len() + 64));
        out.extend_from_slice(&self.source[self.copied..range.start]);
        out.extend_from_slice(with);
        self.copied = range.end;
    }

    fn finish(self) -> Option<Vec<u8>> {
        let mut out = self.out?;
        out.extend_from_slice(&self.source[self.copied..]);
        Some(out)
    }
}

/// Turns the sentinels [`rewrite`] wrote back into the values they stand for.
pub(super) fn restore(payload: &mut Payload) {
    each_double_mut(payload, &mut |value| {
        if let Some(name) = special_of(*value) {
            *value = match name {
                "NaN" => f64::NAN,
                "Infinity" => f64::INFINITY,
                _ => f64::NEG_INFINITY,
            };
        }
    });
}

/// Replaces each NaN and infinity by its sentinel, for [`rewrite`] to write by name.
pub(super) fn to_sentinels(payload: &mut Payload) {
    each_double_mut(payload, &mut |value| {
        if !value.is_finite() {
            *value = sentinel_of(*value);
        }
    });
}

/// Whether the payload holds a NaN or an infinity anywhere.
pub(super) fn has_special(payload: &Payload) -> bool {
    let mut found = false;
    each_double(payload, &mut |value| found |= !value.is_finite());
    found
}

/// Generates a walk over every double of a payload, by reference (`each_double`) or by
/// mutable reference (`each_double_mut`): one definition of where the doubles are.
macro_rules! double_walk {
    ($name:ident $(, $mutability:ident)?) => {
        pub(super) fn $name(payload: &$($mutability)? Payload, f: &mut impl FnMut(&$($mutability)? f64)) {
            fn any(value: &$($mutability)? AnyValue, f: &mut impl FnMut(&$($mutability)? f64)) {
                match &$($mutability)? value.value {
                    Some(any_value::Value::DoubleValue(double)) => f(double),
                    Some(any_value::Value::ArrayValue(array)) => {
                        for value in &$($mutability)? array.values {
                            any(value, f);
                        }
                    }
                    Some(any_value::Value::KvlistValue(list)) => attributes(&$($mutability)? list.values, f),
                    _ => {}
                }
            }
            fn attributes(list: &$($mutability)? Vec<KeyValue>, f: &mut impl FnMut(&$($mutability)? f64)) {
                for pair in list {
                    if let Some(value) = &$($mutability)? pair.value {
                        any(value, f);
                    }
                }
            }
            fn exemplars(list: &$($mutability)? Vec<Exemplar>, f: &mut impl FnMut(&$($mutability)? f64)) {
                for exemplar in list {
                    attributes(&$($mutability)? exemplar.filtered_attributes, f);
                    if let Some(exemplar::Value::AsDouble(value)) = &$($mutability)? exemplar.value {
                        f(value);
                    }
                }
            }
            fn optional(value: &$($mutability)? Option<f64>, f: &mut impl FnMut(&$($mutability)? f64)) {
                if let Some(value) = value {
                    f(value);
                }
            }
            fn data(data: &$($mutability)? Data, f: &mut impl FnMut(&$($mutability)? f64)) {
                match data {
                    Data::Gauge(gauge) => numbers(&$($mutability)? gauge.data_points, f),
                    Data::Sum(sum) => numbers(&$($mutability)? sum.data_points, f),
                    Data::Histogram(histogram) => {
                        for point in &$($mutability)? histogram.data_points {
                            attributes(&$($mutability)? point.attributes, f);
                            exemplars(&$($mutability)? point.exemplars, f);
                            optional(&$($mutability)? point.sum, f);
                            optional(&$($mutability)? point.min, f);
                            optional(&$($mutability)? point.max, f);
                            for bound in &$($mutability)? point.explicit_bounds {
                                f(bound);
                            }
                        }
                    }
                    Data::ExponentialHistogram(histogram) => {
                        for point in &$($mutability)? histogram.data_points {
                            attributes(&$($mutability)? point.attributes, f);
                            exemplars(&$($mutability)? point.exemplars, f);
                            optional(&$($mutability)? point.sum, f);
                            optional(&$($mutability)? point.min, f);
                            optional(&$($mutability)? point.max, f);
                        }
                    }
                    Data::Summary(summary) => {
                        for point in &$($mutability)? summary.data_points {
                            attributes(&$($mutability)? point.attributes, f);
                            f(&$($mutability)? point.sum);
                            for quantile in &$($mutability)? point.quantile_values {
                                f(&$($mutability)? quantile.quantile);
                                f(&$($mutability)? quantile.value);
                            }
                        }
                    }
                }
            }
            fn numbers(
                points: &$($mutability)? Vec<opentelemetry_proto::tonic::metrics::v1::NumberDataPoint>,
                f: &mut impl FnMut(&$($mutability)? f64),
            ) {
                for point in points {
                    attributes(&$($mutability)? point.attributes, f);
                    exemplars(&$($mutability)? point.exemplars, f);
                    if let Some(number_data_point::Value::AsDouble(value)) = &$($mutability)? point.value {
                        f(value);
                    }
                }
            }
            match payload {
                Payload::Traces(request) => {
                    for resource in &$($mutability)? request.resource_spans {
                        if let Some(resource) = &$($mutability)? resource.resource {
                            attributes(&$($mutability)? resource.attributes, f);
                        }
                        for scope in &$($mutability)? resource.scope_spans {
                            if let Some(scope) = &$($mutability)? scope.scope {
                                attributes(&$($mutability)? scope.attributes, f);
                            }
                            for span in &$($mutability)? scope.spans {
                                attributes(&$($mutability)? span.attributes, f);
                                for event in &$($mutability)? span.events {
                                    attributes(&$($mutability)? event.attributes, f);
                                }
                                for link in &$($mutability)? span.links {
                                    attributes(&$($mutability)? link.attributes, f);
                                }
                            }
                        }
                    }
                }
                Payload::Metrics(request) => {
                    for resource in &$($mutability)? request.resource_metrics {
                        if let Some(resource) = &$($mutability)? resource.resource {
                            attributes(&$($mutability)? resource.attributes, f);
                        }
                        for scope in &$($mutability)? resource.scope_metrics {
                            if let Some(scope) = &$($mutability)? scope.scope {
                                attributes(&$($mutability)? scope.attributes, f);
                            }
                            for metric in &$($mutability)? scope.metrics {
                                attributes(&$($mutability)? metric.metadata, f);
                                if let Some(metric_data) = &$($mutability)? metric.data {
                                    data(metric_data, f);
                                }
                            }
                        }
                    }
                }
                Payload::Logs(request) => {
                    for resource in &$($mutability)? request.resource_logs {
                        if let Some(resource) = &$($mutability)? resource.resource {
                            attributes(&$($mutability)? resource.attributes, f);
                        }
                        for scope in &$($mutability)? resource.scope_logs {
                            if let Some(scope) = &$($mutability)? scope.scope {
                                attributes(&$($mutability)? scope.attributes, f);
                            }
                            for record in &$($mutability)? scope.log_records {
                                attributes(&$($mutability)? record.attributes, f);
                                if let Some(body) = &$($mutability)? record.body {
                                    any(body, f);
                                }
                            }
                        }
                    }
                }
            }
        }
    };
}

double_walk!(each_double);
double_walk!(each_double_mut, mut);
