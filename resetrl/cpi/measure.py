"""`resetrl cpi measure`: samples to certify and improvement per iteration over grids of p and q.

Every grid point is one CPI iteration from the uniform policy on `pivot_chain(H, |Y|, p)`, with the
exact greedy policy (cpi.py), repeated over seeds (grid.py); the exact (dynamic-programming)
counterpart of each number is stored beside the sampled one. Slopes against p are fitted on log-log
axes (fits.py).
"""

from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
from tqdm import tqdm

from resetrl.cpi.config import CPIConfig
from resetrl.cpi.fits import THEORY_SLOPES, fit_loglog, sampled_values
from resetrl.cpi.grid import RESETS, GridPoint, exact_point, measure_point, seed_key


def run_measurement(config: CPIConfig, progress: bool = True) -> dict:
    """The p sweep (three resets), the q sweep (noisy oracle), the slopes, as one JSON-able dict."""
    problem, measure, certify_config = config.problem, config.measure, config.certify
    started = time.perf_counter()
    jobs = [
        ("p", reset, p, measure.noisy_accuracy if reset == "noisy-oracle" else 1.0)
        for reset in RESETS
        for p in measure.p_grid
    ]
    jobs += [("q", "noisy-oracle", measure.q_sweep_p, q) for q in measure.q_grid]
    sweeps: dict[str, list[GridPoint]] = {"p": [], "q": []}
    for sweep, reset, p, q in tqdm(jobs, desc="cpi grid", disable=not progress):
        point = measure_point(
            problem, p, reset, q, certify_config, measure.seeds, seed_key(config.seed, reset, p, q)
        )
        sweeps[sweep].append(point)

    p_grid = np.array(measure.p_grid)
    by_reset = {reset: [pt for pt in sweeps["p"] if pt.reset == reset] for reset in RESETS}
    fit_rng = np.random.default_rng([config.seed, 10**6])
    slopes = {}
    for quantity in ("rollouts", "improvement"):
        for reset in RESETS:
            samples = sampled_values(by_reset[reset], quantity)
            exact = np.array([getattr(pt.exact, quantity) for pt in by_reset[reset]])
            theory = THEORY_SLOPES.get((quantity, reset))
            slopes[f"{quantity}/{reset}"] = fit_loglog(
                p_grid, samples, exact, fit_rng, measure.bootstrap, theory
            )
    ratio_samples = sampled_values(by_reset["random"], "rollouts") / sampled_values(
        by_reset["oracle"], "rollouts"
    )
    ratio_exact = np.array(
        [pr.exact.rollouts / po.exact.rollouts for pr, po in zip(by_reset["random"], by_reset["oracle"])]
    )
    slopes["rollouts/ratio random:oracle"] = fit_loglog(
        p_grid, ratio_samples, ratio_exact, fit_rng, measure.bootstrap, THEORY_SLOPES[("rollouts", "ratio")]
    )

    # Ablation (exact only): random resets with a learner that leaves states with nothing to gain alone.
    ablation = [
        {"p": p, **asdict(exact_point(problem, p, "random", 1.0, certify_config, keep_ties=True))}
        for p in measure.p_grid
    ]
    ablation_exact = np.array([row["rollouts"] for row in ablation])
    ablation_slope = float(np.polyfit(np.log(p_grid), np.log(ablation_exact), 1)[0])

    all_points = sweeps["p"] + sweeps["q"]
    return {
        "problem": problem.model_dump(),
        "measure": {**measure.model_dump(), "seed": config.seed},
        "certify": certify_config.model_dump(),
        "p_sweep": [asdict(pt) for pt in sweeps["p"]],
        "q_sweep": [asdict(pt) for pt in sweeps["q"]],
        "slopes": {name: asdict(fit) for name, fit in slopes.items()},
        "ablation_keep_ties": {"points": ablation, "exact_rollouts_slope": ablation_slope},
        "uncertified_streams": int(sum(not c for pt in all_points for c in pt.certified)),
        "runtime_seconds": time.perf_counter() - started,
    }
