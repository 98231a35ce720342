//! The detector pack shipped with fleetpipe, built into the binary: what analytics runs when
//! no `queries` folder is configured and there is none in the working folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::config::AnalyticsConfig;
use super::runner::Fingerprint;

/// The shipped detectors, each as its file in `queries/` has it.
const BUILT_IN: [(&str, &str); 7] = [
    (
        "error_rate_spike.sql",
        include_str!("../../queries/error_rate_spike.sql"),
    ),
    (
        "latency_regression.sql",
        include_str!("../../queries/latency_regression.sql"),
    ),
    (
        "shadow_integration.sql",
        include_str!("../../queries/shadow_integration.sql"),
    ),
    ("silent_agent.sql", include_str!("../../queries/silent_agent.sql")),
    (
        "throttling_storm.sql",
        include_str!("../../queries/throttling_storm.sql"),
    ),
    (
        "token_usage_spike.sql",
        include_str!("../../queries/token_usage_spike.sql"),
    ),
    ("tool_call_loop.sql", include_str!("../../queries/tool_call_loop.sql")),
];

/// The folder the built-in detectors are named under in logs and errors.
const BUILT_IN_FOLDER: &str = "(built-in)";

/// The folder detectors are read from: `queries` when set, else `./queries` when it is a
/// folder; `None`: the built-in pack.
pub(super) fn folder(config: &AnalyticsConfig) -> Option<PathBuf> {
    match &config.queries {
        Some(folder) => Some(folder.clone()),
        None => Some(PathBuf::from("queries")).filter(|f| f.is_dir()),
    }
}

/// The built-in detectors' names, each with a fingerprint that never changes.
pub(super) fn files() -> BTreeMap<PathBuf, Fingerprint> {
    BUILT_IN
        .iter()
        .map(|(name, text)| {
            (
                Path::new(BUILT_IN_FOLDER).join(name),
                (SystemTime::UNIX_EPOCH, text.len() as u64),
            )
        })
        .collect()
}

/// The text of a built-in detector, when `path` names one.
pub(super) fn text(path: &Path) -> Option<&'static str> {
    let name = path.strip_prefix(BUILT_IN_FOLDER).ok()?;
    BUILT_IN
        .iter()
        .find(|(n, _)| Path::new(n) == name)
        .map(|(_, text)| *text)
}
