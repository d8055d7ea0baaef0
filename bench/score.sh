#!/usr/bin/env bash
# Anomaly scoring through a persistent query, against the plain confluent-kafka loop in the same harness
# run (../shared/bench, run in place): the vectorized ANOMALY_SCORE UDF (one model call per batch) and
# ANOMALY_SCORE_ROWWISE, the same Keras model called once per row as the original Java UDF did.
#
#   bench/score.sh                    # 300 000 records vectorized, 20 000 row by row
#   N_VECTORIZED=100000 N_ROWWISE=5000 bench/score.sh --repeat 3
#
# Output verification is off: the harness checks scores against its own reference model, while ksqlpy
# scores with the trained artifact in udfs/models/anomaly.
set -euo pipefail
. "$(dirname "$0")/_common.sh"
results=$(mktemp -d)
run="$python -m ksqlpy.cli run --bootstrap-servers {bootstrap} --service-id {group} -p auto.offset.reset=earliest --udfs-dir $repo/udfs"
cd "$shared"
"$python" bench/peers.py --workload score --n "${N_VECTORIZED:-300000}" --no-verify --json "$results/vectorized.json" \
  --contender ceiling-raw --contender "ksqlpy-vectorized=cmd:$run {sql_file}" "$@"
"$python" bench/peers.py --workload score --n "${N_ROWWISE:-20000}" --no-verify --json "$results/rowwise.json" \
  --contender ceiling-raw \
  --contender "ksqlpy-rowwise=cmd:sql=\$(mktemp) && sed 's/ANOMALY_SCORE(/ANOMALY_SCORE_ROWWISE(/' {sql_file} > \$sql && exec $run --udfs-dir $repo/bench/udfs \$sql" "$@"
"$python" "$repo/bench/score_summary.py" "$results/vectorized.json" "$results/rowwise.json"
