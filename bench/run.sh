#!/usr/bin/env bash
# Throughput of ksqlpy against a plain confluent-kafka consume->produce loop, on the same embedded
# broker in the same run, using the side-by-side harness in ../shared/bench (run in place, not copied).
#
#   bench/run.sh                      # filter workload, 300 000 records
#   WORKLOAD=score bench/run.sh --n 100000
#   bench/run.sh --repeat 3 --json /tmp/results.json
#   GUARANTEE=exactly_once WORKLOAD=window bench/run.sh   # ksqlpy under exactly-once (default at_least_once)
#
# Prints the harness's table: records/s for each contender and the ratio to the raw loop ("vs ceiling").
set -euo pipefail
. "$(dirname "$0")/_common.sh"
workload=${WORKLOAD:-filter}
# The harness checks the window workload for one update per input record: ksqlDB's record cache (on by
# default, latest per key per flush) must be off for it, as in ksqlDB's own tests.
extra=""
[ "$workload" = window ] && extra="-p cache.max.bytes.buffering=0"
extra="$extra -p processing.guarantee=${GUARANTEE:-at_least_once}"
cd "$shared"
exec "$python" bench/peers.py \
  --workload "$workload" \
  --contender ceiling-raw \
  --contender "ksqlpy=cmd:$python -m ksqlpy.cli run --bootstrap-servers {bootstrap} --service-id {group} -p auto.offset.reset=earliest $extra {sql_file}" \
  "$@"
