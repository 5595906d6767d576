"""Sequential verdicts by simulation: error rates and the share of items scored, at several true deltas.

    python benchmarks/sequential_simulation.py [--reps 400] [--items 300] [--tolerance 0.05] [--spending pocock]

Paired 0/1 correctness per item (75% of items right for both models; P(forgotten) and
P(gained) set the true delta = gained - forgotten, discordance 10% around delta 0). Each
replication runs the whole procedure the session runs (``decide_sequentially``: Tango bounds
at the looks, today's test at the last) and the fixed-sample test on the same items, seeded.
Prints, per true delta, the pass rate of both (at delta = -tolerance every pass is a false
pass; at delta >= 0 every fail is a false fail) and the mean share of items the sequential
verdict scored. The same procedure's pass/fail guarantees are asserted in
``tests/test_sequential.py``; this script only reports the numbers.
"""

from __future__ import annotations

import argparse

import numpy as np

from pytest_forgetting.comparison.decision import resolve_decision
from pytest_forgetting.comparison.sequential import (
    DEFAULT_SPENDING,
    SequentialSettings,
    decide_sequentially,
    plan_looks,
)
from pytest_forgetting.comparison.stats.sequential import SPENDING_FUNCTIONS
from pytest_forgetting.comparison.verdict import blank_result, decide
from pytest_forgetting.scoring.metrics import ACC

#: (P(forgotten), P(gained)) for each true delta shown.
SCENARIOS = {-0.10: (0.125, 0.025), -0.05: (0.075, 0.025), -0.025: (0.0625, 0.0375), 0.0: (0.05, 0.05),
             0.02: (0.04, 0.06)}


def pairs(rng: np.random.Generator, n: int, forgotten: float, gained: float) -> tuple[list, list]:
    u = rng.random(n)
    agree = (rng.random(n) < 0.75).astype(float)
    base, tuned = agree.copy(), agree.copy()
    base[u < forgotten], tuned[u < forgotten] = 1.0, 0.0
    gain = (u >= forgotten) & (u < forgotten + gained)
    base[gain], tuned[gain] = 0.0, 1.0
    return base.tolist(), tuned.tolist()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=400)
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--spending", choices=SPENDING_FUNCTIONS, default=DEFAULT_SPENDING)
    args = parser.parse_args(argv)
    decision, on = resolve_decision(tolerance=args.tolerance), SequentialSettings(enabled=True, spending=args.spending)
    template = blank_result(capability="sim", suite="sim", metric="acc")
    print(f"{args.items} items, tolerance {args.tolerance}, alpha 0.05, {args.spending} spending, {args.reps} replications each")
    print(f"{'true delta':>10}  {'pass, sequential':>16}  {'pass, fixed':>11}  {'items scored':>12}")
    for delta, (forgotten, gained) in SCENARIOS.items():
        rng = np.random.default_rng(round(1000 * (delta + 1)))
        passed_seq = passed_fixed = seen = 0
        for rep in range(args.reps):
            base, tuned = pairs(rng, args.items, forgotten, gained)
            plan = plan_looks(args.items, f"rep{rep}", on)
            result = decide_sequentially(base, tuned, decision, metric=ACC, template=template, plan=plan)
            passed_seq += result.passed
            passed_fixed += decide(base, tuned, decision, metric=ACC, template=template).passed
            seen += result.n
        print(f"{delta:>+10.3f}  {passed_seq / args.reps:>16.3f}  {passed_fixed / args.reps:>11.3f}  "
              f"{seen / (args.reps * args.items):>12.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
