//! Finding a metric oneof the generated types dropped.
//!
//! A metric's data (`gauge`, `sum`, …) and a point's value (`asDouble`, `asInt`) are
//! flattened oneofs in the generated serde types, and serde leaves a flattened field empty
//! when its value does not decode: an enum name for `aggregationTemporality`, a bucket count
//! that is not a number, a boolean value. The request would be taken with the data gone.
//! When decoding kept fewer oneof values than the text has, this finds the first one lost
//! and why, to refuse the request naming it.

use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogram, Gauge, Histogram, Sum, Summary, metric::Data,
};
use serde_json::Value;

use crate::otlp::Payload;

/// The oneof values decoding kept: each metric's data, each point's and exemplar's value.
pub(super) fn kept(payload: &Payload) -> usize {
    let Payload::Metrics(request) = payload else {
        return 0;
    };
    let exemplars = |list: &[Exemplar]| list.iter().filter(|e| e.value.is_some()).count();
    let points = |data: &Data| match data {
        Data::Gauge(Gauge { data_points }) | Data::Sum(Sum { data_points, .. }) => data_points
            .iter()
            .map(|p| usize::from(p.value.is_some()) + exemplars(&p.exemplars))
            .sum(),
        Data::Histogram(h) => h.data_points.iter().map(|p| exemplars(&p.exemplars)).sum(),
        Data::ExponentialHistogram(h) => h.data_points.iter().map(|p| exemplars(&p.exemplars)).sum(),
        Data::Summary(_) => 0,
    };
    request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .filter_map(|m| m.data.as_ref())
        .map(|data| 1 + points(data))
        .sum()
}

/// Where a oneof value was lost, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Lost {
    pub(super) path: String,
    pub(super) problem: String,
}

const DATA_KEYS: [&str; 5] = ["gauge", "sum", "histogram", "exponentialHistogram", "summary"];

/// The first oneof in the (camelCase) request that does not decode, if any.
pub(super) fn first_lost(request: &Value) -> Option<Lost> {
    for (r, resource) in items(request, "resourceMetrics") {
        for (s, scope) in items(resource, "scopeMetrics") {
            for (m, metric) in items(scope, "metrics") {
                let path = format!("resourceMetrics[{r}].scopeMetrics[{s}].metrics[{m}]");
                if let Some(lost) = metric_data(metric, &path) {
                    return Some(lost);
                }
            }
        }
    }
    None
}

fn items<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = (usize, &'a Value)> {
    value
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

fn metric_data(metric: &Value, path: &str) -> Option<Lost> {
    let present: Vec<(&str, &Value)> = DATA_KEYS
        .iter()
        .filter_map(|key| metric.get(*key).filter(|v| v.is_object()).map(|v| (*key, v)))
        .collect();
    let (name, data) = match present.as_slice() {
        [] => return None,
        [one] => *one,
        [(first, _), (second, _), ..] => {
            return Some(Lost {
                path: path.to_owned(),
                problem: format!("has both `{first}` and `{second}`; a metric's data is one of them"),
            });
        }
    };
    let path = format!("{path}.{name}");
    let decoded = match name {
        "gauge" => serde_json::from_value::<Gauge>(data.clone()).map(drop),
        "sum" => serde_json::from_value::<Sum>(data.clone()).map(drop),
        "histogram" => serde_json::from_value::<Histogram>(data.clone()).map(drop),
        "exponentialHistogram" => serde_json::from_value::<ExponentialHistogram>(data.clone()).map(drop),
        _ => serde_json::from_value::<Summary>(data.clone()).map(drop),
    };
    if let Err(error) = decoded {
        return Some(Lost {
            path,
            problem: error.to_string(),
        });
    }
    items(data, "dataPoints").find_map(|(p, point)| {
        let path = format!("{path}.dataPoints[{p}]");
        value_oneof(point, &path).or_else(|| {
            items(point, "exemplars").find_map(|(e, exemplar)| value_oneof(exemplar, &format!("{path}.exemplars[{e}]")))
        })
    })
}

/// A point's or an exemplar's value: one of `asDouble` (a number) and `asInt` (an integer,
/// or a string of one).
fn value_oneof(holder: &Value, path: &str) -> Option<Lost> {
    let double = holder.get("asDouble").filter(|v| !v.is_null());
    let int = holder.get("asInt").filter(|v| !v.is_null());
    let lost = |field: &str, problem: String| {
        Some(Lost {
            path: format!("{path}.{field}"),
            problem,
        })
    };
    match (double, int) {
        (Some(_), Some(_)) => lost("asInt", "a value is one of `asDouble` and `asInt`, not both".to_owned()),
        (Some(value), None) if !value.is_number() => lost("asDouble", format!("{value} is not a number")),
        (None, Some(value)) if !is_int64(value) => lost("asInt", format!("{value} is not a 64-bit integer")),
        _ => None,
    }
}

fn is_int64(value: &Value) -> bool {
    value.is_i64() || value.as_str().is_some_and(|text| text.parse::<i64>().is_ok())
}
