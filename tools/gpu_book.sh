#!/usr/bin/env bash
# Execute the whole book at one profile on this machine's GPU with the machine's own python (torch with CUDA), then
# the benchmarks; everything lands in results/<profile>/ (or --results DIR). Bring that folder back and run
# `make site` where the site toolchain is installed.
#
#   tools/gpu_book.sh [--profile full] [--wheels DIR] [--book-budget-s S] [--only STEM ...] [--jobs N] [--skip-book]
#                     [--skip-bench] [--results DIR]
#
# --wheels DIR       an offline machine: install the wheels in DIR whose distribution this python lacks (papermill,
#                    jupytext, ipykernel, ... made elsewhere with `pip download`) into /tmp/site; torch, numpy and
#                    the other packages already there stay as they are.
# Where this tree's .git is not the source's (a copy shipped to the GPU machine), export MFCORE_SOURCE_SHA=<commit>
# (and MFCORE_SOURCE_DIRTY=1 if the copy had uncommitted changes) so that provenance.json names the right code.
# --only STEM ...    execute these chapters only (as run_book's --only; later chapters reuse the caches of
#                    earlier ones, so run chapters in order on one machine)
# --jobs N           chapters executing at once (run_book's --jobs; default auto: 4 on a GPU, with the chapters that
#                    time their own work alone on it)
# --results DIR      write into DIR/<profile>/ instead of results/ (an ignored folder such as _build/gpu keeps a
#                    machine's runs apart from the committed results until they are brought back and reviewed; a
#                    later --only call on the same machine reads the chapters the earlier one wrote there)
# --book-budget-s S  stop executing chapters after S seconds; the chapters done by then are published, the one in
#                    progress is not (results/<profile>/<stem>/ keeps its previous content).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=full wheels="" budget=0 book=1 bench=1 only=() jobs=auto results=results
while (($#)); do
  case $1 in
    --profile) profile=$2; shift 2 ;;
    --wheels) wheels=$2; shift 2 ;;
    --book-budget-s) budget=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --results) results=$2; shift 2 ;;
    --only) shift; while (($#)) && [[ $1 != --* ]]; do only+=("$1"); shift; done ;;
    --skip-book) book=0; shift ;;
    --skip-bench) bench=0; shift ;;
    *) echo "error: unknown option '$1'; valid: --profile, --wheels, --book-budget-s, --only, --jobs, --results, --skip-book, --skip-bench" >&2
       exit 2 ;;
  esac
done
export PYTHONUNBUFFERED=1
if [[ -n ${MFCORE_SOURCE_SHA:-} && ! ${MFCORE_SOURCE_SHA} =~ ^[0-9a-f]{40}$ ]]; then
  echo "error: MFCORE_SOURCE_SHA='$MFCORE_SOURCE_SHA' is not a full 40-hex commit; export the output of" \
       "'git rev-parse HEAD' taken in the source repository" >&2
  exit 2
fi
if [[ -n $wheels ]]; then
  source tools/wheels.sh
  install_wheels "$wheels" || exit 2
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
# What each chapter's kernel pays to create its CUDA context (seconds where the driver's persistence mode is off)
probe='import time, torch; t = time.perf_counter(); torch.zeros(1, device="cuda"); print(f"{time.perf_counter() - t:.2f}")'
echo "CUDA context of a fresh process: $(python3 -c "$probe") s"
status=0
if ((book)); then
  t0=$(date +%s)
  cmd=(python3 -m mfbook.run_book execute --profile "$profile" --device cuda --keep-going --jobs "$jobs" --results "$results")
  ((${#only[@]})) && cmd+=(--only "${only[@]}")
  if ((budget > 0)); then
    timeout --signal=INT --kill-after=20 "$budget" "${cmd[@]}" || status=$?
  else
    "${cmd[@]}" || status=$?
  fi
  echo "book: exit $status after $(( $(date +%s) - t0 )) s"
fi
if ((bench)); then
  python3 benchmarks/run_all.py --profile "$profile" --device cuda --results "$results" || status=$?
fi
exit $status
