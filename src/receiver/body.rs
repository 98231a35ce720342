//! Reading a request body whole, charged to the memory budget before it is held.
//!
//! Each body gets a buffer of its own, sized to it: a slice of the server's read buffer (what
//! hyper and tonic hand out) would keep that whole buffer alive while the request waits in a
//! queue that counts only the request's bytes.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;

use crate::memory::{Charge, MemoryBudget, OverBudget, Part};

/// Why a body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body exceeds the size limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("request body not received within the read timeout")]
    Timeout,
    #[error("request body arriving slower than {MIN_BODY_RATE} bytes a second")]
    TooSlow,
    #[error("request body could not be read: {0}")]
    Read(String),
    #[error(transparent)]
    Memory(#[from] OverBudget),
}

/// A body read whole, with the memory it takes charged.
pub struct HeldBody {
    pub bytes: Bytes,
    pub charge: Charge,
}

/// Reads `body` (of `declared` bytes when the client said) up to `limit` bytes within
/// `timeout`, charging the budget as it arrives.
pub async fn read(
    body: Body,
    declared: Option<usize>,
    limit: usize,
    memory: &Arc<MemoryBudget>,
    timeout: Duration,
) -> Result<HeldBody, BodyError> {
    if let Some(declared) = declared.filter(|len| *len > limit) {
        if declared <= DRAINED_AT_MOST {
            let _ = tokio::time::timeout(timeout, drain(body)).await;
        }
        return Err(BodyError::TooLarge { limit });
    }
    let expected = declared.unwrap_or(0);
    let charge = memory.admit(Part::Requests, expected)?;
    match tokio::time::timeout(timeout, collect(body, expected, limit, charge)).await {
        Ok(read) => read,
        Err(_) => Err(BodyError::Timeout),
    }
}

/// A body declared over the limit but at most this large is read and thrown away before it is
/// refused: an HTTP/1.1 client writing its whole body before it reads the answer would
/// otherwise see the connection closed under it (a broken pipe) instead of the 413. A larger
/// one is refused at once, so that nobody can make fleetpipe read gigabytes.
const DRAINED_AT_MOST: usize = 8 << 20;

/// Reads `body` to its end, keeping nothing.
async fn drain(mut body: Body) {
    while let Some(Ok(_)) = body.frame().await {}
}

/// After [`BODY_GRACE`], a body must have arrived at this rate at least, on average. A request
/// being answered holds its connection's place (see `server::connections`), so a client that
/// trickles bodies on many connections would otherwise hold the listener for the whole read
/// timeout; a real client, even on a slow link, sends far faster.
pub const MIN_BODY_RATE: u32 = 1024;
const BODY_GRACE: Duration = Duration::from_secs(2);

async fn collect(mut body: Body, expected: usize, limit: usize, mut charge: Charge) -> Result<HeldBody, BodyError> {
    let mut buffer = BytesMut::with_capacity(expected);
    let started = Instant::now();
    loop {
        let due = started + BODY_GRACE + Duration::from_secs(buffer.len() as u64) / MIN_BODY_RATE;
        let Ok(frame) = tokio::time::timeout_at(due, body.frame()).await else {
            return Err(BodyError::TooSlow);
        };
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        let Ok(data) = frame.into_data() else { continue };
        let len = buffer.len() + data.len();
        if len > limit {
            return Err(BodyError::TooLarge { limit });
        }
        if len > buffer.capacity() {
            // Grow by doubling, as `Vec` would, charging the new capacity first, and the old
            // one too while the bytes move to the new.
            let capacity = len.max(buffer.capacity() * 2).min(limit);
            charge.grow((capacity + buffer.capacity()).saturating_sub(charge.bytes()))?;
            buffer.reserve(capacity - buffer.len());
            charge.set(buffer.capacity());
        }
        buffer.extend_from_slice(&data);
    }
    charge.set(buffer.capacity());
    Ok(HeldBody {
        bytes: buffer.freeze(),
        charge,
    })
}
