# Shared by the bench scripts: where the repository, the shared harness and the interpreter are.
repo=$(cd "$(dirname "$0")/.." && pwd)
shared=${KSQLPY_SHARED:-$repo/../shared}
python=${PYTHON:-$repo/.venv/bin/python}
[ -x "$python" ] || python=$(command -v python3)
if [ ! -f "$shared/bench/peers.py" ]; then
  echo "bench: $shared/bench/peers.py not found (set KSQLPY_SHARED to the folder holding bench/)" >&2
  exit 2
fi
