//! Reading and writing protobuf wire format by hand: fields of one message, varints, and the
//! OTLP `KeyValue` attributes that enrichment appends.

/// Wire types of the protobuf encoding (groups, 3 and 4, are not used by OTLP and refused).
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

use crate::otlp::fields::{any_value, key_value};

/// What is wrong with the bytes of one message, without the path to it (see `WireError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("truncated varint")]
    TruncatedVarint,
    #[error("varint longer than 10 bytes")]
    LongVarint,
    #[error("field number 0")]
    FieldZero,
    #[error("field {field}: wire type {wire_type} is not used by OTLP")]
    WireType { field: u32, wire_type: u8 },
    #[error("field {field}: length {length} runs past the end of the message")]
    Truncated { field: u32, length: u64 },
    #[error("field {field}: expected wire type {expected}, found {found}")]
    UnexpectedType { field: u32, expected: u8, found: u8 },
    #[error("field {field}: invalid UTF-8")]
    Utf8 { field: u32 },
}

/// The value of one field as it is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Len(&'a [u8]),
}

impl Value<'_> {
    fn wire_type(&self) -> u8 {
        match self {
            Value::Varint(_) => VARINT,
            Value::Fixed64(_) => FIXED64,
            Value::Fixed32(_) => FIXED32,
            Value::Len(_) => LEN,
        }
    }
}

/// One field of a message: its number, value, and the bytes it occupies (tag included), so
/// that it can be copied unchanged.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    pub number: u32,
    pub value: Value<'a>,
    pub raw: &'a [u8],
}

impl<'a> Field<'a> {
    /// The payload of a length-delimited field; any other wire type is malformed here.
    pub fn bytes(&self) -> Result<&'a [u8], Malformed> {
        match self.value {
            Value::Len(bytes) => Ok(bytes),
            other => Err(Malformed::UnexpectedType {
                field: self.number,
                expected: LEN,
                found: other.wire_type(),
            }),
        }
    }

    pub fn varint(&self) -> Result<u64, Malformed> {
        match self.value {
            Value::Varint(v) => Ok(v),
            other => Err(Malformed::UnexpectedType {
                field: self.number,
                expected: VARINT,
                found: other.wire_type(),
            }),
        }
    }

    /// The value of a `fixed64`, `sfixed64` or `double` field, as its 64 bits.
    pub fn fixed64(&self) -> Result<u64, Malformed> {
        match self.value {
            Value::Fixed64(v) => Ok(v),
            other => Err(Malformed::UnexpectedType {
                field: self.number,
                expected: FIXED64,
                found: other.wire_type(),
            }),
        }
    }

    pub fn str(&self) -> Result<&'a str, Malformed> {
        std::str::from_utf8(self.bytes()?).map_err(|_| Malformed::Utf8 { field: self.number })
    }
}

/// The fields of one message, in wire order.
pub struct Fields<'a> {
    rest: &'a [u8],
}

pub fn fields(message: &[u8]) -> Fields<'_> {
    Fields { rest: message }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, Malformed>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let field = self.read_field();
        if field.is_err() {
            self.rest = &[];
        }
        Some(field)
    }
}

impl<'a> Fields<'a> {
    // Inlined into the walk rather than returning the field through memory
    // (`cargo bench --bench pipeline receive`).
    #[inline(always)]
    fn read_field(&mut self) -> Result<Field<'a>, Malformed> {
        match self.read_well_formed_field() {
            Some(field) => Ok(field),
            None => Err(self.malformed()),
        }
    }

    /// The next field, or `None` when it is malformed: no error is built at each step, only
    /// once when one is found (`benches/instructions.sh`).
    #[inline(always)]
    fn read_well_formed_field(&mut self) -> Option<Field<'a>> {
        let start = self.rest;
        let mut rest = start;
        let tag = read_varint(&mut rest).ok()?;
        let number = u32::try_from(tag >> 3).ok().filter(|number| *number != 0)?;
        let value = match (tag & 7) as u8 {
            LEN => {
                let length = usize::try_from(read_varint(&mut rest).ok()?).ok()?;
                let (payload, after) = rest.split_at_checked(length)?;
                rest = after;
                Value::Len(payload)
            }
            VARINT => Value::Varint(read_varint(&mut rest).ok()?),
            FIXED64 => {
                let (bytes, after) = rest.split_first_chunk::<8>()?;
                rest = after;
                Value::Fixed64(u64::from_le_bytes(*bytes))
            }
            FIXED32 => {
                let (bytes, after) = rest.split_first_chunk::<4>()?;
                rest = after;
                Value::Fixed32(u32::from_le_bytes(*bytes))
            }
            _ => return None,
        };
        self.rest = rest;
        Some(Field {
            number,
            value,
            raw: &start[..start.len() - rest.len()],
        })
    }

    /// What is wrong with the next field, which `read_well_formed_field` refused.
    #[cold]
    fn malformed(&self) -> Malformed {
        let mut rest = self.rest;
        let tag = match read_varint(&mut rest) {
            Ok(tag) => tag,
            Err(error) => return error,
        };
        let number = match u32::try_from(tag >> 3) {
            Ok(number) if number != 0 => number,
            _ => return Malformed::FieldZero,
        };
        let wire_type = (tag & 7) as u8;
        let length = match wire_type {
            VARINT => return read_varint(&mut rest).err().unwrap_or(Malformed::TruncatedVarint),
            FIXED64 => 8,
            FIXED32 => 4,
            LEN => match read_varint(&mut rest) {
                Ok(length) => length,
                Err(error) => return error,
            },
            _ => {
                return Malformed::WireType {
                    field: number,
                    wire_type,
                };
            }
        };
        Malformed::Truncated { field: number, length }
    }
}

#[inline]
fn read_varint(bytes: &mut &[u8]) -> Result<u64, Malformed> {
    // Tags and most lengths are one byte.
    if let Some(&byte) = bytes.first()
        && byte < 0x80
    {
        *bytes = &bytes[1..];
        return Ok(u64::from(byte));
    }
    let mut value = 0u64;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *bytes = &bytes[i + 1..];
            return Ok(value);
        }
    }
    if bytes.len() >= 10 {
        Err(Malformed::LongVarint)
    } else {
        Err(Malformed::TruncatedVarint)
    }
}

pub fn varint_len(value: u64) -> usize {
    // 1 byte per started group of 7 bits; 0 takes one byte.
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_tag(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire_type));
}

/// The bytes a length-delimited field of `length` payload bytes takes, tag included.
pub fn len_field_size(field: u32, length: usize) -> usize {
    varint_len(u64::from(field) << 3) + varint_len(length as u64) + length
}

/// Writes the tag and length of a length-delimited field; the caller writes the payload.
pub fn put_len_header(out: &mut Vec<u8>, field: u32, length: usize) {
    put_tag(out, field, LEN);
    put_varint(out, length as u64);
}

/// An attribute as found on the wire: its key and its `AnyValue`, still encoded.
#[derive(Debug, Clone, Copy)]
pub struct Attribute<'a> {
    /// The key's bytes: compared, never validated as UTF-8 (it is forwarded as received).
    pub key: &'a [u8],
    /// The encoded `AnyValue` message.
    pub value: &'a [u8],
    /// The whole attribute field in the enclosing message, to leave it out when replaced.
    pub raw: &'a [u8],
}

impl<'a> Attribute<'a> {
    /// Reads one `KeyValue` field of a record.
    #[inline]
    pub fn parse(field: &Field<'a>) -> Result<Attribute<'a>, Malformed> {
        let message = field.bytes()?;
        match Attribute::canonical(message, field.raw) {
            Some(attribute) => Ok(attribute),
            None => Attribute::parse_fields(message, field.raw),
        }
    }

    /// The layout encoders write: the key, then the value, each under 128 bytes, nothing
    /// else. Read without the field loop: every record's every attribute is read this way,
    /// on each path through fleetpipe.
    #[inline(always)]
    fn canonical(message: &'a [u8], raw: &'a [u8]) -> Option<Attribute<'a>> {
        const KEY_TAG: u8 = (key_value::KEY as u8) << 3 | LEN;
        const VALUE_TAG: u8 = (key_value::VALUE as u8) << 3 | LEN;
        let [KEY_TAG, key_length, rest @ ..] = message else {
            return None;
        };
        let key_length = usize::from(*key_length);
        if key_length >= 0x80 || key_length > rest.len() {
            return None;
        }
        let (key, rest) = rest.split_at(key_length);
        match rest {
            [VALUE_TAG, value_length, value @ ..]
                if *value_length < 0x80 && usize::from(*value_length) == value.len() =>
            {
                Some(Attribute { key, value, raw })
            }
            _ => None,
        }
    }

    /// Any other layout, field by field; the last key and value win, as in protobuf.
    fn parse_fields(message: &'a [u8], raw: &'a [u8]) -> Result<Attribute<'a>, Malformed> {
        let mut attribute = Attribute {
            key: &[],
            value: &[],
            raw,
        };
        for inner in fields(message) {
            let inner = inner?;
            match inner.number {
                key_value::KEY => attribute.key = inner.bytes()?,
                key_value::VALUE => attribute.value = inner.bytes()?,
                _ => {}
            }
        }
        Ok(attribute)
    }

    pub fn has_key(&self, key: &str) -> bool {
        self.key == key.as_bytes()
    }

    /// The value when it is a string; `None` for other types and for invalid UTF-8.
    pub fn string(&self) -> Option<&'a str> {
        any_value_string(self.value)
    }

    /// The bytes of the value when it is a string, for comparing with known values or for
    /// checking later: in the usual layout the UTF-8 check is left out.
    pub fn string_bytes(&self) -> Option<&'a [u8]> {
        usual_string(self.value).or_else(|| self.string().map(str::as_bytes))
    }
}

/// An encoded `AnyValue`, read without copying.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AnyValueRef<'a> {
    String(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
    /// Arrays and key-value lists, as the whole encoded `AnyValue`: rare in agent telemetry,
    /// left to the reader to decode.
    Nested(&'a [u8]),
}

impl<'a> AnyValueRef<'a> {
    /// `None` for an empty `AnyValue` and for bytes that are not one (invalid UTF-8 included).
    #[inline]
    pub fn read(any_value: &'a [u8]) -> Option<AnyValueRef<'a>> {
        if let Some(bytes) = usual_string(any_value) {
            return std::str::from_utf8(bytes).ok().map(AnyValueRef::String);
        }
        let mut found = None;
        for field in fields(any_value) {
            let field = field.ok()?;
            found = Some(match field.number {
                any_value::STRING => AnyValueRef::String(field.str().ok()?),
                any_value::BOOL => AnyValueRef::Bool(field.varint().ok()? != 0),
                any_value::INT | any_value::STRING_INDEX => AnyValueRef::Int(field.varint().ok()? as i64),
                any_value::DOUBLE => AnyValueRef::Double(f64::from_bits(field.fixed64().ok()?)),
                any_value::ARRAY | any_value::KVLIST => AnyValueRef::Nested(any_value),
                any_value::BYTES => AnyValueRef::Bytes(field.bytes().ok()?),
                _ => continue,
            });
        }
        found
    }
}

/// The string of an encoded `AnyValue`, when it holds one.
pub fn any_value_string(any_value: &[u8]) -> Option<&str> {
    match AnyValueRef::read(any_value)? {
        AnyValueRef::String(s) => Some(s),
        _ => None,
    }
}

/// The string's bytes of an `AnyValue` in the layout encoders write (one string field under
/// 128 bytes), read without the field loop and not yet checked as UTF-8.
fn usual_string(any_value: &[u8]) -> Option<&[u8]> {
    const STRING_TAG: u8 = (any_value::STRING as u8) << 3 | LEN;
    match any_value {
        [STRING_TAG, length @ 0..0x80, string @ ..] if usize::from(*length) == string.len() => Some(string),
        _ => None,
    }
}

/// A value to write into a new attribute.
#[derive(Debug, Clone, Copy)]
pub enum NewValue<'a> {
    String(&'a str),
    Bool(bool),
    /// An `AnyValue` copied as encoded, e.g. from the attribute it is an alias of.
    Encoded(&'a [u8]),
}

impl<'a> NewValue<'a> {
    /// The value when it is a string.
    pub fn string(&self) -> Option<&'a str> {
        match self {
            NewValue::String(s) => Some(s),
            NewValue::Bool(_) => None,
            NewValue::Encoded(bytes) => any_value_string(bytes),
        }
    }

    fn encoded_len(&self) -> usize {
        match self {
            NewValue::String(s) => len_field_size(any_value::STRING, s.len()),
            NewValue::Bool(_) => 2,
            NewValue::Encoded(bytes) => bytes.len(),
        }
    }

    fn put(&self, out: &mut Vec<u8>) {
        match self {
            NewValue::String(s) => {
                put_len_header(out, any_value::STRING, s.len());
                out.extend_from_slice(s.as_bytes());
            }
            NewValue::Bool(b) => {
                put_tag(out, any_value::BOOL, VARINT);
                out.push(u8::from(*b));
            }
            NewValue::Encoded(bytes) => out.extend_from_slice(bytes),
        }
    }
}

/// Writes one `KeyValue` as field `field` of the enclosing message.
pub fn put_attribute(out: &mut Vec<u8>, field: u32, key: &str, value: NewValue<'_>) {
    let value_len = value.encoded_len();
    let inner = len_field_size(key_value::KEY, key.len()) + len_field_size(key_value::VALUE, value_len);
    put_len_header(out, field, inner);
    put_len_header(out, key_value::KEY, key.len());
    out.extend_from_slice(key.as_bytes());
    put_len_header(out, key_value::VALUE, value_len);
    value.put(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Proto;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use prost::Message;

    /// Guarantees: varint lengths agree with the encoding for edge values.
    #[test]
    fn varints_round_trip() {
        for value in [0, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value), "{value}");
            let mut slice = &out[..];
            assert_eq!(read_varint(&mut slice), Ok(value));
            assert!(slice.is_empty());
        }
    }

    /// Guarantees: fields of each wire type, with one- and two-byte tags, lengths and varints,
    /// read as written, each with its raw bytes.
    #[test]
    fn fields_of_each_wire_type_read_as_written() {
        let long = vec![7u8; 200];
        let mut message = Vec::new();
        put_len_header(&mut message, 1, 3);
        message.extend_from_slice(b"abc");
        put_len_header(&mut message, 2, long.len());
        message.extend_from_slice(&long);
        put_tag(&mut message, 6, VARINT);
        put_varint(&mut message, 300);
        put_tag(&mut message, 7, FIXED64);
        message.extend_from_slice(&u64::MAX.to_le_bytes());
        put_tag(&mut message, 16, FIXED32);
        message.extend_from_slice(&9u32.to_le_bytes());
        let read: Vec<Field<'_>> = fields(&message).map(|f| f.expect("well formed")).collect();
        let values: Vec<(u32, Value<'_>)> = read.iter().map(|f| (f.number, f.value)).collect();
        assert_eq!(
            values,
            [
                (1, Value::Len(b"abc")),
                (2, Value::Len(&long)),
                (6, Value::Varint(300)),
                (7, Value::Fixed64(u64::MAX)),
                (16, Value::Fixed32(9)),
            ]
        );
        assert_eq!(read.iter().map(|f| f.raw).collect::<Vec<_>>().concat(), message);
    }

    /// Guarantees: attributes written by hand decode with prost as the same KeyValues, and
    /// an encoded value is copied exactly.
    #[test]
    fn written_attributes_decode() {
        let int = AnyValue {
            value: Some(Proto::IntValue(-42)),
        }
        .encode_to_vec();
        let mut out = Vec::new();
        put_attribute(&mut out, 1, "integration.id", NewValue::String("jira"));
        put_attribute(&mut out, 1, "integration.registered", NewValue::Bool(true));
        put_attribute(&mut out, 1, "tokens", NewValue::Encoded(&int));
        let resource = Resource::decode(&out[..]).expect("decodes");
        let kv = |key: &str, value| KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        };
        assert_eq!(
            resource.attributes,
            vec![
                kv("integration.id", Proto::StringValue("jira".into())),
                kv("integration.registered", Proto::BoolValue(true)),
                kv("tokens", Proto::IntValue(-42)),
            ]
        );
        let parsed: Vec<_> = fields(&out)
            .map(|f| Attribute::parse(&f.expect("field")).expect("attribute"))
            .collect();
        assert!(parsed[0].has_key("integration.id"));
        assert_eq!(parsed[0].string(), Some("jira"));
        assert_eq!(parsed[2].string(), None);
        assert_eq!(parsed[2].value, &int[..]);
    }

    /// Guarantees: the shortcut for the usual layout reads every `KeyValue` as the field loop
    /// does, for that layout, for others (value first, long keys, extra fields) and for
    /// damaged bytes.
    #[test]
    fn usual_layout_reads_as_any_other() {
        let string = |s: &str| {
            let mut out = Vec::new();
            NewValue::String(s).put(&mut out);
            out
        };
        let long_key = "k".repeat(200);
        let mut encodings = Vec::new();
        for (key, value) in [
            ("gen_ai.tool.name", string("jira_search")),
            (long_key.as_str(), string("v")),
            ("empty", Vec::new()),
        ] {
            let mut usual = Vec::new();
            put_attribute(&mut usual, 9, key, NewValue::Encoded(&value));
            encodings.push(usual);
        }
        let mut value_first = Vec::new();
        put_len_header(&mut value_first, key_value::VALUE, 3);
        value_first.extend_from_slice(&string("x"));
        put_len_header(&mut value_first, key_value::KEY, 1);
        value_first.push(b'k');
        put_len_header(&mut value_first, 3, 0);
        let mut wrapped = Vec::new();
        put_len_header(&mut wrapped, 9, value_first.len());
        wrapped.extend_from_slice(&value_first);
        encodings.push(wrapped);
        type KeyAndValue = (Vec<u8>, Vec<u8>);
        let read = |bytes: &[u8], usual: bool| -> Option<Result<KeyAndValue, Malformed>> {
            let field = fields(bytes).next()?.ok()?;
            let parsed = match (usual, field.bytes()) {
                (true, _) => Attribute::parse(&field),
                (false, Ok(message)) => Attribute::parse_fields(message, field.raw),
                (false, Err(e)) => Err(e),
            };
            Some(parsed.map(|a| (a.key.to_vec(), a.value.to_vec())))
        };
        let mut compared = 0;
        for encoding in &encodings {
            for position in 0..encoding.len() {
                for byte in [0x00, 0x02, 0x0a, 0x12, 0x7f, 0x80, 0xff] {
                    let mut damaged = encoding.clone();
                    damaged[position] = byte;
                    assert_eq!(read(&damaged, true), read(&damaged, false), "{damaged:?}");
                    compared += 1;
                }
            }
            let intact = read(encoding, true);
            assert!(matches!(intact, Some(Ok(_))), "{encoding:?}");
            assert_eq!(intact, read(encoding, false));
        }
        assert!(compared > 1000);
    }

    /// Guarantees: truncated and impossible input is reported as what it is, never read past,
    /// and ends the walk.
    #[test]
    fn refuses_malformed_fields() {
        let cases: [(&[u8], Malformed); 9] = [
            (&[0x0a, 0x05, 1, 2], Malformed::Truncated { field: 1, length: 5 }),
            (&[0x09, 1, 2, 3], Malformed::Truncated { field: 1, length: 8 }),
            (&[0x0d, 1], Malformed::Truncated { field: 1, length: 4 }),
            (&[0x08], Malformed::TruncatedVarint),
            (&[0x08, 0x80], Malformed::TruncatedVarint),
            (&[0x80], Malformed::TruncatedVarint),
            (&[0xff; 11], Malformed::LongVarint),
            (&[0x00, 0x01], Malformed::FieldZero),
            (&[0x0b], Malformed::WireType { field: 1, wire_type: 3 }),
        ];
        for (bytes, expected) in cases {
            let mut walk = fields(bytes);
            assert_eq!(walk.next().and_then(Result::err), Some(expected), "{bytes:?}");
            assert!(walk.next().is_none(), "{bytes:?}");
        }
    }
}
