//! OTLP/JSON, read as the specification asks of receivers and written as the proto3 JSON
//! mapping spells it.
//!
//! Beyond the generated serde types, reading accepts the proto's snake_case field names,
//! doubles written as `"NaN"`, `"Infinity"`, `"-Infinity"` or a numeric string ([`doubles`]),
//! and refuses, naming it, a metric oneof the types would silently drop ([`oneofs`]).
//! Writing spells NaN and the infinities out instead of serde_json's `null`.

mod doubles;
mod oneofs;

use doubles::Direction;

use super::{DecodeError, Payload, Signal};

pub(super) fn decode(signal: Signal, bytes: &[u8]) -> Result<Payload, DecodeError> {
    let (scan, rewritten) = doubles::rewrite(bytes, Direction::Read);
    let text = rewritten.as_deref().unwrap_or(bytes);
    let wrap = |source| DecodeError::Json { signal, source };
    // The usual case is decoded straight into the types: through `serde_json::Value` a body
    // takes about 40 times its size in memory.
    let value = if scan.snake_case_key {
        let mut value: serde_json::Value = serde_json::from_slice(text).map_err(wrap)?;
        camel_case_keys(&mut value);
        Some(value)
    } else {
        None
    };
    let mut payload = match &value {
        None => from_text(signal, text).map_err(wrap)?,
        Some(value) => from_value(signal, value).map_err(wrap)?,
    };
    if oneofs::kept(&payload) < scan.oneof_values {
        let value = match value {
            Some(value) => value,
            None => serde_json::from_slice(text).map_err(wrap)?,
        };
        if let Some(lost) = oneofs::first_lost(&value) {
            return Err(DecodeError::JsonOneof {
                signal,
                path: lost.path,
                problem: lost.problem,
            });
        }
    }
    if scan.specials > 0 {
        doubles::restore(&mut payload);
    }
    Ok(payload)
}

fn from_text(signal: Signal, text: &[u8]) -> Result<Payload, serde_json::Error> {
    Ok(match signal {
        Signal::Traces => Payload::Traces(serde_json::from_slice(text)?),
        Signal::Metrics => Payload::Metrics(serde_json::from_slice(text)?),
        Signal::Logs => Payload::Logs(serde_json::from_slice(text)?),
    })
}

fn from_value(signal: Signal, value: &serde_json::Value) -> Result<Payload, serde_json::Error> {
    use serde::Deserialize;
    Ok(match signal {
        Signal::Traces => Payload::Traces(Deserialize::deserialize(value)?),
        Signal::Metrics => Payload::Metrics(Deserialize::deserialize(value)?),
        Signal::Logs => Payload::Logs(Deserialize::deserialize(value)?),
    })
}

pub(super) fn encode(payload: &Payload) -> Vec<u8> {
    if doubles::has_special(payload) {
        let mut copy = payload.clone();
        doubles::to_sentinels(&mut copy);
        let text = to_text(&copy);
        let (_, rewritten) = doubles::rewrite(&text, Direction::Write);
        return rewritten.unwrap_or(text);
    }
    to_text(payload)
}

fn to_text(payload: &Payload) -> Vec<u8> {
    let encoded = match payload {
        Payload::Traces(r) => serde_json::to_vec(r),
        Payload::Metrics(r) => serde_json::to_vec(r),
        Payload::Logs(r) => serde_json::to_vec(r),
    };
    // The OTLP types serialise infallibly: keys are strings.
    encoded.unwrap_or_default()
}

/// Rewrites `snake_case` object keys to `lowerCamelCase`. In OTLP/JSON every object key is a
/// field name (attribute keys are values of `key` fields), so the rewrite cannot touch data.
fn camel_case_keys(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if map.keys().any(|k| k.contains('_')) {
                let entries = std::mem::take(map);
                for (key, value) in entries {
                    map.insert(to_lower_camel(&key), value);
                }
            }
            map.values_mut().for_each(camel_case_keys);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(camel_case_keys),
        _ => {}
    }
}

fn to_lower_camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper_next = false;
    for c in key.chars() {
        if c == '_' {
            upper_next = true;
        } else if upper_next {
            out.extend(c.to_uppercase());
            upper_next = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests;
