//! Findings as JSON POSTs to chat or ITSM webhooks, by minimum severity, retried on 429, 5xx
//! and network errors.

use std::collections::BTreeMap;
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use serde::Deserialize;
use url::Url;

use super::detector::{Detector, Severity};
use super::findings::{announcement, timestamp};
use super::lifecycle::Tracked;

/// One webhook.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where findings are POSTed as JSON.
    pub url: Url,
    /// Findings of this severity or worse are sent: info, low, medium, high, critical.
    #[serde(default = "default_severity")]
    pub min_severity: String,
    /// Extra request headers, e.g. an authorization token: `${env:HOOK_TOKEN}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Attempts before giving up (the first included).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
}

fn default_severity() -> String {
    "high".into()
}

fn default_attempts() -> u32 {
    3
}

impl WebhookConfig {
    /// Whether a detector's findings go to this webhook; an unknown severity name sends all.
    pub fn wants(&self, severity: Severity) -> bool {
        Severity::parse(&self.min_severity).is_none_or(|min| severity >= min)
    }
}

/// The JSON body: the detector and the anomalies announced, each with its lifecycle state.
pub(super) fn body(detector: &Detector, announced: &[Tracked]) -> serde_json::Value {
    let findings: Vec<serde_json::Value> = announced
        .iter()
        .map(|tracked| {
            let columns = tracked.finding.columns.iter().map(|(name, value)| {
                let json = match value {
                    Value::IntValue(i) => serde_json::json!(i),
                    Value::DoubleValue(d) => serde_json::json!(d),
                    Value::BoolValue(b) => serde_json::json!(b),
                    Value::StringValue(s) => serde_json::json!(s),
                    other => serde_json::json!(format!("{other:?}")),
                };
                (name.clone(), json)
            });
            serde_json::json!({
                "id": tracked.id,
                "state": tracked.state.as_str(),
                "severity": tracked.severity.as_str(),
                "first_seen": timestamp(tracked.first_seen),
                "key": tracked.finding.key,
                "text": announcement(detector, tracked),
                "attributes": serde_json::Map::from_iter(columns),
            })
        })
        .collect();
    serde_json::json!({
        "event": crate::otlp::semconv::ANOMALY_EVENT,
        "detector": detector.name,
        "severity": detector.severity.as_str(),
        "description": detector.description,
        "findings": findings,
    })
}

/// POSTs `body`, retrying retryable failures with a doubling wait; logs the outcome.
pub(super) async fn post(client: reqwest::Client, hook: WebhookConfig, body: serde_json::Value) {
    let mut wait = Duration::from_millis(200);
    for attempt in 1..=hook.attempts.max(1) {
        let mut request = client.post(hook.url.clone()).json(&body);
        for (name, value) in &hook.headers {
            request = request.header(name, value);
        }
        let outcome = request.send().await;
        let retryable = match &outcome {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => {
                let status = response.status();
                tracing::warn!(url = %hook.url, %status, attempt, "Webhook refused the findings.");
                status.as_u16() == 429 || status.is_server_error()
            }
            Err(error) => {
                tracing::warn!(url = %hook.url, %error, attempt, "Webhook unreachable.");
                true
            }
        };
        if !retryable {
            return;
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
    tracing::error!(url = %hook.url, "Webhook gave up after every attempt; the findings are still in the logs pipeline and signal files.");
}
