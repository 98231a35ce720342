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
}

/// Checks the framing of a request down to its records' attributes and counts its records.
pub fn scan(signal: Signal, request: &[u8]) -> Result<Scan, WireError> {
    let mut walk = Walk::new(None, Plan::default());
    walk.measure(schema::request(signal), request)?;
    Ok(walk.scan)
}

/// Checks the request as [`scan`] does and applies `visitor` to every resource and to every
/// record with valid ids. Returns the new request bytes, or `None` when the visitor changed
/// nothing (the original bytes stand), and what the walk found.
pub fn rewrite(
    signal: Signal,
    request: &[u8],
    visitor: &mut dyn Visitor,
) -> Result<(Option<Vec<u8>>, Scan), WireError> {
    let level = schema::request(signal);
    let mut walk = Walk::new(Some(visitor), SPARE_PLAN.take().unwrap_or_default());
    let length = walk.measure(level, request)?;
    let mut out = None;
    if !walk.plan.edits.iter().all(PlannedEdit::is_empty) {
        let mut written = Vec::with_capacity(length);
        walk.write(level, request, &mut Cursor::default(), &mut written);
        debug_assert_eq!(written.len(), length);
        out = Some(written);
    }
    let scan = walk.scan;
    SPARE_PLAN.set(walk.into_spare());
    Ok((out, scan))
}

/// The plan of a rewrite (lengths and edits), in buffers that one rewrite leaves to the next
/// on the same thread: growing them anew for every request was about half of the receiving
/// path's time in `malloc` (perf, 100k spans/s with analytics on).
#[derive(Default)]
struct Plan {
    lengths: Vec<usize>,
    edits: Vec<PlannedEdit>,
    added: Vec<u8>,
    dropped: Vec<usize>,
}

/// Buffers grown past this by an unusually large request are freed rather than kept.
const MAX_SPARE_BYTES: usize = 1 << 20;

thread_local! {
    static SPARE_PLAN: std::cell::Cell<Option<Plan>> = const { std::cell::Cell::new(None) };
}

/// The edit of one visited resource or record: ranges into the walk's buffers.
struct PlannedEdit {
    added: std::ops::Range<usize>,
    dropped: std::ops::Range<usize>,
}

impl PlannedEdit {
    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.dropped.is_empty()
    }
}

/// Both passes of a rewrite: `measure` walks and validates, asks the visitor, and records the
/// new length of every message it enters (in visiting order); `write` walks again and emits.
struct Walk<'v, 'a> {
    visitor: Option<&'v mut dyn Visitor>,
    scan: Scan,
    /// The attributes of the resource or record being visited, reused from one to the next.
    attributes: Vec<Attribute<'a>>,
    plan: Plan,
}

#[derive(Default)]
struct Cursor {
    length: usize,
    edit: usize,
}

impl<'v, 'a> Walk<'v, 'a> {
    /// A walk that plans into `plan`'s buffers, emptied first (see [`Plan`]).
    fn new(visitor: Option<&'v mut dyn Visitor>, mut plan: Plan) -> Walk<'v, 'a> {
        plan.lengths.clear();
        plan.edits.clear();
        plan.added.clear();
        plan.dropped.clear();
        Walk {
            visitor,
            scan: Scan::default(),
            attributes: Vec::new(),
            plan,
        }
    }

    /// The buffers for the next rewrite, unless this one grew them too large to keep.
    fn into_spare(self) -> Option<Plan> {
        let plan = self.plan;
        let bytes = plan.lengths.capacity() * size_of::<usize>()
            + plan.edits.capacity() * size_of::<PlannedEdit>()
            + plan.added.capacity()
            + plan.dropped.capacity() * size_of::<usize>();
        (bytes <= MAX_SPARE_BYTES).then_some(plan)
    }

    /// Validates `message` as `level`, plans its edits, and returns its new length.
    fn measure(&mut self, level: &Level, message: &'a [u8]) -> Result<usize, WireError> {
        let slot = self.plan.lengths.len();
        if self.visitor.is_some() {
            self.plan.lengths.push(0);
        }
        let mut length = 0;
        let mut has_resource = false;
        // Resources and records have no levels below them, so one buffer serves them all.
        let mut attributes = std::mem::take(&mut self.attributes);
        attributes.clear();
        let mut ids = (0, 0);
        let mut span_kind = 0;
        let mut counts = [0usize; 8];
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
                let inner = self
                    .measure(child, field.bytes().map_err(|e| at(e.into()))?)
                    .map_err(at)?;
                length += len_field_size(field.number, inner);
                continue;
            }
            length += field.raw.len();
            let visited = self.visitor.is_some();
            match level.role {
                Role::Record(kind) => {
                    if field.number == level.attributes {
                        // Parsed even when nobody looks, so that every path checks the same.
                        let attribute = Attribute::parse(&field)?;
                        if visited {
                            attributes.push(attribute);
                        }
                    } else if Some(field.number) == schema::trace_id_field(kind) {
                        ids.0 = field.bytes()?.len();
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
                _ => {}
            }
        }
        match level.role {
            Role::Record(kind) => {
                self.scan.items += 1;
                let valid = schema::ids_valid(kind, ids);
                self.scan.invalid_ids += usize::from(!valid);
                // A record with invalid ids is removed later; it is not visited.
                let (added, removed) = self.plan(level, message, |visitor, edit| {
                    if !valid {
                        return;
                    }
                    let record = Record {
                        kind,
                        span_kind,
                        attributes: &attributes,
                    };
                    visitor.record(&record, edit);
                });
                length = length + added - removed;
            }
            Role::Resource => {
                let (added, removed) = self.plan(level, message, |visitor, edit| visitor.resource(&attributes, edit));
                length = length + added - removed;
            }
            Role::HoldsResource if !has_resource => {
                let (added, _) = self.plan(&schema::RESOURCE, &[], |visitor, edit| visitor.resource(&[], edit));
                if added > 0 {
                    length += len_field_size(schema::RESOURCE_FIELD, added);
                }
            }
            Role::Container | Role::HoldsResource => {}
        }
        if let Some(slot) = self.plan.lengths.get_mut(slot) {
            *slot = length;
        }
        self.attributes = attributes;
        Ok(length)
    }

    /// Asks the visitor for the edit of one resource or record; returns the bytes it adds and
    /// the bytes of the attributes it leaves out.
    fn plan(
        &mut self,
        level: &Level,
        message: &[u8],
        visit: impl FnOnce(&mut dyn Visitor, &mut Edit<'_>),
    ) -> (usize, usize) {
        let Some(visitor) = self.visitor.as_deref_mut() else {
            return (0, 0);
        };
        let (added_start, dropped_start) = (self.plan.added.len(), self.plan.dropped.len());
        let mut edit = Edit {
            field: level.attributes,
            added: &mut self.plan.added,
            dropped: &mut self.plan.dropped,
            message,
        };
        visit(visitor, &mut edit);
        let dropped = &self.plan.dropped[dropped_start..];
        let removed: usize = if dropped.is_empty() {
            0
        } else {
            fields(message)
                .flatten()
                .filter(|f| dropped.contains(&offset(message, f.raw)))
                .map(|f| f.raw.len())
                .sum()
        };
        self.plan.edits.push(PlannedEdit {
            added: added_start..self.plan.added.len(),
            dropped: dropped_start..self.plan.dropped.len(),
        });
        (self.plan.added.len() - added_start, removed)
    }

    /// Whether `child`, the resource or record `field` holds, is written as it arrived: the
    /// visitor left it unchanged and its header is encoded as [`put_len_header`] would.
    fn keeps_bytes(&self, child: &Level, field: &codec::Field<'_>, bytes: &[u8], cursor: &Cursor) -> bool {
        matches!(child.role, Role::Resource | Role::Record(_))
            && self.plan.edits.get(cursor.edit).is_some_and(PlannedEdit::is_empty)
            && field.raw.len() == len_field_size(field.number, bytes.len())
    }

    /// Emits `message` as planned. The input was validated by `measure`, so malformed fields
    /// cannot occur here.
    fn write(&self, level: &Level, message: &[u8], cursor: &mut Cursor, out: &mut Vec<u8>) {
        cursor.length += 1;
        let has_edit = !matches!(level.role, Role::Container | Role::HoldsResource);
        let edit = if has_edit {
            self.plan.edits.get(cursor.edit)
        } else {
            None
        };
        let dropped = edit.map_or(&[][..], |e| &self.plan.dropped[e.dropped.clone()]);
        let mut has_resource = false;
        // Resources and records have no levels below: without dropped attributes they are
        // copied whole, the additions after them.
        let walked = if has_edit && dropped.is_empty() {
            out.extend_from_slice(message);
            fields(&[])
        } else {
            fields(message)
        };
        let mut copied = Run::new(message);
        for field in walked.flatten() {
            match (level.child(field.number), field.value) {
                (Some((_, child)), codec::Value::Len(bytes)) => {
                    has_resource |= matches!(child.role, Role::Resource);
                    if self.keeps_bytes(child, &field, bytes, cursor) {
                        cursor.length += 1;
                        cursor.edit += 1;
                        copied.add(field.raw, out);
                        continue;
                    }
                    copied.finish(out);
                    let length = self.plan.lengths[cursor.length];
                    put_len_header(out, field.number, length);
                    self.write(child, bytes, cursor, out);
                }
                _ if dropped.contains(&offset(message, field.raw)) => {}
                _ => copied.add(field.raw, out),
            }
        }
        copied.finish(out);
        if has_edit {
            if let Some(edit) = edit {
                out.extend_from_slice(&self.plan.added[edit.added.clone()]);
            }
            cursor.edit += 1;
        } else if matches!(level.role, Role::HoldsResource) && !has_resource {
            if let Some(edit) = self.plan.edits.get(cursor.edit).filter(|e| !e.is_empty()) {
                let added = &self.plan.added[edit.added.clone()];
                put_len_header(out, schema::RESOURCE_FIELD, added.len());
                out.extend_from_slice(added);
            }
            cursor.edit += 1;
        }
    }
}

/// Fields copied as they arrived, gathered while they follow each other in the message, so
/// that the unchanged records between two edited ones cost one copy.
struct Run<'m> {
    message: &'m [u8],
    pending: std::ops::Range<usize>,
}

impl<'m> Run<'m> {
    fn new(message: &'m [u8]) -> Run<'m> {
        Run { message, pending: 0..0 }
    }

    fn add(&mut self, raw: &[u8], out: &mut Vec<u8>) {
        let start = offset(self.message, raw);
        if start != self.pending.end {
            self.finish(out);
            self.pending = start..start;
        }
        self.pending.end += raw.len();
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.message[self.pending.clone()]);
        self.pending.start = self.pending.end;
    }
}

/// Where `part` starts within `message`, which contains it.
fn offset(message: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - message.as_ptr() as usize
}

#[cfg(test)]
mod tests;
