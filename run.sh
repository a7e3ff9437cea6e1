#!/usr/bin/env bash
# The two set-up commands of the README. Each installs everything first (idempotent):
#   ./run.sh demo   install, backfill the Tetra demo (bundled S&P 500 / NASDAQ bars, 2018),
#                   run a 100-chain ECOD demo batch (real BLAST+/HH-suite), stitch a 4-well
#                   synthetic microscopy plate into OME-Zarr, run five cardiology studies and
#                   the omics demo workflows (RNA-seq, DESeq2 on LNCaP counts, GWAS of HS1940
#                   mice, simulation -> GWAS), all into the embedded SQLite instance, then
#                   serve the UI on http://127.0.0.1:3000
#   ./run.sh test   install, start the test servers that are down (PostgreSQL, Redis,
#                   RabbitMQ), then run the whole test suite
set -euo pipefail
cd "$(dirname "$0")"

install() {  # [extra package lists]
  # System packages the pipelines call (BLAST+, HH-suite, kallisto, plink2, ...) and demo data,
  # and those of the lists given (the tests' R peers). Installed only when missing.
  local missing=()
  while read -r pkg; do
    [[ -z "$pkg" || "$pkg" == \#* ]] && continue
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done < <(cat deploy/apt-packages.txt "$@")
  if ((${#missing[@]})); then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
  python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install -q uv
  python3 -m uv sync --frozen --quiet --compile-bytecode  # .pyc even where PYTHONDONTWRITEBYTECODE is set
}

# The servers the tests talk to (deploy/apt-packages.txt installs them): PostgreSQL for the
# production instance, RabbitMQ and Redis for the Celery workers. Each one that is down is
# started with Debian's own start commands, bound to loopback.
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() {  # port, name
  for _ in $(seq 1 90); do answers "$1" && return 0; sleep 1; done
  echo "warning: $2 is not answering on 127.0.0.1:$1" >&2
}
start_test_servers() {
  if ! answers 5432 && command -v pg_ctlcluster >/dev/null 2>&1; then
    local version
    version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)"
    [[ -n "$version" ]] || { pg_createcluster "$(ls /usr/lib/postgresql | sort -V | tail -1)" main; version="$(ls /etc/postgresql | sort -V | tail -1)"; }
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    wait_for 5432 PostgreSQL
  fi
  # A fresh Debian cluster asks for a password on 127.0.0.1: the tests then use a role of
  # their own (CREATEDB only), made once over the local socket. Trusting clusters need none.
  if [[ -z "${PLATFORM_TEST_POSTGRES:-}" ]] && answers 5432 \
    && ! psql -w -h 127.0.0.1 -U postgres -d postgres -c 'select 1' >/dev/null 2>&1; then
    runuser -u postgres -- psql -q -d postgres -c "DO \$\$ BEGIN
      CREATE ROLE platform_test LOGIN CREATEDB PASSWORD 'platform_test';
      EXCEPTION WHEN duplicate_object THEN NULL; END \$\$" || true
    export PLATFORM_TEST_POSTGRES="postgresql://platform_test:platform_test@127.0.0.1:5432"
  fi
  if ! answers 6379 && command -v redis-server >/dev/null 2>&1; then
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
    wait_for 6379 Redis
  fi
  if ! answers 5672 && command -v rabbitmq-server >/dev/null 2>&1; then
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 rabbitmq-server -detached || true
    wait_for 5672 RabbitMQ
  fi
}

export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.dagster_home}"
export PLATFORM_DATA_ROOT="${PLATFORM_DATA_ROOT:-$PWD/.data}"

case "${1:-}" in
  demo)
    install
    .venv/bin/tetra backfill --start 2018-01-01 --end 2018-12-31
    .venv/bin/tetra status
    # demo inputs (what a user would bring) go to ./.demo; every result to the data root
    demo="$PWD/.demo"
    .venv/bin/ecod demo --out "$demo/ecod" --name demo-batch --chains 100
    .venv/bin/ecod submit "$demo/ecod/demo-batch.fasta"  # register only: prints demo-batch
    .venv/bin/ecod run --batch demo-batch --mode full   # builds the demo library first
    [[ -d "$demo/imaging/demo_plate" ]] || .venv/bin/hcs demo --out "$demo/imaging" --wells 4
    .venv/bin/hcs run "$demo/imaging/demo_plate"
    [[ -d "$demo/imaging/nuclei_plate" ]] || .venv/bin/hcs demo --out "$demo/imaging" \
        --name nuclei_plate --content nuclei --wells 4
    .venv/bin/hcs run "$demo/imaging/nuclei_plate" --pipeline nuclei_count
    [[ -d "$demo/cardio" ]] || .venv/bin/cardio demo --out "$demo/cardio"
    .venv/bin/cardio run "$demo/cardio"/study-*  # one run per study, on every core
    for workflow in rnaseq rnaseq_counts gwas simulation gwas_simulated dna epigenome ecology \
        multiomics; do  # gwas_simulated reads the simulation
      .venv/bin/omics run --workflow "$workflow"
    done
    [[ "${2:-}" == "--no-ui" ]] && exit 0
    exec .venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000
    ;;
  install)  # only install (deploy/README.md: production on one host)
    install
    ;;
  test)
    install deploy/apt-packages-test.txt  # R, DSS, bsseq and vegan: the omics tests' peers
    start_test_servers
    exec .venv/bin/pytest -n 2 --dist loadfile -q "${@:2}"
    ;;
  *)
    echo "usage: ./run.sh demo [--no-ui] | test [pytest args] | install" >&2
    exit 2
    ;;
esac
