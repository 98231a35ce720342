//! What is removed or hashed: attribute key globs, the GenAI content keys, keyed hashing, and
//! the quick look that lets a request without any of those keys through untouched.

use aho_corasick::{AhoCorasick, MatchKind, packed};
use sha2::{Digest, Sha256};

use super::settings::{ContentPolicy, Redaction};

/// GenAI content: prompts, completions, system instructions, tool arguments, results and
/// definitions, in the current conventions' names and the older, OpenInference and
/// OpenLLMetry spellings.
pub const GENAI_CONTENT: &[&str] = &[
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "gen_ai.tool.definitions",
    "gen_ai.prompt",
    "gen_ai.prompt.*",
    "gen_ai.completion",
    "gen_ai.completion.*",
    "llm.input_messages*",
    "llm.output_messages*",
    "llm.prompts*",
    "input.value",
    "output.value",
    "traceloop.entity.input",
    "traceloop.entity.output",
];

/// What becomes of one attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    Keep,
    Remove,
    Hash,
}

/// The compiled redaction of one exporter.
#[derive(Debug)]
pub(super) struct Redactor {
    remove: Vec<String>,
    hash: Vec<String>,
    key: Vec<u8>,
    /// Finds, in one pass over a request's bytes, the places of the text a matching key must
    /// contain: a request without any needs no rewrite, and the rewrite goes down only into
    /// the messages that hold one.
    quick_look: QuickLook,
}

/// The search for needles. Leftmost-first, not overlapping: a key holding a needle still yields
/// a place inside it (needles are text, and a match cannot run across the non-text bytes that
/// frame a key). Teddy, the SIMD searcher, when the machine has it: the automaton's rare-byte
/// prefilter stops at bytes as common in telemetry as `.` and `_`, and took 40 % of the
/// forwarding CPU (`benches/process_cpu.sh`, `content-kept:forwarding`).
#[derive(Debug)]
enum QuickLook {
    Simd(packed::Searcher),
    Automaton(AhoCorasick),
}

impl QuickLook {
    fn new(needles: &[&str]) -> QuickLook {
        let simd = packed::Config::new()
            .match_kind(packed::MatchKind::LeftmostFirst)
            .builder()
            .extend(needles)
            .build();
        match simd {
            Some(searcher) => QuickLook::Simd(searcher),
            // Patterns of text always build; the fallback finds a place everywhere.
            None => QuickLook::Automaton(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostFirst)
                    .build(needles)
                    .unwrap_or_else(|_| AhoCorasick::new([""]).expect("an empty pattern")),
            ),
        }
    }
}

impl Redactor {
    /// `None` when the settings remove and hash nothing. `content_by_default` is whether the
    /// exporter's kind removes GenAI content unless told to keep it.
    pub(super) fn new(settings: &Redaction, content_by_default: ContentPolicy) -> Option<Redactor> {
        let mut remove = settings.remove.clone();
        if settings.genai_content.unwrap_or(content_by_default) == ContentPolicy::Remove {
            remove.extend(GENAI_CONTENT.iter().map(|k| (*k).to_owned()));
        }
        let hash = settings.hash.clone();
        if remove.is_empty() && hash.is_empty() {
            return None;
        }
        let needles: Vec<&str> = remove.iter().chain(&hash).map(|glob| needle(glob)).collect();
        let quick_look = QuickLook::new(&needles);
        Some(Redactor {
            remove,
            hash,
            key: settings.hash_key.clone().unwrap_or_default().into_bytes(),
            quick_look,
        })
    }

    /// Where in `request` a key this removes or hashes may be: the offsets of the text such a
    /// key must hold, in order; none when the request needs no rewrite.
    pub(super) fn places(&self, request: &[u8]) -> Vec<usize> {
        match &self.quick_look {
            QuickLook::Simd(searcher) => searcher.find_iter(request).map(|m| m.start()).collect(),
            QuickLook::Automaton(automaton) => automaton.find_iter(request).map(|m| m.start()).collect(),
        }
    }

    /// What becomes of the attribute `key` (at any level: nested keys are matched by
    /// themselves).
    pub(super) fn action(&self, key: &[u8]) -> Action {
        let matches = |globs: &[String]| globs.iter().any(|g| glob(g.as_bytes(), key));
        if matches(&self.remove) {
            Action::Remove
        } else if matches(&self.hash) {
            Action::Hash
        } else {
            Action::Keep
        }
    }

    /// The keyed hash of a value, in hex.
    pub(super) fn hash(&self, value: &[u8]) -> String {
        hmac_sha256(&self.key, value)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The globs removed and hashed, for the start-up log and `validate --explain`.
    pub(super) fn globs(&self) -> (&[String], &[String]) {
        (&self.remove, &self.hash)
    }
}

/// Text every key a glob matches holds: its longest run without `*`, from the last byte of its
/// first dotted segment on when six bytes or more remain (`gen_ai.prompt` → `i.prompt`). The
/// searcher tells needles apart by their first bytes: a prefix every GenAI attribute has
/// (`gen_ai.`) would make every attribute a candidate to check, and a needle cut at the dot
/// (`prompt`) would find `gen_ai.usage.prompt_tokens` and the event `gen_ai.content.prompt`, and
/// send every span through the rewrite (`benches/process_cpu.sh`, `content-kept:forwarding`).
fn needle(glob: &str) -> &str {
    let run = glob.split('*').max_by_key(|piece| piece.len()).unwrap_or(glob);
    match run.find('.') {
        Some(dot) if dot >= 1 && run.len() - dot >= 5 => &run[dot - 1..],
        _ => run,
    }
}

/// `*` matches any run of bytes (dots included); everything else itself.
pub(super) fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((at, matched)) => {
                    p = at + 1;
                    t = matched + 1;
                    star = Some((at, matched + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new()
        .chain_update(block.map(|b| b ^ 0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(block.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}
