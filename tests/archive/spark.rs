//! Issue 30: the report's SQL on Apache Spark (`pyspark` from PyPI) over the same archive, run
//! as the documented command `python tools/spark_summary.py ARCHIVE`, gives the summary
//! `fleetpipe report` gives.

use std::ffi::OsStr;
use std::path::Path;

use super::python_json;
use super::report::report_json;

/// What the Spark command prints for `archive`, with `args`.
fn spark_summary(archive: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec![archive.as_os_str(), OsStr::new("--master"), OsStr::new("local[2]")];
    all.extend(args.iter().map(OsStr::new));
    python_json("tools/spark_summary.py", &all)
}

/// Checks every figure of the summary the Spark command gives for `archive` with `args`
/// against `fleetpipe report`'s: counts equal, money to 1e-9.
pub(super) fn assert_spark_agrees(archive: &Path, args: &[&str]) {
    let ours = report_json(archive, args)["summary"].clone();
    let spark = spark_summary(archive, args)["summary"].clone();
    let ours = ours.as_object().expect("a summary");
    assert!(ours.len() >= 15, "the summary's figures: {ours:?}");
    for (figure, value) in ours {
        let theirs = &spark[figure];
        match (value.as_i64(), value.as_f64()) {
            (Some(count), _) => assert_eq!(theirs.as_i64(), Some(count), "{figure} ({args:?})"),
            (None, Some(number)) => {
                let spark_number = theirs.as_f64().unwrap_or_else(|| panic!("{figure}: {theirs}"));
                assert!(
                    (spark_number - number).abs() <= 1e-9 * number.abs().max(1.0),
                    "{figure} ({args:?}): Spark {spark_number}, fleetpipe {number}"
                );
            }
            _ => assert_eq!(theirs, value, "{figure} ({args:?})"),
        }
    }
}
