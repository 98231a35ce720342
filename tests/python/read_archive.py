"""Reads a fleetpipe archive with pyarrow, as a user's notebook would, and prints what it
finds as JSON: per table, the rows, the Hive partition values, and the values the tests check.

usage: read_archive.py ARCHIVE_DIR
"""
import json
import pathlib
import sys

import pyarrow.dataset as ds
import pyarrow.parquet as pq

root = pathlib.Path(sys.argv[1])
report = {"files": [], "unreadable": [], "hidden": []}
for path in sorted(root.rglob("*")):
    if not path.is_file():
        continue
    relative = str(path.relative_to(root))
    if path.name.startswith("."):
        report["hidden"].append(relative)
        continue
    try:
        pq.read_metadata(path)
        report["files"].append(relative)
    except Exception as error:  # a file a reader cannot open is what the test must catch
        report["unreadable"].append(f"{relative}: {error}")

for table in ["spans", "metric_points", "logs"]:
    folder = root / f"table={table}"
    dataset = ds.dataset(folder, format="parquet", partitioning="hive") if folder.exists() else None
    if dataset is None or not dataset.files:
        report[table] = {"rows": 0}
        continue
    columns = {
        "spans": ["span_id", "trace_id", "name", "integration_id", "layer", "input_tokens", "status_code", "duration_ms"],
        "metric_points": ["metric_name"],
        "logs": ["body"],
    }[table] + ["date", "hour"]
    data = dataset.to_table(columns=columns)
    rows = data.to_pylist()
    entry = {
        "rows": data.num_rows,
        "dates": sorted({str(r["date"]) for r in rows}),
        "hours": sorted({int(r["hour"]) for r in rows}),
    }
    if table == "spans":
        entry["spans"] = {
            r["span_id"]: {
                "trace_id": r["trace_id"],
                "name": r["name"],
                "integration_id": r["integration_id"],
                "layer": r["layer"],
                "input_tokens": r["input_tokens"],
                "status_code": r["status_code"],
                "duration_ms": r["duration_ms"],
            }
            for r in rows
        }
    if table == "logs":
        entry["bodies"] = sorted(r["body"] for r in rows)
    report[table] = entry
print(json.dumps(report))
