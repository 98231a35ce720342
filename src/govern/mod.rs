//! Governed data flows: each exporter is a data flow, declared and restricted like any other
//! integration. Per exporter, which signals, layers and integrations it may get (`data_flow`),
//! what is removed or hashed first (`redaction`; GenAI content leaves for vendors only when
//! allowed), and which registry entry it delivers to (`integration`). Applied to each batch
//! before it is queued for the exporter, once per distinct policy.

mod entry;
mod redactor;
mod rewrite;
pub mod settings;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, PoisonError};

use crate::otlp::Request;
use crate::otlp::semconv::{Tag, TagNames};
pub use entry::{EntryProblem, OBSERVABILITY, signals_allowed};
pub use redactor::{GENAI_CONTENT, hmac_sha256};
pub use rewrite::Reason;
use rewrite::{Outcome, RecordFilter};
pub use settings::{ContentPolicy, FlowSettings, FlowSignal, GovernanceConfig};

/// One exporter's compiled policy.
#[derive(Debug)]
pub struct Flow {
    signals: Option<Vec<FlowSignal>>,
    filter: RecordFilter,
    redactor: Option<redactor::Redactor>,
    /// The last request governed and what came of it: exporters with the same policy share
    /// one `Flow`, and the fan-out hands each the same batch in turn.
    last: Mutex<Option<(Arc<Request>, Governed)>>,
}

/// What an exporter gets of one batch.
#[derive(Debug, Clone)]
pub struct Governed {
    /// The batch to queue, `None` when nothing of it may go.
    pub request: Option<Arc<Request>>,
    /// Items withheld, by reason (`signal`, `layer`, `integration`, `unregistered`).
    pub withheld: Vec<(&'static str, usize)>,
    pub removed: usize,
    pub hashed: usize,
}

/// Whether a batch comes from a pipeline or is analytics' findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Pipeline,
    Findings,
}

impl Flow {
    /// The policy of `settings` for an exporter of type `kind` (`otlp`, `file`, …) whose
    /// registry tags are named by `tags`; `registry_signals` are the signals the registry
    /// entry it delivers to allows, when it names one that says.
    pub fn new(
        settings: &FlowSettings,
        kind: &str,
        tags: &TagNames,
        registry_signals: Option<Vec<FlowSignal>>,
    ) -> Flow {
        let default_content = if matches!(kind, "otlp" | "otlp_http") {
            ContentPolicy::Remove
        } else {
            ContentPolicy::Keep
        };
        let signals = match (settings.data_flow.signals.clone(), registry_signals) {
            (Some(own), Some(entry)) => Some(own.into_iter().filter(|s| entry.contains(s)).collect()),
            (own, entry) => own.or(entry),
        };
        Flow {
            signals,
            filter: RecordFilter {
                layers: settings.data_flow.layers.clone(),
                integrations: settings.data_flow.integrations.clone(),
                exclude_unregistered: settings.data_flow.unregistered == settings::Unregistered::Exclude,
                layer_key: tags.layer.clone(),
                integration_key: tags.name(Tag::Id),
                registered_key: tags.name(Tag::Registered),
            },
            redactor: redactor::Redactor::new(&settings.redaction, default_content),
            last: Mutex::new(None),
        }
    }

    /// Whether everything passes unchanged: then no `Flow` is put before the exporter.
    pub fn is_open(&self) -> bool {
        self.signals.is_none() && self.filter.is_open() && self.redactor.is_none()
    }

    /// What the exporter gets of `request`.
    pub fn govern(&self, request: &Arc<Request>, origin: Origin) -> Governed {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((seen, governed)) = last.as_ref()
            && Arc::ptr_eq(seen, request)
        {
            return governed.clone();
        }
        let governed = self.govern_anew(request, origin);
        *last = Some((Arc::clone(request), governed.clone()));
        governed
    }

    fn govern_anew(&self, request: &Arc<Request>, origin: Origin) -> Governed {
        let mut governed = Governed {
            request: None,
            withheld: Vec::new(),
            removed: 0,
            hashed: 0,
        };
        let kind = match origin {
            Origin::Findings => FlowSignal::Findings,
            Origin::Pipeline => FlowSignal::of(request.signal()),
        };
        if self.signals.as_ref().is_some_and(|signals| !signals.contains(&kind)) {
            governed.withheld.push(("signal", request.item_count()));
            return governed;
        }
        let mut parts = Vec::with_capacity(request.parts().len());
        let mut tally = rewrite::Tally::default();
        for (part, randomness) in request.parts_with_trace_randomness() {
            let places = self.redactor.as_ref().map(|r| r.places(part)).unwrap_or_default();
            let redactor = self.redactor.as_ref().filter(|_| !places.is_empty());
            if redactor.is_none() && self.filter.is_open() {
                parts.push((part.clone(), randomness));
                continue;
            }
            let redaction = redactor.map(|redactor| (redactor, places));
            match rewrite::rewrite(request.signal(), part, &self.filter, redaction, &mut tally) {
                Ok(Outcome::Same) => parts.push((part.clone(), randomness)),
                // Records left out can only lower the part's highest randomness; not known.
                Ok(Outcome::Changed(body)) => parts.push((body.into(), u64::MAX)),
                Ok(Outcome::Dropped) => {}
                // The receiver checked the framing down to the records; below them, bytes that
                // do not parse cannot be shown to hold nothing to remove: the part does not go.
                Err(_) => tally.malformed += rewrite::records_in(request.signal(), part),
            }
        }
        let withheld_records: usize = tally.withheld.iter().sum::<usize>() + tally.malformed;
        governed.withheld = Reason::ALL
            .iter()
            .map(|reason| reason.as_str())
            .chain(["malformed"])
            .zip(tally.withheld.into_iter().chain([tally.malformed]))
            .filter(|(_, count)| *count > 0)
            .collect();
        (governed.removed, governed.hashed) = (tally.removed, tally.hashed);
        let items = request.item_count().saturating_sub(withheld_records);
        let unchanged = withheld_records == 0 && tally.removed == 0 && tally.hashed == 0;
        governed.request = if unchanged {
            Some(Arc::clone(request))
        } else if items > 0 {
            Some(Arc::new(Request::from_parts(request.signal(), parts, items)))
        } else {
            None
        };
        governed
    }

    /// What the exporter gets, in words: for the start-up log and `validate --explain`.
    pub fn describe(&self) -> String {
        let list = |items: &Option<Vec<String>>| items.as_ref().map_or("all".to_owned(), |l| l.join(", "));
        let signals = self.signals.as_ref().map_or("all".to_owned(), |s| {
            s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        });
        let (removed, hashed) = self.redactor.as_ref().map_or((&[][..], &[][..]), |r| r.globs());
        let content = if GENAI_CONTENT.iter().all(|k| removed.iter().any(|r| r == k)) {
            "removed"
        } else {
            "kept"
        };
        let own_removed: Vec<&str> = removed
            .iter()
            .map(String::as_str)
            .filter(|r| !GENAI_CONTENT.contains(r))
            .collect();
        format!(
            "signals: {signals}; layers: {}; integrations: {}; unregistered calls: {}; GenAI content: {content}; removed: {}; hashed: {}",
            list(&self.filter.layers),
            list(&self.filter.integrations),
            if self.filter.exclude_unregistered {
                "withheld"
            } else {
                "included"
            },
            if own_removed.is_empty() {
                "nothing else".to_owned()
            } else {
                own_removed.join(", ")
            },
            if hashed.is_empty() {
                "nothing".to_owned()
            } else {
                hashed.join(", ")
            },
        )
    }
}
