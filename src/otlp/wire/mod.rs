//! Export requests as the protobuf bytes they arrived in. The data path never decodes a whole
//! request into objects: it walks the wire format down to the records (spans, data points,
//! log records) and their attributes, checks the framing on the way, and rewrites only what
//! changes. Enrichment appends attributes to a record without touching its other fields;
//! every message around an edited record is copied with its new length.

pub mod codec;
mod schema;

use std::fmt;

pub use codec::{Attribute, NewValue};
use codec::{Malformed, fields, len_field_size, put_attribute, put_len_header};
use schema::{Level, Role};

use super::Signal;

/// The kind of record a [`Record`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Span,
    DataPoint,
    LogRecord,
}

/// `SpanKind` values that matter to enrichment.
pub const SPAN_KIND_CLIENT: u64 = 3;

/// A span, metric data point or log record, as the visitor sees it.
#[derive(Debug)]
pub struct Record<'r, 'a> {
    pub kind: RecordKind,
    /// The span's `kind` field (0 for other records).
    pub span_kind: u64,
    pub attributes: &'r [Attribute<'a>],
}

/// Changes to one record's or resource's attributes: attributes to add, attributes to leave out.
pub struct Edit<'p> {
    field: u32,
    added: &'p mut Vec<u8>,
    dropped: &'p mut Vec<usize>,
    message: &'p [u8],
}

impl Edit<'_> {
    pub fn add(&mut self, key: &str, value: NewValue<'_>) {
        put_attribute(self.added, self.field, key, value);
    }

    /// The field number of attributes in the message being edited, for [`Edit::add_encoded`].
    pub fn attributes_field(&self) -> u32 {
        self.field
    }

    /// Adds attributes already encoded as fields numbered [`Edit::attributes_field`], so that
    /// tags written on many records are encoded once.
    pub fn add_encoded(&mut self, attributes: &[u8]) {
        self.added.extend_from_slice(attributes);
    }

    /// Leaves out an existing attribute, e.g. one being replaced.
    pub fn drop(&mut self, attribute: &Attribute<'_>) {
        self.dropped.push(offset(self.message, attribute.raw));
    }
}

/// What a rewrite does to each resource and record.
pub trait Visitor {
    /// Called for each resource, with no attributes when the request carries no resource.
    fn resource(&mut self, attributes: &[Attribute<'_>], edit: &mut Edit<'_>);
    fn record(&mut self, record: &Record<'_, '_>, edit: &mut Edit<'_>);
}

/// Where in a request the bytes are malformed, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// Outermost first: `("resource_spans", 0), ("scope_spans", 1), ("spans", 7)`.
    path: Vec<(&'static str, usize)>,
    problem: Malformed,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, index)) in self.path.iter().rev().enumerate() {
            let dot = if i == 0 { "" } else { "." };
            write!(f, "{dot}{name}[{index}]")?;
        }
        if !self.path.is_empty() {
            f.write_str(": ")?;
        }
        write!(f, "{}", self.problem)
    }
}

impl std::error::Error for WireError {}

impl From<Malformed> for WireError {
    fn from(problem: Malformed) -> Self {
        WireError {
            path: Vec::new(),
            problem,
        }
    }
}

/// What walking a request found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scan {
    /// Spans, data points or log records.
    pub items: usize,
    /// Spans without a 16-byte trace id and 8-byte span id; log records with ids of other
    /// lengths. OTLP receivers reject these through `partial_success`.
    pub invalid_ids: usize,
    /// The highest [`trace_randomness`] of the request's spans, so that a consumer sampling
    /// by trace can pass over a request none of whose traces it keeps without reading it;
    /// `u64::MAX` when a record is not a span or a span has no 16-byte trace id.
    pub highest_trace_randomness: u64,
}

/// The randomness of a trace id as OpenTelemetry's consistent probability sampling reads it:
/// its last 7 bytes, as a number below 2^56. `u64::MAX`, above every threshold, for an id that
/// is not 16 bytes long.
pub fn trace_randomness(trace_id: &[u8]) -> u64 {
    let Ok(id) = <[u8; 16]>::try_from(trace_id) else {
        return u64::MAX;
    };
    let mut randomness = [0u8; 8];
    randomness[1..].copy_from_slice(&id[9..]);
    u64::from_be_bytes(randomness)
}

/// Checks the framing of a request down to its records' attributes and counts its records.
pub fn scan(signal: Signal, request: &[u8]) -> Result<Scan, WireError> {
    let mut walk = Walk::new(None, request, Plan::default());
    walk.measure(schema::request(signal), request, 0, request)?;
    Ok(walk.scan)
}

/// Checks the request as [`scan`] does, applies `visitor` to every resource and to every
/// record with valid ids, and leaves out the records with invalid ids (counted in
/// `Scan::invalid_ids`). Returns the new request bytes, or `None` when nothing changed (the
/// original bytes stand), and what the walk found.
pub fn rewrite(
    signal: Signal,
    request: &[u8],
    visitor: &mut dyn Visitor,
) -> Result<(Option<Vec<u8>>, Scan), WireError> {
    let mut walk = Walk::new(Some(visitor), request, SPARE_PLAN.take().unwrap_or_default());
    let length = walk.measure(schema::request(signal), request, 0, request)?;
    let out = walk.changed.then(|| {
        let written = walk.write(length);
        debug_assert_eq!(written.len(), length);
        written
    });
    let scan = walk.scan;
    SPARE_PLAN.set(walk.into_spare());
    Ok((out, scan))
}

/// The request without its records with invalid ids (see [`rewrite`]), in one walk that
/// copies the rest as it is: no record is decoded into objects, so a large request with a few
/// bad ids takes no more memory than its own bytes twice.
pub fn without_invalid_records(signal: Signal, request: &[u8]) -> Result<(Vec<u8>, Scan), WireError> {
    struct Unchanged;
    impl Visitor for Unchanged {
        fn resource(&mut self, _: &[Attribute<'_>], _: &mut Edit<'_>) {}
        fn record(&mut self, _: &Record<'_, '_>, _: &mut Edit<'_>) {}
    }
    let (rewritten, scan) = rewrite(signal, request, &mut Unchanged)?;
    Ok((rewritten.unwrap_or_else(|| request.to_vec()), scan))
}

/// The plan of a rewrite (what to write, and the bytes the visitor added), in buffers that
/// one rewrite leaves to the next on the same thread: growing them anew for every request
/// was about half of the receiving path's time in `malloc` (perf, 100k spans/s with analytics
/// on).
#[derive(Default)]
struct Plan {
    /// The new length of each container the walk entered, in visiting order.
    lengths: Vec<usize>,
    steps: Vec<Step>,
    added: Vec<u8>,
    /// Where the attributes the visitor left out of the record being visited start.
    dropped: Vec<usize>,
}

/// Buffers grown past this by an unusually large request are freed rather than kept.
const MAX_SPARE_BYTES: usize = 1 << 20;

thread_local! {
    static SPARE_PLAN: std::cell::Cell<Option<Plan>> = const { std::cell::Cell::new(None) };
}

/// One piece of the rewritten request, in order. The walk that checks the request lays them
/// out, so writing is a run of copies rather than a second parse.
#[derive(Debug)]
enum Step {
    /// Bytes of the request as they arrived: everything the visitor left unchanged, records
    /// whole with their headers, and neighbours gathered into one copy.
    Copy(std::ops::Range<usize>),
    /// The tag and length of a container whose new length is `Plan::lengths[slot]`, known
    /// once the walk has left it.
    Container { field: u32, slot: usize },
    /// The tag and new length of a changed resource or record.
    Header { field: u32, length: usize },
    /// Attributes the visitor added, a range of `Plan::added`.
    Added(std::ops::Range<usize>),
}

/// A rewrite: `measure` walks and validates, asks the visitor, and lays out the steps of the
/// new request; `write` carries them out.
struct Walk<'v, 'a> {
    visitor: Option<&'v mut dyn Visitor>,
    request: &'a [u8],
    scan: Scan,
    /// Whether the visitor changed any resource or record, or a record was left out.
    changed: bool,
    /// The record just measured has invalid ids and is left out (rewrites only).
    left_out: bool,
    /// The attributes of the resource or record being visited, reused from one to the next.
    attributes: Vec<Attribute<'a>>,
    plan: Plan,
}

impl<'v, 'a> Walk<'v, 'a> {
    /// A walk over `request` that plans into `plan`'s buffers, emptied first (see [`Plan`]).
    fn new(visitor: Option<&'v mut dyn Visitor>, request: &'a [u8], mut plan: Plan) -> Walk<'v, 'a> {
        plan.lengths.clear();
        plan.steps.clear();
        plan.added.clear();
        plan.dropped.clear();
        Walk {
            visitor,
            request,
            scan: Scan::default(),
            changed: false,
            left_out: false,
            attributes: Vec::new(),
            plan,
        }
    }

    /// The buffers for the next rewrite, unless this one grew them too large to keep.
    fn into_spare(self) -> Option<Plan> {
        let plan = self.plan;
        let bytes = plan.lengths.capacity() * size_of::<usize>()
            + plan.steps.capacity() * size_of::<Step>()
            + plan.added.capacity()
            + plan.dropped.capacity() * size_of::<usize>();
        (bytes <= MAX_SPARE_BYTES).then_some(plan)
    }

    /// Validates `message` as `level`, plans its rewrite, and returns its new length. `raw` is
    /// the field that holds it (header included) and `number` that field's number; for the
    /// request itself, the request and 0.
    fn measure(&mut self, level: &Level, message: &'a [u8], number: u32, raw: &'a [u8]) -> Result<usize, WireError> {
        let mut length = 0;
        let mut has_resource = false;
        // Resources and records have no levels below them, so one buffer serves them all.
        let mut attributes = std::mem::take(&mut self.attributes);
        attributes.clear();
        let mut ids = (0, 0);
        let mut randomness = u64::MAX;
        let mut span_kind = 0;
        let mut counts = [0usize; 8];
        let visited = self.visitor.is_some();
        for field in fields(message) {
            let field = field?;
            if let Some((index, child)) = level.child(field.number) {
                let position = counts[index];
                counts[index] += 1;
                has_resource |= matches!(child.role, Role::Resource);
                let at = |mut e: WireError| {
                    e.path.push((level.children[index].1, position));
                    e
                };
                let bytes = field.bytes().map_err(|e| at(e.into()))?;
                let slot = self.open_container(child, field.number);
                let inner = self.measure(child, bytes, field.number, field.raw).map_err(at)?;
                if std::mem::take(&mut self.left_out) {
                    continue;
                }
                if let Some(slot) = slot {
                    self.plan.lengths[slot] = inner;
                }
                length += len_field_size(field.number, inner);
                continue;
            }
            length += field.raw.len();
            match level.role {
                Role::Record(kind) => {
                    if field.number == level.attributes {
                        // Parsed even when nobody looks, so that every path checks the same.
                        let attribute = Attribute::parse(&field)?;
                        if visited {
                            attributes.push(attribute);
                        }
                    } else if Some(field.number) == schema::trace_id_field(kind) {
                        let trace_id = field.bytes()?;
                        ids.0 = trace_id.len();
                        if kind == RecordKind::Span {
                            randomness = trace_randomness(trace_id);
                        }
                    } else if Some(field.number) == schema::span_id_field(kind) {
                        ids.1 = field.bytes()?.len();
                    } else if kind == RecordKind::Span && field.number == schema::SPAN_KIND {
                        span_kind = field.varint()?;
                    }
                }
                Role::Resource if field.number == level.attributes => {
                    let attribute = Attribute::parse(&field)?;
                    if visited {
                        attributes.push(attribute);
                    }
                }
                // Resources and records are laid out whole once visited, below.
                Role::Resource => {}
                Role::Container | Role::HoldsResource if visited => self.copy(field.raw),
                Role::Container | Role::HoldsResource => {}
            }
        }
        match level.role {
            Role::Record(kind) => {
                self.scan.items += 1;
                let valid = schema::ids_valid(kind, ids);
                self.scan.invalid_ids += usize::from(!valid);
                self.scan.highest_trace_randomness = self.scan.highest_trace_randomness.max(randomness);
                if !valid && visited {
                    // Left out of the rewrite: neither visited nor laid out.
                    self.changed = true;
                    self.left_out = true;
                    self.attributes = attributes;
                    return Ok(0);
                }
                length = self.visit(level, message, number, raw, length, |visitor, edit| {
                    let record = Record {
                        kind,
                        span_kind,
                        attributes: &attributes,
                    };
                    visitor.record(&record, edit);
                });
            }
            Role::Resource => {
                length = self.visit(level, message, number, raw, length, |visitor, edit| {
                    visitor.resource(&attributes, edit)
                });
            }
            Role::HoldsResource if !has_resource => length += self.add_missing_resource(),
            Role::Container | Role::HoldsResource => {}
        }
        self.attributes = attributes;
        Ok(length)
    }

    /// Lays out the header of `child`, entered through field `number`, when it is a container
    /// (its length comes later); returns the slot of its length.
    fn open_container(&mut self, child: &Level, number: u32) -> Option<usize> {
        if self.visitor.is_none() || !matches!(child.role, Role::Container | Role::HoldsResource) {
            return None;
        }
        let slot = self.plan.lengths.len();
        self.plan.lengths.push(0);
        self.plan.steps.push(Step::Container { field: number, slot });
        Some(slot)
    }

    /// Asks the visitor for the edit of one resource or record of `length` bytes, lays out
    /// the record as it will be written, and returns its new length. A record left unchanged
    /// is copied as it arrived, unless its header is longer than [`put_len_header`] writes it:
    /// the enclosing lengths were counted with the shorter one.
    fn visit(
        &mut self,
        level: &Level,
        message: &'a [u8],
        number: u32,
        raw: &'a [u8],
        length: usize,
        visit: impl FnOnce(&mut dyn Visitor, &mut Edit<'_>),
    ) -> usize {
        let Some(visitor) = self.visitor.as_deref_mut() else {
            return length;
        };
        let added_start = self.plan.added.len();
        self.plan.dropped.clear();
        let mut edit = Edit {
            field: level.attributes,
            added: &mut self.plan.added,
            dropped: &mut self.plan.dropped,
            message,
        };
        visit(visitor, &mut edit);
        let added = added_start..self.plan.added.len();
        let unchanged = added.is_empty() && self.plan.dropped.is_empty();
        if unchanged && raw.len() == len_field_size(number, message.len()) {
            self.copy(raw);
            return length;
        }
        self.changed |= !unchanged;
        let dropped = std::mem::take(&mut self.plan.dropped);
        let is_dropped = |field: &codec::Field<'_>| dropped.contains(&offset(message, field.raw));
        let removed: usize = if dropped.is_empty() {
            0
        } else {
            fields(message).flatten().filter(is_dropped).map(|f| f.raw.len()).sum()
        };
        let new_length = length - removed + added.len();
        self.plan.steps.push(Step::Header {
            field: number,
            length: new_length,
        });
        if dropped.is_empty() {
            self.copy(message);
        } else {
            fields(message)
                .flatten()
                .filter(|f| !is_dropped(f))
                .for_each(|f| self.copy(f.raw));
        }
        self.plan.dropped = dropped;
        if !added.is_empty() {
            self.plan.steps.push(Step::Added(added));
        }
        new_length
    }

    /// Asks the visitor about the resource of a `ResourceSpans` (or metrics, logs) that carries
    /// none; lays out the one it adds and returns the bytes that takes.
    fn add_missing_resource(&mut self) -> usize {
        let Some(visitor) = self.visitor.as_deref_mut() else {
            return 0;
        };
        let added_start = self.plan.added.len();
        self.plan.dropped.clear();
        let mut edit = Edit {
            field: schema::RESOURCE.attributes,
            added: &mut self.plan.added,
            dropped: &mut self.plan.dropped,
            message: &[],
        };
        visitor.resource(&[], &mut edit);
        let added = added_start..self.plan.added.len();
        if added.is_empty() {
            return 0;
        }
        self.changed = true;
        let length = added.len();
        self.plan.steps.push(Step::Header {
            field: schema::RESOURCE_FIELD,
            length,
        });
        self.plan.steps.push(Step::Added(added));
        len_field_size(schema::RESOURCE_FIELD, length)
    }

    /// Lays out `part` of the request as it arrived, joined to the copy before it when they
    /// follow each other.
    fn copy(&mut self, part: &[u8]) {
        let start = offset(self.request, part);
        let end = start + part.len();
        match self.plan.steps.last_mut() {
            Some(Step::Copy(range)) if range.end == start => range.end = end,
            _ => self.plan.steps.push(Step::Copy(start..end)),
        }
    }

    /// Writes the request as laid out; `length` is what `measure` returned.
    fn write(&self, length: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(length);
        for step in &self.plan.steps {
            match step {
                Step::Copy(range) => out.extend_from_slice(&self.request[range.clone()]),
                Step::Container { field, slot } => put_len_header(&mut out, *field, self.plan.lengths[*slot]),
                Step::Header { field, length } => put_len_header(&mut out, *field, *length),
                Step::Added(range) => out.extend_from_slice(&self.plan.added[range.clone()]),
            }
        }
        out
    }
}

/// Where `part` starts within `message`, which contains it.
fn offset(message: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - message.as_ptr() as usize
}

#[cfg(test)]
mod tests;
