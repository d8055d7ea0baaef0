#!/usr/bin/env bash
# Throughput of ksqlpy against a plain confluent-kafka consume->produce loop, on the same embedded
# broker in the same run, using the side-by-side harness in ../shared/bench (run in place, not copied).
#
#   bench/run.sh                      # filter workload, 300 000 records
#   WORKLOAD=score bench/run.sh --n 100000
#   bench/run.sh --repeat 3 --json /tmp/results.json
#
# Prints the harness's table: records/s for each contender and the ratio to the raw loop ("vs ceiling").
set -euo pipefail
. "$(dirname "$0")/_common.sh"
cd "$shared"
exec "$python" bench/peers.py \
  --workload "${WORKLOAD:-filter}" \
  --contender ceiling-raw \
  --contender "ksqlpy=cmd:$python -m ksqlpy.cli run --bootstrap-servers {bootstrap} --service-id {group} -p auto.offset.reset=earliest {sql_file}" \
  "$@"
