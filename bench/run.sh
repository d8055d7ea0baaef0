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
repo=$(cd "$(dirname "$0")/.." && pwd)
shared=${KSQLPY_SHARED:-$repo/../shared}
python=${PYTHON:-$repo/.venv/bin/python}
[ -x "$python" ] || python=$(command -v python3)
if [ ! -f "$shared/bench/peers.py" ]; then
  echo "bench: $shared/bench/peers.py not found (set KSQLPY_SHARED to the folder holding bench/)" >&2
  exit 2
fi
cd "$shared"
exec "$python" bench/peers.py \
  --workload "${WORKLOAD:-filter}" \
  --contender ceiling-raw \
  --contender "ksqlpy=cmd:$python -m ksqlpy.cli run --bootstrap-servers {bootstrap} --service-id {group} -p auto.offset.reset=earliest {sql_file}" \
  "$@"
