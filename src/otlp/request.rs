//! [`Request`]: what travels the data path between receivers and exporters.

use bytes::Bytes;

use super::wire::{self, Visitor, WireError};
use super::{DecodeError, Payload, Rejected, Signal};

/// One or more export requests of one signal, as protobuf bytes. Receivers check the framing
/// and count the records once; processors rewrite the bytes in place of decoding them; the
/// batch step joins requests by joining their bytes (concatenated export requests are one
/// export request in protobuf); exporters send the bytes as they are.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    signal: Signal,
    parts: Vec<Bytes>,
    /// Of each part, [`wire::Scan::highest_trace_randomness`].
    highest_trace_randomness: Vec<u64>,
    items: usize,
}

impl Request {
    /// Takes a received protobuf body: checks its framing and counts its records, applying
    /// `visitor` (a pipeline's processor) in the same walk when there is one. Records whose
    /// ids no backend can store are removed, as OTLP's partial success allows; only then is
    /// the request decoded and encoded again.
    pub fn from_protobuf(
        signal: Signal,
        body: Bytes,
        visitor: Option<&mut dyn Visitor>,
    ) -> Result<(Request, Rejected), DecodeError> {
        let malformed = |source| DecodeError::Wire { signal, source };
        // Records with invalid ids are left out in the walk that checks the request.
        let (body, scan) = match visitor {
            Some(visitor) => {
                let (rewritten, scan) = wire::rewrite(signal, &body, visitor).map_err(malformed)?;
                (rewritten.map_or(body, Bytes::from), scan)
            }
            None => match wire::scan(signal, &body).map_err(malformed)? {
                scan if scan.invalid_ids == 0 => (body, scan),
                _ => {
                    let (rewritten, scan) = wire::without_invalid_records(signal, &body).map_err(malformed)?;
                    (Bytes::from(rewritten), scan)
                }
            },
        };
        let request = Request {
            signal,
            parts: vec![body],
            highest_trace_randomness: vec![scan.highest_trace_randomness],
            items: scan.items - scan.invalid_ids,
        };
        Ok((request, Rejected::of_invalid_ids(signal, scan.invalid_ids)))
    }

    /// A request this fleetpipe checked before and kept (a disk queue's record, whose CRC
    /// shows it is what was written): not walked again. Its traces' randomness is not known.
    pub fn from_checked(signal: Signal, body: Bytes, items: usize) -> Request {
        Request {
            signal,
            parts: vec![body],
            highest_trace_randomness: vec![u64::MAX],
            items,
        }
    }

    /// A request made of `parts` (each a whole export request, with the highest randomness of
    /// its traces, `u64::MAX` when not known) holding `items` records: a request governed for
    /// one exporter, some of its parts rewritten.
    pub fn from_parts(signal: Signal, parts: Vec<(Bytes, u64)>, items: usize) -> Request {
        let (parts, highest_trace_randomness) = parts.into_iter().unzip();
        Request {
            signal,
            parts,
            highest_trace_randomness,
            items,
        }
    }

    /// Encodes a decoded request, e.g. one received as OTLP/JSON. Its traces' randomness is
    /// not looked at: sampling consumers read it whole.
    pub fn from_payload(payload: &Payload) -> Request {
        Request {
            signal: payload.signal(),
            parts: vec![payload.encode_protobuf()],
            highest_trace_randomness: vec![u64::MAX],
            items: payload.item_count(),
        }
    }

    pub fn signal(&self) -> Signal {
        self.signal
    }

    /// Spans, data points or log records.
    pub fn item_count(&self) -> usize {
        self.items
    }

    /// The protobuf encoding, in parts whose concatenation is the export request.
    pub fn parts(&self) -> &[Bytes] {
        &self.parts
    }

    /// Each part with the highest randomness of its spans' trace ids (see
    /// [`wire::Scan::highest_trace_randomness`]).
    pub fn parts_with_trace_randomness(&self) -> impl Iterator<Item = (&Bytes, u64)> {
        self.parts.iter().zip(self.highest_trace_randomness.iter().copied())
    }

    pub fn encoded_len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }

    /// Appends the other request's records. A request of another signal is a bug in the
    /// caller and is ignored.
    pub fn merge(&mut self, other: Request) {
        if other.signal != self.signal {
            debug_assert!(false, "merge of {} into {}", other.signal, self.signal);
            return;
        }
        self.parts.extend(other.parts);
        self.highest_trace_randomness.extend(other.highest_trace_randomness);
        self.items += other.items;
    }

    /// The request in two halves of its parts (the requests a batch joined), or `None` when it
    /// is one part.
    pub fn split(&self) -> Option<(Request, Request)> {
        if self.parts.len() < 2 {
            return None;
        }
        let middle = self.parts.len() / 2;
        let half = |range: std::ops::Range<usize>| Request {
            signal: self.signal,
            parts: self.parts[range.clone()].to_vec(),
            highest_trace_randomness: self.highest_trace_randomness[range.clone()].to_vec(),
            items: self.parts[range]
                .iter()
                .map(|part| wire::scan(self.signal, part).map_or(0, |scan| scan.items))
                .sum(),
        };
        Some((half(0..middle), half(middle..self.parts.len())))
    }

    /// Applies `visitor` to every resource and record; parts it leaves unchanged keep their bytes.
    pub fn rewrite(&mut self, visitor: &mut dyn Visitor) -> Result<(), WireError> {
        for part in &mut self.parts {
            if let (Some(rewritten), _) = wire::rewrite(self.signal, part, visitor)? {
                *part = Bytes::from(rewritten);
            }
        }
        Ok(())
    }

    /// Decodes the request, for the consumers that work on objects (analytics, debug, file).
    pub fn decode(&self) -> Result<Payload, DecodeError> {
        let mut payload = Payload::empty(self.signal);
        for part in &self.parts {
            payload.merge(Payload::decode_protobuf(self.signal, part)?);
        }
        Ok(payload)
    }
}
