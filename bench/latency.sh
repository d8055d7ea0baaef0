#!/usr/bin/env bash
# End-to-end latency (record create time -> output received) of a filter query at a paced rate: ksqlpy
# at-least-once and exactly-once against a raw confluent-kafka loop that takes whatever is fetched, on the
# same embedded broker in the same run (broker and process handling from ../shared/bench/peers.py).
#
#   bench/latency.sh                           # 10 000 records/s, 3 s warm-up, 15 s measured, one run each
#   bench/latency.sh --repeat 3 --json /tmp/latency.json
#
# Prints p50/p90/p99/max per contender (medians over repeats) and ksqlpy's p99 against the raw loop's.
set -euo pipefail
. "$(dirname "$0")/_common.sh"
exec "$python" "$repo/bench/latency.py" --shared-bench "$shared/bench" "$@"
