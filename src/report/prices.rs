//! What tokens cost: the built-in, dated price table (`prices.yaml`) and the configuration's
//! `report.prices`, resolved per span when a report runs, so that a price change re-prices
//! the whole archive. SQL reads it as `cost_usd(model, time, input, output, cache_read,
//! cache_write)`: null when no price covers the model at that time, so that unpriced tokens
//! are counted as such, never as free.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Builder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampNanosecondType};
use datafusion::error::Result as DataFusionResult;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use serde::{Deserialize, Deserializer};

use crate::config::Problem;

/// One price: US dollars per million tokens of a model-name pattern, from a day on.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Case-insensitive; `*` stands for any run of characters, e.g. `gpt-4o-mini*`.
    pub model: String,
    /// The first day (UTC, `YYYY-MM-DD`, or an RFC 3339 time) the price applies; always when
    /// left out.
    #[serde(default, deserialize_with = "day")]
    pub from: Option<i64>,
    pub input: f64,
    pub output: f64,
    /// Cached input tokens read; the `input` rate when left out.
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// Input tokens written to the cache; the `input` rate when left out.
    #[serde(default)]
    pub cache_write: Option<f64>,
}

impl Price {
    /// Settings that cannot be a price, at their keys below the entry.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.model.trim().is_empty() {
            problems.push(Problem::new(
                "model",
                "must name a model or a pattern such as `gpt-4o*`",
            ));
        }
        let rates = [
            ("input", Some(self.input)),
            ("output", Some(self.output)),
            ("cache_read", self.cache_read),
            ("cache_write", self.cache_write),
        ];
        for (key, rate) in rates {
            if rate.is_some_and(|r| !r.is_finite() || r < 0.0) {
                problems.push(Problem::new(
                    key,
                    "must be a price in US dollars per million tokens, 0 or more",
                ));
            }
        }
        problems
    }
}

fn day<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    let text = String::deserialize(deserializer)?;
    let time = if text.len() == "2026-12-05".len() {
        format!("{text}T00:00:00Z")
    } else {
        text.clone()
    };
    let time = humantime::parse_rfc3339(&time)
        .map_err(|_| serde::de::Error::custom(format!("`{text}` is no day (YYYY-MM-DD) or RFC 3339 time")))?;
    let nanos = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| serde::de::Error::custom(format!("`{text}` is before 1970")))?
        .as_nanos();
    Ok(Some(i64::try_from(nanos).unwrap_or(i64::MAX)))
}

/// The built-in table as `prices.yaml` has it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BuiltIn {
    source: String,
    as_of: String,
    prices: Vec<Price>,
}

static BUILT_IN: LazyLock<BuiltIn> = LazyLock::new(|| {
    serde_yaml::from_str(include_str!("prices.yaml")).unwrap_or_else(|e| panic!("src/report/prices.yaml: {e}"))
});

/// A price in the table, with what decides between prices that match.
#[derive(Debug, Clone)]
struct Entry {
    pattern: String,
    configured: bool,
    price: Price,
}

impl Entry {
    /// Literal characters: the more, the more specific the pattern.
    fn specificity(&self) -> usize {
        self.pattern.chars().filter(|c| *c != '*').count()
    }
}

/// The prices a report uses: the configured ones over the built-in ones.
#[derive(Debug, Clone)]
pub struct PriceTable {
    entries: Vec<Entry>,
}

impl PriceTable {
    /// The built-in table extended and overridden by `configured`.
    pub fn new(configured: &[Price]) -> PriceTable {
        let entry = |price: &Price, configured| Entry {
            pattern: price.model.to_lowercase(),
            configured,
            price: price.clone(),
        };
        let mut entries: Vec<Entry> = configured.iter().map(|p| entry(p, true)).collect();
        entries.extend(BUILT_IN.prices.iter().map(|p| entry(p, false)));
        // The order of precedence, so the first entry in effect is the price.
        entries.sort_by(|a, b| {
            (b.configured, b.specificity(), b.price.from.unwrap_or(i64::MIN)).cmp(&(
                a.configured,
                a.specificity(),
                a.price.from.unwrap_or(i64::MIN),
            ))
        });
        PriceTable { entries }
    }

    /// Where the built-in prices come from, and their date.
    pub fn built_in_source() -> (&'static str, &'static str) {
        (&BUILT_IN.source, &BUILT_IN.as_of)
    }

    /// The entries whose pattern matches `model`, in order of precedence.
    fn candidates(&self, model: &str) -> Vec<&Price> {
        let model = model.to_lowercase();
        self.entries
            .iter()
            .filter(|e| matches(&e.pattern, &model))
            .map(|e| &e.price)
            .collect()
    }

    /// The price of `model` at `time` (nanoseconds since the epoch).
    pub fn price(&self, model: &str, time: i64) -> Option<&Price> {
        in_effect(&self.candidates(model), time)
    }

    /// `cost_usd(model, time, input, output, cache_read, cache_write)` over this table.
    pub fn udf(self: Arc<PriceTable>) -> ScalarUDF {
        let timestamp = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
        create_udf(
            "cost_usd",
            vec![
                DataType::Utf8,
                timestamp,
                DataType::Int64,
                DataType::Int64,
                DataType::Int64,
                DataType::Int64,
            ],
            DataType::Float64,
            Volatility::Immutable,
            Arc::new(move |args| self.costs(args)),
        )
    }

    fn costs(&self, args: &[ColumnarValue]) -> DataFusionResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let model = cast(&arrays[0], &DataType::Utf8)?;
        let model = model.as_string::<i32>();
        let time = arrays[1].as_primitive::<TimestampNanosecondType>();
        let tokens: Vec<&ArrayRef> = arrays[2..6].iter().collect();
        let count = |column: usize, row: usize| {
            let array = tokens[column].as_primitive::<Int64Type>();
            if array.is_null(row) { 0 } else { array.value(row) }
        };
        let mut candidates: HashMap<&str, Vec<&Price>> = HashMap::new();
        let mut costs = Float64Builder::with_capacity(model.len());
        for row in 0..model.len() {
            if model.is_null(row) || time.is_null(row) {
                costs.append_null();
                continue;
            }
            let name = model.value(row);
            let prices = candidates.entry(name).or_insert_with(|| self.candidates(name));
            match in_effect(prices, time.value(row)) {
                Some(price) => costs.append_value(price.cost(Tokens {
                    input: count(0, row),
                    output: count(1, row),
                    cache_read: count(2, row),
                    cache_write: count(3, row),
                })),
                None => costs.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(costs.finish())))
    }
}

/// The first of `candidates` (in order of precedence) in effect at `time`.
fn in_effect<'a>(candidates: &[&'a Price], time: i64) -> Option<&'a Price> {
    candidates
        .iter()
        .copied()
        .find(|p| p.from.is_none_or(|from| from <= time))
}

/// One inference call's token counts; `input` includes the cache reads and writes.
#[derive(Debug, Clone, Copy)]
pub struct Tokens {
    pub input: i64,
    pub output: i64,
    pub cache_read: i64,
    pub cache_write: i64,
}

impl Price {
    /// US dollars for `tokens`.
    pub fn cost(&self, tokens: Tokens) -> f64 {
        let uncached = (tokens.input - tokens.cache_read - tokens.cache_write).max(0);
        let dollars = uncached as f64 * self.input
            + tokens.cache_read as f64 * self.cache_read.unwrap_or(self.input)
            + tokens.cache_write as f64 * self.cache_write.unwrap_or(self.input)
            + tokens.output as f64 * self.output;
        dollars / 1_000_000.0
    }
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters.
fn matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> i64 {
        let price: Price =
            serde_yaml::from_str(&format!("{{model: x, from: '{text}', input: 1, output: 1}}")).expect("a price");
        price.from.expect("a day")
    }

    /// Guarantees: `*` matches any run, anchored at both ends, case-insensitive by the table.
    #[test]
    fn patterns_match_whole_names() {
        assert!(matches("gpt-4o*", "gpt-4o-2024-08-06"));
        assert!(matches("gpt-4o", "gpt-4o"));
        assert!(!matches("gpt-4o", "gpt-4o-mini"));
        assert!(matches("*sonnet*", "anthropic.claude-sonnet-4-v1"));
        assert!(matches("a*b*c", "aXbYc"));
        assert!(!matches("a*b*c", "aXcYb"));
        assert!(!matches("o3*", "gpt-o3"));
        let table = PriceTable::new(&[]);
        assert_eq!(table.price("GPT-4o-MINI", 0).map(|p| p.input), Some(0.15));
    }

    /// Guarantees: configured prices win over built-in ones, a more specific pattern over a
    /// looser one, and a price applies from its day on; before it, the next one in line.
    #[test]
    fn precedence_and_effective_days() {
        let configured: Vec<Price> = serde_yaml::from_str(
            "[{model: 'claude-*', from: '2026-12-01', input: 1.0, output: 2.0},
              {model: 'my-model', input: 0.5, output: 0.5}]",
        )
        .expect("prices");
        let table = PriceTable::new(&configured);
        let before = day("2026-11-30");
        let after = day("2026-12-01T00:00:00Z");
        assert_eq!(
            table.price("claude-sonnet-4-20250514", before).map(|p| p.input),
            Some(3.0)
        );
        assert_eq!(
            table.price("claude-sonnet-4-20250514", after).map(|p| p.input),
            Some(1.0)
        );
        assert_eq!(table.price("my-model", before).map(|p| p.output), Some(0.5));
        assert_eq!(table.price("llama-3-70b", after), None);
        // The built-in o3 price cut.
        assert_eq!(
            table.price("o3-2025-04-16", day("2025-06-09")).map(|p| p.input),
            Some(10.0)
        );
        assert_eq!(
            table.price("o3-2025-04-16", day("2025-06-10")).map(|p| p.input),
            Some(2.0)
        );
    }

    /// Guarantees: cache reads and writes are priced at their rates and taken out of the
    /// input tokens; missing cache rates are the input rate.
    #[test]
    fn cost_prices_each_kind_of_token() {
        let price = Price {
            model: "m".into(),
            from: None,
            input: 3.0,
            output: 15.0,
            cache_read: Some(0.3),
            cache_write: Some(3.75),
        };
        let tokens = Tokens {
            input: 1_000_000,
            output: 100_000,
            cache_read: 400_000,
            cache_write: 100_000,
        };
        let expected = 0.5 * 3.0 + 0.4 * 0.3 + 0.1 * 3.75 + 0.1 * 15.0;
        assert!((price.cost(tokens) - expected).abs() < 1e-9);
        let plain = Price {
            cache_read: None,
            cache_write: None,
            ..price
        };
        assert!(
            (plain.cost(tokens) - (1.0 * 3.0 + 1.5)).abs() < 1e-9,
            "all input at the input rate"
        );
    }

    /// Guarantees: a price that cannot be is named by key, and a wrong day is refused.
    #[test]
    fn wrong_prices_are_named() {
        let price: Price = serde_yaml::from_str("{model: ' ', input: -1, output: .nan}").expect("parses");
        let keys: Vec<String> = price.problems().into_iter().map(|p| p.key).collect();
        assert_eq!(keys, ["model", "input", "output"]);
        let wrong = serde_yaml::from_str::<Price>("{model: x, from: yesterday, input: 1, output: 1}");
        assert!(wrong.expect_err("no day").to_string().contains("`yesterday` is no day"));
        assert!(PriceTable::built_in_source().1.starts_with("20"));
    }
}
