//! Governing one request on the wire, as enrichment does: records an exporter may not get
//! are left out, attributes are removed or hashed at every level (resource, scope, span,
//! event, link, data point, exemplar, log record and its body, nested maps and arrays), and
//! only the messages that change are copied.

use crate::otlp::Signal;
use crate::otlp::fields::{any_value, key_value};
use crate::otlp::wire::codec::{Field, Malformed, fields, put_len_header};

use super::redactor::{Action, Redactor};

/// Values nested deeper than this are removed whole: their keys are not checked one by one.
/// (Decoders stop at 100; no agent writes this deep.)
const MAX_DEPTH: usize = 32;

/// A message type of the three export requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Request(Signal),
    ResourceData(Signal),
    Resource,
    ScopeData(Signal),
    Scope,
    Span,
    Event,
    Link,
    Metric,
    Points(PointType),
    Point(PointType),
    Exemplar,
    LogRecord,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PointType {
    Number,
    Histogram,
    Exponential,
    Summary,
}

/// What a field of a message holds, for the rewrite.
enum Role {
    Child(Kind),
    Attributes,
    Body,
    Other,
}

/// The OTLP field numbers the rewrite follows (opentelemetry-proto v1.10.0).
fn role(kind: Kind, number: u32) -> Role {
    use Kind::*;
    match (kind, number) {
        (Request(signal), 1) => Role::Child(ResourceData(signal)),
        (ResourceData(_), 1) => Role::Child(Resource),
        (ResourceData(signal), 2) => Role::Child(ScopeData(signal)),
        (ScopeData(_), 1) => Role::Child(Scope),
        (ScopeData(Signal::Traces), 2) => Role::Child(Span),
        (ScopeData(Signal::Metrics), 2) => Role::Child(Metric),
        (ScopeData(Signal::Logs), 2) => Role::Child(LogRecord),
        (Span, 11) => Role::Child(Event),
        (Span, 13) => Role::Child(Link),
        (Metric, 5 | 7) => Role::Child(Points(PointType::Number)),
        (Metric, 9) => Role::Child(Points(PointType::Histogram)),
        (Metric, 10) => Role::Child(Points(PointType::Exponential)),
        (Metric, 11) => Role::Child(Points(PointType::Summary)),
        (Points(point), 1) => Role::Child(Point(point)),
        (Point(PointType::Number), 5) | (Point(PointType::Histogram), 8) | (Point(PointType::Exponential), 11) => {
            Role::Child(Exemplar)
        }
        (Resource, 1)
        | (Scope, 3)
        | (Span, 9)
        | (Event, 3)
        | (Link, 4)
        | (Metric, 12)
        | (Point(PointType::Number | PointType::Summary), 7)
        | (Point(PointType::Histogram), 9)
        | (Point(PointType::Exponential), 1)
        | (Exemplar, 7)
        | (LogRecord, 6) => Role::Attributes,
        (LogRecord, 5) => Role::Body,
        _ => Role::Other,
    }
}

impl Kind {
    /// Spans, data points and log records: what is counted, and filtered one by one.
    fn is_record(self) -> bool {
        matches!(self, Kind::Span | Kind::Point(_) | Kind::LogRecord)
    }
}

/// What became of one message or field.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    Same,
    Changed(Vec<u8>),
    Dropped,
}

/// Why records were withheld from an exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Layer,
    Integration,
    Unregistered,
}

impl Reason {
    pub const ALL: [Reason; 3] = [Reason::Layer, Reason::Integration, Reason::Unregistered];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Layer => "layer",
            Reason::Integration => "integration",
            Reason::Unregistered => "unregistered",
        }
    }
}

/// What rewrites did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Tally {
    /// Records kept.
    pub(super) kept: usize,
    /// Records withheld, by [`Reason::ALL`] order.
    pub(super) withheld: [usize; 3],
    pub(super) removed: usize,
    pub(super) hashed: usize,
    /// Records in parts that did not parse below the records.
    pub(super) malformed: usize,
}

/// Which resources and records an exporter may get, by the tags enrichment wrote.
#[derive(Debug, Default)]
pub(super) struct RecordFilter {
    pub(super) layers: Option<Vec<String>>,
    pub(super) integrations: Option<Vec<String>>,
    pub(super) exclude_unregistered: bool,
    pub(super) layer_key: String,
    pub(super) integration_key: String,
    pub(super) registered_key: String,
}

impl RecordFilter {
    pub(super) fn is_open(&self) -> bool {
        self.layers.is_none() && self.integrations.is_none() && !self.exclude_unregistered
    }

    /// Why a resource's records are withheld, if they are: its layer is not listed.
    fn resource(&self, resource_data: &[u8]) -> Result<Option<Reason>, Malformed> {
        let Some(layers) = &self.layers else {
            return Ok(None);
        };
        let mut layer = None;
        for field in fields(resource_data) {
            let field = field?;
            if field.number == 1 {
                for attribute in attributes(Kind::Resource, field.bytes()?) {
                    let (key, value) = attribute?;
                    if key == self.layer_key.as_bytes() {
                        layer = string_of(value);
                    }
                }
            }
        }
        let layer = layer.unwrap_or("unknown");
        Ok((!layers.iter().any(|l| l == layer)).then_some(Reason::Layer))
    }

    /// Why a record is withheld, if it is.
    fn record(&self, kind: Kind, record: &[u8]) -> Result<Option<Reason>, Malformed> {
        if self.integrations.is_none() && !self.exclude_unregistered {
            return Ok(None);
        }
        let (mut id, mut registered) = (None, None);
        for attribute in attributes(kind, record) {
            let (key, value) = attribute?;
            if key == self.integration_key.as_bytes() {
                id = string_of(value);
            } else if key == self.registered_key.as_bytes() {
                registered = bool_of(value);
            }
        }
        if self.exclude_unregistered && registered == Some(false) {
            return Ok(Some(Reason::Unregistered));
        }
        let listed = |list: &Vec<String>| id.is_some_and(|id| list.iter().any(|i| i == id));
        Ok(self
            .integrations
            .as_ref()
            .filter(|list| !listed(list))
            .map(|_| Reason::Integration))
    }
}

/// The (key, encoded value) of each attribute directly in a message of `kind`.
fn attributes(kind: Kind, message: &[u8]) -> impl Iterator<Item = Result<(&[u8], &[u8]), Malformed>> {
    fields(message).filter_map(move |field| match field {
        Err(error) => Some(Err(error)),
        Ok(field) => matches!(role(kind, field.number), Role::Attributes).then(|| key_and_value(field.bytes()?)),
    })
}

fn key_and_value(key_value: &[u8]) -> Result<(&[u8], &[u8]), Malformed> {
    let (mut key, mut value): (&[u8], &[u8]) = (&[], &[]);
    for field in fields(key_value) {
        let field = field?;
        match field.number {
            key_value::KEY => key = field.bytes()?,
            key_value::VALUE => value = field.bytes()?,
            _ => {}
        }
    }
    Ok((key, value))
}

fn string_of(any: &[u8]) -> Option<&str> {
    fields(any)
        .filter_map(Result::ok)
        .find(|f| f.number == any_value::STRING)
        .and_then(|f| f.str().ok())
}

fn bool_of(any: &[u8]) -> Option<bool> {
    fields(any)
        .filter_map(Result::ok)
        .find(|f| f.number == any_value::BOOL)
        .and_then(|f| f.varint().ok())
        .map(|v| v != 0)
}

/// Governs one export request of `signal`, adding what it did to `tally`: the new bytes
/// when anything changed. `redaction` is the redactor with its places in the request.
pub(super) fn rewrite(
    signal: Signal,
    request: &[u8],
    filter: &RecordFilter,
    redaction: Option<(&Redactor, Vec<usize>)>,
    tally: &mut Tally,
) -> Result<Outcome, Malformed> {
    let (redactor, places) = redaction.unzip();
    let mut governing = Governing {
        filter,
        redactor,
        tally,
        base: request.as_ptr() as usize,
        places: places.unwrap_or_default(),
    };
    governing.message(Kind::Request(signal), request)
}

/// The records of an export request, 0 when it does not parse that far.
pub(super) fn records_in(signal: Signal, request: &[u8]) -> usize {
    records(Kind::Request(signal), request).unwrap_or(0)
}

struct Governing<'g> {
    filter: &'g RecordFilter,
    redactor: Option<&'g Redactor>,
    tally: &'g mut Tally,
    /// The address of the request's first byte, and the offsets in it of the redactor's
    /// places (see [`Redactor::places`]).
    base: usize,
    places: Vec<usize>,
}

impl Governing<'_> {
    fn message(&mut self, kind: Kind, bytes: &[u8]) -> Result<Outcome, Malformed> {
        if matches!(kind, Kind::ResourceData(_))
            && let Some(reason) = self.filter.resource(bytes)?
        {
            self.tally.withheld[reason as usize] += records(kind, bytes)?;
            return Ok(Outcome::Dropped);
        }
        if kind.is_record() {
            if let Some(reason) = self.filter.record(kind, bytes)? {
                self.tally.withheld[reason as usize] += 1;
                return Ok(Outcome::Dropped);
            }
            self.tally.kept += 1;
            if self.redactor.is_none() {
                return Ok(Outcome::Same);
            }
        }
        // Below the records nothing is withheld: without a place of the redactor's there is
        // nothing to do.
        let filters_below =
            !self.filter.is_open() && !kind.is_record() && !matches!(kind, Kind::Resource | Kind::Scope);
        if !filters_below && !self.holds_a_place(bytes) {
            return Ok(Outcome::Same);
        }
        each_field(bytes, |field| match role(kind, field.number) {
            Role::Child(child) => self.message(child, field.bytes()?),
            Role::Attributes => self.key_value(field.bytes()?, 0),
            Role::Body => self.any_value(field.bytes()?, 0),
            Role::Other => Ok(Outcome::Same),
        })
    }

    /// One attribute, at any depth.
    fn key_value(&mut self, bytes: &[u8], depth: usize) -> Result<Outcome, Malformed> {
        let Some(redactor) = self.redactor.filter(|_| self.holds_a_place(bytes)) else {
            return Ok(Outcome::Same);
        };
        let (key, value) = key_and_value(bytes)?;
        match redactor.action(key) {
            Action::Remove => {
                self.tally.removed += 1;
                Ok(Outcome::Dropped)
            }
            Action::Hash => {
                self.tally.hashed += 1;
                let hashed = redactor.hash(string_of(value).map_or(value, str::as_bytes));
                let mut any = Vec::with_capacity(hashed.len() + 2);
                put_len_header(&mut any, any_value::STRING, hashed.len());
                any.extend_from_slice(hashed.as_bytes());
                Ok(Outcome::Changed(key_value_bytes(key, &any)))
            }
            Action::Keep => Ok(match self.any_value(value, depth + 1)? {
                Outcome::Same => Outcome::Same,
                Outcome::Changed(any) => Outcome::Changed(key_value_bytes(key, &any)),
                Outcome::Dropped => Outcome::Dropped,
            }),
        }
    }

    /// An `AnyValue`: the attributes of its maps, at any depth within arrays and maps.
    fn any_value(&mut self, bytes: &[u8], depth: usize) -> Result<Outcome, Malformed> {
        let nested = fields(bytes)
            .filter_map(Result::ok)
            .any(|f| matches!(f.number, any_value::ARRAY | any_value::KVLIST));
        if !nested || !self.holds_a_place(bytes) {
            return Ok(Outcome::Same);
        }
        if depth >= MAX_DEPTH {
            self.tally.removed += 1;
            return Ok(Outcome::Dropped);
        }
        each_field(bytes, |field| match field.number {
            // `ArrayValue.values` and `KeyValueList.values` are both field 1.
            any_value::ARRAY => each_field(field.bytes()?, |item| self.any_value(item.bytes()?, depth + 1)),
            any_value::KVLIST => each_field(field.bytes()?, |item| self.key_value(item.bytes()?, depth + 1)),
            _ => Ok(Outcome::Same),
        })
    }

    /// Whether `bytes` (a slice of the request) hold one of the redactor's places.
    fn holds_a_place(&self, bytes: &[u8]) -> bool {
        let start = bytes.as_ptr() as usize - self.base;
        let at = self.places.partition_point(|place| *place < start);
        self.places.get(at).is_some_and(|place| *place < start + bytes.len())
    }
}

/// The records in a message of `kind`, counted without rewriting it.
fn records(kind: Kind, bytes: &[u8]) -> Result<usize, Malformed> {
    if kind.is_record() {
        return Ok(1);
    }
    let mut count = 0;
    for field in fields(bytes) {
        let field = field?;
        if let Role::Child(child) = role(kind, field.number)
            && !matches!(
                child,
                Kind::Resource | Kind::Scope | Kind::Event | Kind::Link | Kind::Exemplar
            )
        {
            count += records(child, field.bytes()?)?;
        }
    }
    Ok(count)
}

/// Rewrites a message field by field with `each`: the message is copied only from the first
/// field that changes or goes, and a changed field is written with its new length.
fn each_field(
    bytes: &[u8],
    mut each: impl FnMut(&Field<'_>) -> Result<Outcome, Malformed>,
) -> Result<Outcome, Malformed> {
    let mut out: Option<Vec<u8>> = None;
    for field in fields(bytes) {
        let field = field?;
        let outcome = each(&field)?;
        let start = field.raw.as_ptr() as usize - bytes.as_ptr() as usize;
        match outcome {
            Outcome::Same => {
                if let Some(out) = &mut out {
                    out.extend_from_slice(field.raw);
                }
            }
            Outcome::Changed(new) => {
                let out = out.get_or_insert_with(|| bytes[..start].to_vec());
                put_len_header(out, field.number, new.len());
                out.extend_from_slice(&new);
            }
            Outcome::Dropped => {
                out.get_or_insert_with(|| bytes[..start].to_vec());
            }
        }
    }
    Ok(out.map_or(Outcome::Same, Outcome::Changed))
}

fn key_value_bytes(key: &[u8], any: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + any.len() + 8);
    put_len_header(&mut out, key_value::KEY, key.len());
    out.extend_from_slice(key);
    put_len_header(&mut out, key_value::VALUE, any.len());
    out.extend_from_slice(any);
    out
}
