//! A gRPC codec that passes message bytes through untouched. The receiver decodes them itself
//! so that malformed protobuf is INVALID_ARGUMENT (tonic's prost codec says INTERNAL), and the
//! exporter encodes a batch once and re-sends the same bytes on every retry.

use bytes::{Buf, BufMut, Bytes};
use tonic::Status;
use tonic::codec::{
    BufferSettings, Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings, EncodeBuf, Encoder,
};
use tonic::server::Grpc;

/// A unary gRPC server on the raw codec that accepts gzip and zstd requests up to
/// `max_message_bytes` (after decompression) and answers uncompressed.
pub fn unary_server(max_message_bytes: usize) -> Grpc<RawCodec> {
    let mut accepted = EnabledCompressionEncodings::default();
    accepted.enable(CompressionEncoding::Gzip);
    accepted.enable(CompressionEncoding::Zstd);
    Grpc::new(RawCodec)
        .apply_compression_config(accepted, EnabledCompressionEncodings::default())
        .apply_max_message_size_config(Some(max_message_bytes), None)
}

/// Encodes and decodes `Bytes` as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

#[derive(Debug, Clone, Copy, Default)]
pub struct RawEncoder;

#[derive(Debug, Clone, Copy, Default)]
pub struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

/// The buffer tonic reads each message into, and grows by. Its default, 8 KiB, is smaller
/// than an agent's usual export (a 100-span request is about 32 KiB): the buffer was grown and
/// copied before every such request could be read (`benches/process_instructions.sh`).
const MESSAGE_BUFFER_BYTES: usize = 64 * 1024;
/// tonic's default; it only batches the messages of streaming calls.
const YIELD_THRESHOLD_BYTES: usize = 32 * 1024;

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::new(MESSAGE_BUFFER_BYTES, YIELD_THRESHOLD_BYTES)
    }

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
