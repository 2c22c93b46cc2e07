#!/usr/bin/env bash
# The CPU checks of `make test` on another machine's CPU, with that machine's own python (offline is fine): the smoke
# book under portable numerics, the whole test suite in shards run at once, and two planted bugs (a transposed fusion
# weight, a JDR threshold one pixel off) that the unit tests must catch. CUDA is hidden, so a GPU machine's host CPU
# is what is tested. Works on a copy of the tree (git is not needed); logs and a summary go to --out.
#
#   tools/host_checks.sh [--wheels DIR] [--shards N] [--out DIR]
#
# --wheels DIR  install the wheels in DIR whose distribution this python lacks (papermill, jupytext, pytest, ...) into
#               /tmp/site, as tools/gpu_book.sh does
# --shards N    test files split round-robin into N pytest processes run at once (default 4), each with
#               $(nproc)/N threads: oversubscribed threads, not the tests, are what make a suite crawl on a busy host
# --out DIR     where the logs and summary.txt go (default _build/host_checks)
# Exit status: 0 when the book and every shard pass and both planted bugs fail the unit tests.
set -uo pipefail
cd "$(dirname "$0")/.."
wheels="" shards=4 out=_build/host_checks
while (($#)); do
  case $1 in
    --wheels) wheels=$2; shift 2 ;;
    --shards) shards=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "error: unknown option '$1'; valid: --wheels DIR, --shards N, --out DIR" >&2; exit 2 ;;
  esac
done
[[ $shards =~ ^[1-9][0-9]*$ ]] || { echo "error: --shards '$shards' is not a positive whole number" >&2; exit 2; }
mkdir -p "$out"; out=$(cd "$out" && pwd)
export CUDA_VISIBLE_DEVICES= PYTHONUNBUFFERED=1
if [[ -n $wheels ]]; then
  source tools/wheels.sh
  install_wheels "$wheels" || exit 2
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
summary=$out/summary.txt
{ lscpu | grep -E 'Model name|^CPU family|^Model:|^Stepping|^CPU\(s\)|Vendor'
  python3 -c 'import sys, torch, numpy, scipy, pandas; print("python", sys.version.split()[0], "torch", torch.__version__, "numpy", numpy.__version__, "scipy", scipy.__version__, "pandas", pandas.__version__, "capability", torch.backends.cpu.get_cpu_capability())'
  ldd --version | head -1; } > "$summary" 2>&1
status=0
t0=$(date +%s)
python3 -m mfbook.run_book execute --profile smoke --device cpu --results _build/results \
  --jobs "$(( $(nproc) / 2 > 0 ? $(nproc) / 2 : 1 ))" > "$out/book.log" 2>&1
rc=$?; ((rc)) && status=1
echo "smoke book: exit $rc in $(( $(date +%s) - t0 )) s" >> "$summary"
threads=$(( $(nproc) / shards > 0 ? $(nproc) / shards : 1 ))
files=(tests/test_*.py)
pids=()
t0=$(date +%s)
for ((s = 0; s < shards; s++)); do
  shard=(); for i in "${!files[@]}"; do ((i % shards == s)) && shard+=("${files[$i]}"); done
  OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads python3 -m pytest -rfs -p no:cacheprovider "${shard[@]}" \
    > "$out/pytest_$s.log" 2>&1 &
  pids+=($!)
done
for ((s = 0; s < shards; s++)); do
  wait "${pids[$s]}"; rc=$?; ((rc)) && status=1
  echo "pytest shard $s: exit $rc, $(grep -E '[0-9]+ (passed|failed|error)' "$out/pytest_$s.log" | tail -1)" >> "$summary"
done
echo "test suite: $(( $(date +%s) - t0 )) s in $shards shards of $threads threads" >> "$summary"
for bug in transpose threshold; do  # each in a copy of the tree; the unit tests that must catch it
  copy=$(mktemp -d); tar cf - --exclude=./.cache --exclude=./_build --exclude=./.venv --exclude=./.git . | tar xf - -C "$copy"
  case $bug in
    transpose) sed -i 's/contrib = torch.bmm(weights.reshape(m \* p, z, z), x_src)/contrib = torch.bmm(weights.reshape(m * p, z, z).transpose(1, 2), x_src)/' "$copy/mfcore/fusion.py" ;;
    threshold) sed -i 's/hit = (err <= thr).float()/hit = (err <= thr + 1).float()/' "$copy/mfcore/metrics.py" ;;
  esac
  if cmp -s "$copy/mfcore/fusion.py" mfcore/fusion.py && cmp -s "$copy/mfcore/metrics.py" mfcore/metrics.py; then
    echo "planted bug $bug: the line to change was not found (update this script)" >> "$summary"; status=1; continue
  fi
  (cd "$copy" && PYTHONPATH=$copy${PYTHONPATH:+:$PYTHONPATH} python3 -m pytest -rf -p no:cacheprovider \
     tests/test_fusion.py tests/test_epipolar.py tests/test_metrics.py tests/test_oracle.py > "$out/bug_$bug.log" 2>&1)
  rc=$?
  ((rc == 0)) && status=1  # a bug the tests do not catch
  echo "planted bug $bug: pytest exit $rc (must fail): $(grep -E '^FAILED' "$out/bug_$bug.log" | head -3 | tr '\n' ' ')$(grep -E '[0-9]+ (passed|failed)' "$out/bug_$bug.log" | tail -1)" >> "$summary"
  rm -rf "$copy"
done
cat "$summary"
exit $status
