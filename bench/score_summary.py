"""Summarise bench/score.sh: rows/s of the vectorized and row-at-a-time anomaly UDFs, and the ratios."""

from __future__ import annotations

import json
import sys
from typing import Any


def row(path: str, contender: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        summary = json.load(handle)["summary"]
    return next(r for r in summary if r["contender"] == contender)


def main(vectorized_json: str, rowwise_json: str) -> None:
    vectorized = row(vectorized_json, "ksqlpy-vectorized")
    rowwise = row(rowwise_json, "ksqlpy-rowwise")
    ceiling = row(vectorized_json, "ceiling-raw")
    print()
    print(f"plain confluent-kafka loop : {ceiling['steady_rps'] or 0:>10,.0f} rows/s")
    print(f"ksqlpy vectorized UDF      : {vectorized['steady_rps'] or 0:>10,.0f} rows/s"
          f"  ({vectorized['vs_ceiling']}x the loop; target >= 0.7x)")
    print(f"ksqlpy row-at-a-time UDF   : {rowwise['steady_rps'] or 0:>10,.0f} rows/s"
          f"  ({rowwise['vs_ceiling']}x the loop in its own run)")
    if vectorized["steady_rps"] and rowwise["steady_rps"]:
        print(f"vectorized / row-at-a-time : {vectorized['steady_rps'] / rowwise['steady_rps']:>10,.1f}x  (target >= 50x)")


if __name__ == "__main__":
    main(*sys.argv[1:3])
