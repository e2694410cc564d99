"""`resetrl cpi run`: full CPI runs on one pivot chain, one per reset distribution."""

from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
from tqdm import tqdm

from resetrl.cpi.config import CPIConfig
from resetrl.cpi.cpi import run_cpi
from resetrl.cpi.grid import problem_chain, seed_key
from resetrl.cpi.mdp import optimal_objective, uniform_policy


def run_comparison(config: CPIConfig, progress: bool = True) -> dict:
    """Full CPI runs from the uniform policy, one per reset distribution of `config.run`, with the
    greedy policy estimated from `proposal_rollouts` reset rollouts per iteration (a practical learner)."""
    problem, run, seed = config.problem, config.run, config.seed
    p, oracle_accuracy = run.p, run.oracle_accuracy
    started = time.perf_counter()
    chain = problem_chain(problem, p)
    runs = {}
    for reset in tqdm(run.resets, desc="cpi runs", disable=not progress):
        rng = np.random.default_rng(seed_key(seed, reset, p, oracle_accuracy))
        steps = run_cpi(
            chain.mdp,
            uniform_policy(chain.mdp),
            run.iterations,
            reset=reset,
            tau=problem.tau,
            certify_config=config.certify,
            rng=rng,
            oracle_accuracy=oracle_accuracy,
            proposal_rollouts=run.proposal_rollouts,
        )
        runs[reset] = [{**asdict(step), "improvement": step.improvement} for step in steps]
    return {
        "problem": problem.model_dump(),
        "certify": config.certify.model_dump(),
        "p": p,
        "oracle_accuracy": oracle_accuracy,
        "iterations": run.iterations,
        "proposal_rollouts": run.proposal_rollouts,
        "seed": seed,
        "optimal_objective": optimal_objective(chain.mdp),
        "runs": runs,
        "runtime_seconds": time.perf_counter() - started,
    }
