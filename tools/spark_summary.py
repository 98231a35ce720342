"""The fleet report's summary computed by Apache Spark over a fleetpipe archive, for archives
that outgrow one machine's DataFusion: the report's own SQL (queries/report/views.sql, then
queries/report/summary.sql) runs unchanged. Prints {"summary": {...}}, the figures
`fleetpipe report --format json` prints under "summary", for the whole archive.

usage: python tools/spark_summary.py ARCHIVE [--config FLEETPIPE_YAML] [--master URL]

ARCHIVE is the archive exporter's `path`, or any location Spark reads (a shared volume, HDFS,
object storage with its connector). --config takes the `report.prices` of a fleetpipe
configuration, as `fleetpipe report --config` does. Needs `pip install pyspark pyyaml` and
Java 17 or later.
"""
import argparse
import datetime
import json
import os
import pathlib
import re
import sys
import tempfile

import yaml
from pyspark.sql import SparkSession
from pyspark.sql.types import DoubleType

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
BUILT_IN_PRICES = REPOSITORY / "src/report/prices.yaml"
REPORT_SQL = REPOSITORY / "queries/report"

# The columns of `logs` the views read, for an archive that has no logs yet.
EMPTY_LOGS = """CREATE OR REPLACE VIEW logs AS
SELECT CAST(NULL AS BIGINT) AS time, CAST(NULL AS MAP<STRING, STRING>) AS attributes,
       CAST(NULL AS STRING) AS integration_id, CAST(NULL AS STRING) AS body,
       CAST(NULL AS STRING) AS event_name
WHERE false"""


def nanos(day):
    """A price's `from` (a day, or an RFC 3339 time) in nanoseconds since the epoch."""
    text = str(day)
    if len(text) == len("2026-12-05"):
        text += "T00:00:00Z"
    time = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(time.timestamp()) * 1_000_000_000


def pattern(model):
    """A price's case-insensitive model pattern, `*` standing for any run of characters."""
    return re.compile(".*".join(re.escape(part) for part in model.lower().split("*")), re.DOTALL)


def price_table(configured):
    """The prices in fleetpipe's order of precedence (src/report/prices.rs): configured ones
    first, then the longest pattern, then the latest `from`; the first in effect is the price."""
    built_in = yaml.safe_load(BUILT_IN_PRICES.read_text())["prices"]
    entries = [(True, p) for p in configured] + [(False, p) for p in built_in]
    table = []
    for is_configured, price in entries:
        start = nanos(price["from"]) if "from" in price else None
        specificity = len(price["model"].replace("*", ""))
        table.append(((is_configured, specificity, start if start is not None else -(2**63)), pattern(price["model"]), start, price))
    table.sort(key=lambda entry: entry[0], reverse=True)
    return [(compiled, start, price) for _, compiled, start, price in table]


def cost_function(table):
    """`cost_usd(model, time, input, output, cache_read, cache_write)`: US dollars, or None
    when no price covers the model at that time."""

    def cost_usd(model, time, input_tokens, output_tokens, cache_read, cache_write):
        if model is None:
            return None
        name = model.lower()
        for compiled, start, price in table:
            if compiled.fullmatch(name) and (start is None or (time is not None and start <= time)):
                break
        else:
            return None
        input_tokens, output_tokens = input_tokens or 0, output_tokens or 0
        cache_read, cache_write = cache_read or 0, cache_write or 0
        uncached = max(input_tokens - cache_read - cache_write, 0)
        dollars = (
            uncached * price["input"]
            + cache_read * price.get("cache_read", price["input"])
            + cache_write * price.get("cache_write", price["input"])
            + output_tokens * price["output"]
        )
        return dollars / 1_000_000

    return cost_usd


def statements(path):
    """The statements of a report SQL file: separated by `;` on a line of its own."""
    parts = path.read_text().split("\n;")
    return [p for p in parts if any(line.strip() and not line.strip().startswith("--") for line in p.splitlines())]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive")
    parser.add_argument("--config", help="a fleetpipe configuration whose report.prices apply")
    parser.add_argument("--master", default="local[*]")
    args = parser.parse_args()
    configured = []
    if args.config:
        configured = ((yaml.safe_load(pathlib.Path(args.config).read_text()) or {}).get("report") or {}).get("prices") or []

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    warehouse = tempfile.mkdtemp(prefix="spark-warehouse-")
    spark = (
        SparkSession.builder.master(args.master)
        .appName("fleetpipe-summary")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.warehouse.dir", warehouse)
        # The archive's times are nanoseconds; read as such, as `cost_usd` takes them.
        .config("spark.sql.legacy.parquet.nanosAsLong", "true")
        .config("spark.sql.parquet.mergeSchema", "true")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    spark.udf.register("cost_usd", cost_function(price_table(configured)), DoubleType())
    root = args.archive.rstrip("/")
    # Views over the files (the report's views reference them, and a view the session keeps
    # may not reference a temporary one); the Hive folders `date=`/`hour=` become columns, and
    # the unfinished files, named with a leading dot, are left out as by fleetpipe.
    for table in ["spans", "logs"]:
        location = f"{root}/table={table}"
        try:
            spark.sql(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM parquet.`{location}`")
        except Exception as error:  # no file yet: only `logs` may be empty
            if table == "spans":
                sys.exit(f"no spans under {location}: {error}")
            spark.sql(EMPTY_LOGS)
    for statement in statements(REPORT_SQL / "views.sql"):
        spark.sql(statement)
    (summary,) = spark.sql("\n".join(statements(REPORT_SQL / "summary.sql"))).collect()
    print(json.dumps({"summary": summary.asDict()}, indent=2))
    spark.stop()


if __name__ == "__main__":
    main()
