#!/usr/bin/env bash
# The two set-up commands of the README. Each installs everything first (idempotent):
#   ./run.sh demo   install, backfill the Tetra demo (bundled S&P 500 / NASDAQ bars, 2018),
#                   run a 100-chain ECOD demo batch (real BLAST+/HH-suite) and stitch a 4-well
#                   synthetic microscopy plate into OME-Zarr, all into the embedded SQLite
#                   instance, then serve the UI on http://127.0.0.1:3000
#   ./run.sh test   install, then run the whole test suite
set -euo pipefail
cd "$(dirname "$0")"

install() {
  # System packages the pipelines call (BLAST+, HH-suite, demo protein sequences).
  # Installed only when missing.
  local missing=()
  while read -r pkg; do
    [[ -z "$pkg" || "$pkg" == \#* ]] && continue
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done < deploy/apt-packages.txt
  if ((${#missing[@]})); then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
  python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install -q uv
  python3 -m uv sync --frozen --quiet --compile-bytecode  # .pyc even where PYTHONDONTWRITEBYTECODE is set
}

export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.dagster_home}"
export PLATFORM_DATA_ROOT="${PLATFORM_DATA_ROOT:-$PWD/.data}"

case "${1:-}" in
  demo)
    install
    .venv/bin/tetra backfill --start 2018-01-01 --end 2018-12-31
    .venv/bin/tetra status
    demo_batch="$PLATFORM_DATA_ROOT/ecod/demo/demo-batch.fasta"
    .venv/bin/ecod demo --out "$demo_batch" --chains 100
    .venv/bin/ecod submit "$demo_batch" --batch-id demo-batch
    .venv/bin/ecod run --batch demo-batch --mode full
    demo_plate="$PLATFORM_DATA_ROOT/imaging/demo/demo_plate"
    [[ -d "$demo_plate" ]] || .venv/bin/hcs demo --out "$(dirname "$demo_plate")" --name demo_plate --wells 4
    .venv/bin/hcs run "$demo_plate"
    [[ "${2:-}" == "--no-ui" ]] && exit 0
    exec .venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000
    ;;
  install)  # only install (deploy/README.md: production on one host)
    install
    ;;
  test)
    install
    exec .venv/bin/pytest -n 2 --dist loadfile -q "${@:2}"
    ;;
  *)
    echo "usage: ./run.sh demo [--no-ui] | test [pytest args] | install" >&2
    exit 2
    ;;
esac
