use super::doubles::{Direction, rewrite};
use super::{decode, encode};
use opentelemetry_proto::tonic::common::v1::any_value;

use crate::otlp::{Payload, Signal};

#[test]
fn sentinels_are_read_back_exactly() {
    for (text, value) in [
        ("4503599627370497e-22", 4503599627370497e-22),
        ("4503599627370499e-22", 4503599627370499e-22),
        ("-4503599627370499e-22", -4503599627370499e-22_f64),
    ] {
        let read: f64 = serde_json::from_str(text).expect("a number");
        assert_eq!(read.to_bits(), value.to_bits(), "{text}");
        let written = serde_json::to_string(&value).expect("written");
        assert_eq!(written.parse::<f64>().ok(), Some(value), "{written}");
    }
}

#[test]
fn text_without_quoted_doubles_is_not_copied() {
    let text = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"NaN","attributes":
        [{"key":"sum","value":{"stringValue":"1.5"}},{"key":"k","value":{"doubleValue":1.5}}]}]}]}]}"#;
    let (scan, rewritten) = rewrite(text, Direction::Read);
    assert_eq!((rewritten, scan.specials, scan.snake_case_key), (None, 0, false));
}

#[test]
fn numeric_strings_become_numbers() {
    for (quoted, number) in [
        ("\"1.5\"", "1.5"),
        ("\"-0\"", "-0"),
        ("\"1E+3\"", "1E+3"),
        ("\".5\"", "0.5"),
        ("\"+2\"", "2.0"),
        ("\"1.5x\"", "\"1.5x\""),
        ("\"inf\"", "\"inf\""),
    ] {
        let text = format!(r#"{{"doubleValue":{quoted}}}"#);
        let (_, rewritten) = rewrite(text.as_bytes(), Direction::Read);
        let got = String::from_utf8(rewritten.unwrap_or_else(|| text.clone().into_bytes())).expect("utf-8");
        assert_eq!(got, format!(r#"{{"doubleValue":{number}}}"#));
    }
}

#[test]
fn specials_are_written_by_name_and_read_back() {
    let text = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"doubleValue":"NaN"},
        "attributes":[{"key":"a","value":{"arrayValue":{"values":[{"doubleValue":"Infinity"},
        {"doubleValue":"-Infinity"},{"doubleValue":0.25}]}}}]}]}]}]}"#;
    let payload = decode(Signal::Logs, text).expect("decoded");
    let written = String::from_utf8(encode(&payload)).expect("utf-8");
    assert!(written.contains(r#""body":{"doubleValue":"NaN"}"#), "{written}");
    assert!(
        written.contains(r#"[{"doubleValue":"Infinity"},{"doubleValue":"-Infinity"},{"doubleValue":0.25}]"#),
        "{written}"
    );
    let Payload::Logs(again) = decode(Signal::Logs, written.as_bytes()).expect("read back") else {
        panic!("logs")
    };
    let record = &again.resource_logs[0].scope_logs[0].log_records[0];
    let body = record.body.as_ref().and_then(|b| b.value.clone());
    assert!(matches!(body, Some(any_value::Value::DoubleValue(v)) if v.is_nan()));
    let Some(any_value::Value::ArrayValue(array)) = record.attributes[0].value.as_ref().and_then(|v| v.value.clone())
    else {
        panic!("an array")
    };
    let values: Vec<_> = array.values.into_iter().filter_map(|v| v.value).collect();
    assert_eq!(
        values,
        [f64::INFINITY, f64::NEG_INFINITY, 0.25].map(any_value::Value::DoubleValue)
    );
}

#[test]
fn two_data_oneofs_in_one_metric_are_refused() {
    let text = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m","gauge":{},"sum":{}}]}]}]}"#;
    let error = decode(Signal::Metrics, text).expect_err("refused").to_string();
    assert!(error.contains("metrics[0]: has both `gauge` and `sum`"), "{error}");
}

#[test]
fn snake_case_oneofs_are_checked_too() {
    let text = br#"{"resource_metrics":[{"scope_metrics":[{"metrics":[{"name":"m","gauge":
        {"data_points":[{"as_int":"x"}]}}]}]}]}"#;
    let error = decode(Signal::Metrics, text).expect_err("refused").to_string();
    assert!(
        error.contains("gauge.dataPoints[0].asInt: \"x\" is not a 64-bit integer"),
        "{error}"
    );
}

/// Found by `fuzz_otlp_json`: a string left open at the end of the text.
#[test]
fn an_unterminated_string_is_an_error_not_a_panic() {
    for text in [&br#"{"resourceMetrics":[{"sum":"NaN"#[..], br#"{"min":""#, br#"{""#] {
        assert!(decode(Signal::Metrics, text).is_err());
    }
}
