//! The base layer: OTLP's vocabulary as fleetpipe reads and writes it. Signals, the payload
//! (decoded export requests), [`Request`] (what travels the data path, as protobuf bytes),
//! the wire walker and codec, the field numbers of the messages we read, and the
//! semantic-convention keys we recognise. It imports nothing else of fleetpipe's.

pub mod fields;
mod json;
mod payload;
mod request;
pub mod semconv;
pub mod split;
pub mod wire;

pub use payload::{DecodeError, ExportResponse, Payload, Rejected, Signal};
pub use request::Request;
