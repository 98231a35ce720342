//! Attribute names: the semantic-convention keys fleetpipe reads, found by one lookup that
//! enrichment, the integration matcher and analytics share ([`Key::of`]), and the names of
//! the tags fleetpipe writes ([`TagNames`]; see `docs/architecture.md`, "Names on the wire").

/// The event name of the log records that carry anomaly findings.
pub const ANOMALY_EVENT: &str = "fleetpipe.anomaly";

/// Resource attribute naming the client whose token sent the data (`tokens:` of a receiver's
/// `auth`).
pub const CLIENT: &str = "fleetpipe.client";

/// An attribute key fleetpipe reads: the OpenTelemetry semantic conventions' (GenAI, MCP,
/// HTTP, RPC, messaging, database) and the other spellings of GenAI names that enrichment
/// maps to them (deprecated names, OpenInference, OpenLLMetry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    GenAiOperationName,
    GenAiToolName,
    GenAiRequestModel,
    GenAiProviderName,
    GenAiUsageInputTokens,
    GenAiUsageOutputTokens,
    GenAiResponseModel,
    GenAiUsageCacheReadInputTokens,
    GenAiUsageCacheWriteInputTokens,
    GenAiUsageReasoningOutputTokens,
    GenAiConversationId,
    GenAiAgentId,
    GenAiAgentName,
    GenAiAgentVersion,
    McpMethodName,
    ServerAddress,
    UrlFull,
    PeerService,
    RpcService,
    MessagingDestinationName,
    DbSystemName,
    ErrorType,
    HttpResponseStatusCode,
    RpcGrpcStatusCode,
    /// Other spellings, from here on.
    GenAiSystem,
    LlmProvider,
    LlmSystem,
    GenAiUsagePromptTokens,
    LlmUsagePromptTokens,
    LlmTokenCountPrompt,
    GenAiUsageCompletionTokens,
    /// `gen_ai.usage.cache_creation.input_tokens`, before `cache_write`.
    GenAiUsageCacheCreationInputTokens,
    LlmUsageCompletionTokens,
    LlmTokenCountCompletion,
    /// OpenLLMetry's cache token counts, Anthropic's names under `gen_ai.usage.`.
    OpenLlmetryCacheReadInputTokens,
    OpenLlmetryCacheCreationInputTokens,
    /// OpenInference's cache and reasoning token counts.
    LlmTokenCountPromptCacheRead,
    LlmTokenCountPromptCacheWrite,
    LlmTokenCountCompletionReasoning,
    ToolName,
    LlmModelName,
    TraceloopEntityName,
    TraceloopSpanKind,
    OpenInferenceSpanKind,
}

impl Key {
    /// The key `key` is, if fleetpipe reads it. Runs for every attribute of every record: the
    /// keys differ in length, first or last byte, so those pick the one key to compare with,
    /// a comparison of known length that the compiler writes as a few word loads rather than
    /// a byte-by-byte `match` on whole keys (`cargo bench --bench enrich`).
    #[inline(always)]
    pub fn of(key: &[u8]) -> Option<Key> {
        use Key::*;
        Some(match (key.len(), *key.first()?, *key.last()?) {
            (21, b'g', b'e') if key == b"gen_ai.operation.name" => GenAiOperationName,
            (16, b'g', b'e') if key == b"gen_ai.tool.name" => GenAiToolName,
            (20, b'g', b'l') if key == b"gen_ai.request.model" => GenAiRequestModel,
            (20, b'g', b'e') if key == b"gen_ai.provider.name" => GenAiProviderName,
            (25, b'g', b's') if key == b"gen_ai.usage.input_tokens" => GenAiUsageInputTokens,
            (26, b'g', b's') if key == b"gen_ai.usage.output_tokens" => GenAiUsageOutputTokens,
            (21, b'g', b'l') if key == b"gen_ai.response.model" => GenAiResponseModel,
            (36, b'g', b's') if key == b"gen_ai.usage.cache_read.input_tokens" => GenAiUsageCacheReadInputTokens,
            (37, b'g', b's') if key == b"gen_ai.usage.cache_write.input_tokens" => GenAiUsageCacheWriteInputTokens,
            (36, b'g', b's') if key == b"gen_ai.usage.reasoning.output_tokens" => GenAiUsageReasoningOutputTokens,
            (22, b'g', b'd') if key == b"gen_ai.conversation.id" => GenAiConversationId,
            (15, b'g', b'd') if key == b"gen_ai.agent.id" => GenAiAgentId,
            (17, b'g', b'e') if key == b"gen_ai.agent.name" => GenAiAgentName,
            (20, b'g', b'n') if key == b"gen_ai.agent.version" => GenAiAgentVersion,
            (15, b'm', b'e') if key == b"mcp.method.name" => McpMethodName,
            (14, b's', b's') if key == b"server.address" => ServerAddress,
            (8, b'u', b'l') if key == b"url.full" => UrlFull,
            (12, b'p', b'e') if key == b"peer.service" => PeerService,
            (11, b'r', b'e') if key == b"rpc.service" => RpcService,
            (26, b'm', b'e') if key == b"messaging.destination.name" => MessagingDestinationName,
            (14, b'd', b'e') if key == b"db.system.name" => DbSystemName,
            (10, b'e', b'e') if key == b"error.type" => ErrorType,
            (25, b'h', b'e') if key == b"http.response.status_code" => HttpResponseStatusCode,
            (20, b'r', b'e') if key == b"rpc.grpc.status_code" => RpcGrpcStatusCode,
            (13, b'g', b'm') if key == b"gen_ai.system" => GenAiSystem,
            (12, b'l', b'r') if key == b"llm.provider" => LlmProvider,
            (10, b'l', b'm') if key == b"llm.system" => LlmSystem,
            (26, b'g', b's') if key == b"gen_ai.usage.prompt_tokens" => GenAiUsagePromptTokens,
            (23, b'l', b's') if key == b"llm.usage.prompt_tokens" => LlmUsagePromptTokens,
            (22, b'l', b't') if key == b"llm.token_count.prompt" => LlmTokenCountPrompt,
            (30, b'g', b's') if key == b"gen_ai.usage.completion_tokens" => GenAiUsageCompletionTokens,
            (40, b'g', b's') if key == b"gen_ai.usage.cache_creation.input_tokens" => {
                GenAiUsageCacheCreationInputTokens
            }
            (27, b'l', b's') if key == b"llm.usage.completion_tokens" => LlmUsageCompletionTokens,
            (26, b'l', b'n') if key == b"llm.token_count.completion" => LlmTokenCountCompletion,
            (36, b'g', b's') if key == b"gen_ai.usage.cache_read_input_tokens" => OpenLlmetryCacheReadInputTokens,
            (40, b'g', b's') if key == b"gen_ai.usage.cache_creation_input_tokens" => {
                OpenLlmetryCacheCreationInputTokens
            }
            (41, b'l', b'd') if key == b"llm.token_count.prompt_details.cache_read" => LlmTokenCountPromptCacheRead,
            (42, b'l', b'e') if key == b"llm.token_count.prompt_details.cache_write" => LlmTokenCountPromptCacheWrite,
            (44, b'l', b'g') if key == b"llm.token_count.completion_details.reasoning" => {
                LlmTokenCountCompletionReasoning
            }
            (9, b't', b'e') if key == b"tool.name" => ToolName,
            (14, b'l', b'e') if key == b"llm.model_name" => LlmModelName,
            (21, b't', b'e') if key == b"traceloop.entity.name" => TraceloopEntityName,
            (19, b't', b'd') if key == b"traceloop.span.kind" => TraceloopSpanKind,
            (23, b'o', b'd') if key == b"openinference.span.kind" => OpenInferenceSpanKind,
            _ => return None,
        })
    }
}

/// The names of the registry tags: `<prefix>id`, `<prefix>name`, … on records, and the layer
/// on resources. The enrich processor writes them; analytics reads them under the same names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagNames {
    /// Prefix of the record tags, e.g. `integration.`.
    pub prefix: String,
    /// Resource attribute carrying the agent's operating-model layer.
    pub layer: String,
}

impl Default for TagNames {
    fn default() -> Self {
        TagNames {
            prefix: "integration.".into(),
            layer: "operating_model.layer".into(),
        }
    }
}

/// One of the record tags, by what it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    Id,
    Name,
    Category,
    Kind,
    Connection,
    Registered,
    Target,
}

impl Tag {
    pub const ALL: [Tag; 7] = [
        Tag::Id,
        Tag::Name,
        Tag::Category,
        Tag::Kind,
        Tag::Connection,
        Tag::Registered,
        Tag::Target,
    ];

    /// The tag's name after the prefix.
    pub fn suffix(self) -> &'static str {
        match self {
            Tag::Id => "id",
            Tag::Name => "name",
            Tag::Category => "category",
            Tag::Kind => "kind",
            Tag::Connection => "connection",
            Tag::Registered => "registered",
            Tag::Target => "target",
        }
    }

    /// The tag `suffix` names.
    fn of_suffix(suffix: &[u8]) -> Option<Tag> {
        Some(match suffix {
            b"id" => Tag::Id,
            b"name" => Tag::Name,
            b"category" => Tag::Category,
            b"kind" => Tag::Kind,
            b"connection" => Tag::Connection,
            b"registered" => Tag::Registered,
            b"target" => Tag::Target,
            _ => return None,
        })
    }
}

impl TagNames {
    /// The full name of `tag`.
    pub fn name(&self, tag: Tag) -> String {
        format!("{}{}", self.prefix, tag.suffix())
    }

    /// Whether `key` starts with the tag prefix. The first byte is compared on its own: it
    /// tells most keys apart without a call to `memcmp` (`cargo bench --bench enrich`).
    #[inline]
    pub fn has_prefix(&self, key: &[u8]) -> bool {
        let prefix = self.prefix.as_bytes();
        match (key.first(), prefix.first()) {
            (Some(k), Some(p)) => k == p && key.starts_with(prefix),
            (_, None) => true,
            (None, Some(_)) => false,
        }
    }

    /// The record tag `key` is, if it is one.
    #[inline]
    pub fn tag(&self, key: &[u8]) -> Option<Tag> {
        if !self.has_prefix(key) {
            return None;
        }
        Tag::of_suffix(&key[self.prefix.len()..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: the keys are told apart by their whole name: a key one byte off, wherever
    /// that byte is, is none of them.
    #[test]
    fn keys_are_found_by_their_exact_name() {
        let names: &[&[u8]] = &[
            b"gen_ai.operation.name",
            b"gen_ai.tool.name",
            b"gen_ai.request.model",
            b"gen_ai.provider.name",
            b"gen_ai.usage.input_tokens",
            b"gen_ai.usage.output_tokens",
            b"gen_ai.response.model",
            b"gen_ai.usage.cache_read.input_tokens",
            b"gen_ai.usage.cache_write.input_tokens",
            b"gen_ai.usage.reasoning.output_tokens",
            b"gen_ai.conversation.id",
            b"gen_ai.agent.id",
            b"gen_ai.agent.name",
            b"gen_ai.agent.version",
            b"mcp.method.name",
            b"server.address",
            b"url.full",
            b"peer.service",
            b"rpc.service",
            b"messaging.destination.name",
            b"db.system.name",
            b"error.type",
            b"http.response.status_code",
            b"rpc.grpc.status_code",
            b"gen_ai.system",
            b"llm.provider",
            b"llm.system",
            b"gen_ai.usage.prompt_tokens",
            b"llm.usage.prompt_tokens",
            b"llm.token_count.prompt",
            b"gen_ai.usage.completion_tokens",
            b"gen_ai.usage.cache_creation.input_tokens",
            b"llm.usage.completion_tokens",
            b"llm.token_count.completion",
            b"tool.name",
            b"llm.model_name",
            b"traceloop.entity.name",
            b"traceloop.span.kind",
            b"openinference.span.kind",
            b"gen_ai.usage.cache_read_input_tokens",
            b"gen_ai.usage.cache_creation_input_tokens",
            b"llm.token_count.prompt_details.cache_read",
            b"llm.token_count.prompt_details.cache_write",
            b"llm.token_count.completion_details.reasoning",
        ];
        let mut found: Vec<Key> = Vec::new();
        for name in names {
            let key = Key::of(name).unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(name)));
            assert!(!found.contains(&key), "{key:?} twice");
            found.push(key);
            for at in 0..name.len() {
                let mut near = name.to_vec();
                near[at] ^= 0x20;
                assert_eq!(Key::of(&near), None, "{}", String::from_utf8_lossy(&near));
            }
        }
        assert_eq!(Key::of(b""), None);
        assert_eq!(Key::of(b"service.name"), None);
    }

    /// Guarantees: tags are found under any prefix, and only their exact names are.
    #[test]
    fn finds_tags_under_a_prefix() {
        let names = TagNames {
            prefix: "fp.".into(),
            layer: "fp.layer".into(),
        };
        for tag in Tag::ALL {
            assert_eq!(names.tag(names.name(tag).as_bytes()), Some(tag));
            assert_eq!(TagNames::default().tag(names.name(tag).as_bytes()), None);
        }
        assert_eq!(names.tag(b"fp."), None);
        assert_eq!(names.tag(b"fp.idx"), None);
        assert_eq!(names.tag(b"integration.id"), None);
    }
}
