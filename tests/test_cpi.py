"""Tests of the CPI theory lab (resetrl/cpi): exact DP, the sampling law, the certificate, the slopes."""

from __future__ import annotations

import argparse
import itertools
import json
import math

import numpy as np
import pytest

from resetrl.cpi import cli as cpi_cli
from resetrl.cpi.cpi import cpi_iteration, exact_greedy, run_cpi
from resetrl.config import Config, field_rows, load_config
from resetrl.cpi.config import CPICertifyConfig, CPIConfig, CPIMeasureConfig, CPIProblemConfig
from resetrl.cpi.estimate import (
    BASELINE,
    certify,
    estimator_weights,
    exact_estimator_moments,
    sample_reset_rollouts,
)
from resetrl.cpi.grid import exact_point
from resetrl.cpi.measure import run_measurement
from resetrl.cpi.mdp import (
    LayeredMDP,
    evaluate,
    improvable_mask,
    optimal_objective,
    pivot_chain,
    reach_probability,
    rollout,
    uniform_policy,
)
from resetrl.cpi.resets import reset_distribution
from resetrl.errors import ResetRLError


def random_policy(mdp: LayeredMDP, rng: np.random.Generator):
    return [rng.dirichlet(np.ones(mdp.num_actions), size=size) for size in mdp.layer_sizes()[:-1]]


def random_layered_mdp(rng: np.random.Generator, sizes=(2, 3, 2, 2), num_actions=2) -> LayeredMDP:
    transitions = [
        rng.dirichlet(np.ones(sizes[h + 1]), size=(sizes[h], num_actions)) for h in range(len(sizes) - 1)
    ]
    names = [[f"s{h}.{i}" for i in range(size)] for h, size in enumerate(sizes)]
    return LayeredMDP(rng.dirichlet(np.ones(sizes[0])), transitions, rng.random(sizes[-1]), names)


def enumerate_paths(mdp: LayeredMDP, policy, start_step=0, start_state=None, first_action=None):
    """Every complete path (states s_h..s_H, actions) with its probability: brute force, no DP."""
    sizes = mdp.layer_sizes()
    horizon = mdp.horizon
    state_choices = [range(size) for size in sizes[start_step:]]
    action_choices = [range(mdp.num_actions)] * (horizon - start_step)
    for states in itertools.product(*state_choices):
        if start_state is not None and states[0] != start_state:
            continue
        for actions in itertools.product(*action_choices):
            if first_action is not None and actions[0] != first_action:
                continue
            probability = 1.0 if start_state is not None else mdp.initial[states[0]]
            for offset, (state, action) in enumerate(zip(states, actions)):
                h = start_step + offset
                if not (offset == 0 and first_action is not None):
                    probability *= policy[h][state, action]
                probability *= mdp.transitions[h][state, action, states[offset + 1]]
            if probability > 0:
                yield states, probability


@pytest.mark.parametrize("which", ["random", "pivot"])
def test_exact_dp_matches_brute_force_enumeration(which):
    rng = np.random.default_rng(1)
    mdp = random_layered_mdp(rng) if which == "random" else pivot_chain(3, 2, 0.3, 0.8, 0.3).mdp
    policy = random_policy(mdp, rng)
    evaluation = evaluate(mdp, policy)

    paths = list(enumerate_paths(mdp, policy))
    assert sum(prob for _, prob in paths) == pytest.approx(1.0)
    assert evaluation.objective == pytest.approx(
        sum(prob * mdp.success[states[-1]] for states, prob in paths)
    )
    for h in range(mdp.horizon + 1):
        for s in range(mdp.layer_sizes()[h]):
            visits = sum(prob for states, prob in paths if states[h] == s)
            assert evaluation.occupancy[h][s] == pytest.approx(visits)
    for h in range(mdp.horizon):
        for s in range(mdp.layer_sizes()[h]):
            for a in range(mdp.num_actions):
                suffixes = enumerate_paths(mdp, policy, start_step=h, start_state=s, first_action=a)
                q = sum(prob * mdp.success[states[-1]] for states, prob in suffixes)
                assert evaluation.q_values[h][s, a] == pytest.approx(q)

    mask = [rng.random(size) < 0.4 for size in mdp.layer_sizes()[:-1]]
    visiting = sum(prob for states, prob in paths if any(mask[h][s] for h, s in enumerate(states[:-1])))
    assert reach_probability(mdp, policy, mask) == pytest.approx(visiting)


def test_pivot_chain_reaches_an_improvable_state_with_probability_p():
    for p in (0.05, 0.3, 1.0):
        chain = pivot_chain(horizon=6, num_actions=3, p=p, success_sound=0.9, success_error=0.2)
        policy = uniform_policy(chain.mdp)
        evaluation = evaluate(chain.mdp, policy)
        improvable = improvable_mask(evaluation, tau=0.1)
        assert [m.tolist() for m in improvable] == [m.tolist() for m in chain.pivot_mask()]
        assert reach_probability(chain.mdp, policy, improvable) == pytest.approx(p)
        for advantage, pivots in zip(evaluation.advantages, chain.pivot_mask()):
            assert np.abs(advantage[~pivots]).max() < 1e-12  # routine states: nothing to gain
            assert advantage[pivots, 0] == pytest.approx((1 - 1 / 3) * (0.9 - 0.2))
        assert optimal_objective(chain.mdp) == pytest.approx(0.9)


def test_reset_rollout_law_matches_step_by_step_simulation():
    """The multinomial/binomial counts have the law of simulated chains and rollouts (estimate.py)."""
    rng = np.random.default_rng(2)
    chain = pivot_chain(horizon=4, num_actions=3, p=0.5)
    mdp = chain.mdp
    policy = random_policy(mdp, rng)
    evaluation = evaluate(mdp, policy)
    improvable = improvable_mask(evaluation, 0.05)
    mu = reset_distribution("random", evaluation, improvable, 1.0)
    weights = estimator_weights(policy, exact_greedy(evaluation))
    exact_mean, exact_variance = exact_estimator_moments(evaluation, mu, weights)

    # Simulated: a fresh chain, a uniform step of it, a uniform action, a rollout to the end.
    num = 200_000
    chains, _ = rollout(mdp, policy, 0, rng.choice(len(mdp.initial), size=num, p=mdp.initial), None, rng)
    steps = rng.integers(0, mdp.horizon, size=num)
    states = chains[np.arange(num), steps]
    actions = rng.integers(0, mdp.num_actions, size=num)
    x = np.empty(num)
    for h in range(mdp.horizon):
        at = steps == h
        _, rewards = rollout(mdp, policy, h, states[at], actions[at], rng)
        x[at] = weights[h][states[at], actions[at]] * (rewards - BASELINE)
        visits = np.bincount(states[at], minlength=mdp.layer_sizes()[h]) / num
        assert np.allclose(visits, mu[h], atol=5 * math.sqrt(0.25 / num))
    standard_error = math.sqrt(exact_variance / num)
    assert abs(x.mean() - exact_mean) < 5 * standard_error
    assert x.var() == pytest.approx(exact_variance, rel=0.05)

    batch = sample_reset_rollouts(evaluation, mu, num, rng)
    counted = sum(
        float(np.sum(w * (wins - BASELINE * tries)))
        for w, wins, tries in zip(weights, batch.successes, batch.tries)
    )
    assert abs(counted / num - exact_mean) < 5 * standard_error


def test_certificate_is_deterministic_given_seed_and_close_to_exact():
    chain = pivot_chain(horizon=8, num_actions=4, p=0.2)
    policy = uniform_policy(chain.mdp)
    config = CPICertifyConfig()
    runs = [
        cpi_iteration(chain.mdp, policy, "random", 0.1, config, np.random.default_rng(7))[0] for _ in range(2)
    ]
    assert runs[0].certificate == runs[1].certificate
    exact = exact_point(CPIProblemConfig(), 0.2, "random", 1.0, config)
    counts = [
        cpi_iteration(chain.mdp, policy, "random", 0.1, config, np.random.default_rng(seed))[0].rollouts
        for seed in range(8)
    ]
    assert 0.7 < np.median(counts) / exact.rollouts < 1.5
    assert all(run.certificate.certified and run.certificate.lower_bound > 0 for run in runs)


def test_lower_bound_covers_the_exact_advantage():
    """The certificate is a (1 - delta) bound at the stopping time: violations are rare (here none)."""
    chain = pivot_chain(horizon=8, num_actions=4, p=0.3)
    policy = uniform_policy(chain.mdp)
    violations = 0
    for seed in range(60):
        step, _ = cpi_iteration(
            chain.mdp, policy, "noisy-oracle", 0.1, CPICertifyConfig(), np.random.default_rng(seed), 0.5
        )
        violations += step.certificate.lower_bound > step.exact_advantage
    assert violations <= 3  # 5% of 60


def test_noisy_oracle_interpolates_between_random_and_oracle():
    config = CPICertifyConfig()
    problem = CPIProblemConfig()
    random = exact_point(problem, 0.1, "random", 1.0, config)
    oracle = exact_point(problem, 0.1, "oracle", 1.0, config)
    assert exact_point(problem, 0.1, "noisy-oracle", 0.0, config) == random
    assert exact_point(problem, 0.1, "noisy-oracle", 1.0, config).rollouts == pytest.approx(oracle.rollouts)
    half = exact_point(problem, 0.1, "noisy-oracle", 0.5, config)
    assert oracle.rollouts < half.rollouts < random.rollouts
    assert random.improvement < half.improvement < oracle.improvement
    # The improvement is linear in the improvable mass of the reset distribution (cpi.py).
    assert half.improvement / oracle.improvement == pytest.approx(half.improvable_mass, rel=1e-6)


def test_slopes_on_a_fast_grid():
    measure = CPIMeasureConfig(p_grid=(0.05, 0.1, 0.2, 0.4), q_grid=(0.0, 1.0), seeds=6, bootstrap=200)
    results = run_measurement(CPIConfig(measure=measure), progress=False)
    slopes = {name: fit["slope"] for name, fit in results["slopes"].items()}
    assert slopes["rollouts/random"] == pytest.approx(-2.0, abs=0.2)
    assert slopes["rollouts/oracle"] == pytest.approx(0.0, abs=0.1)
    assert slopes["rollouts/ratio random:oracle"] == pytest.approx(-2.0, abs=0.25)
    assert slopes["improvement/random"] == pytest.approx(2.0, abs=0.15)
    assert slopes["improvement/oracle"] == pytest.approx(1.0, abs=0.1)
    assert results["ablation_keep_ties"]["exact_rollouts_slope"] == pytest.approx(-1.0, abs=0.15)
    assert results["uncertified_streams"] == 0
    assert all(fit["standard_error"] > 0 for fit in results["slopes"].values())


def test_cpi_with_estimated_greedy_improves_and_oracle_stops_when_nothing_is_improvable():
    chain = pivot_chain(horizon=2, num_actions=2, p=0.5)
    config = CPICertifyConfig()
    steps = run_cpi(
        chain.mdp,
        uniform_policy(chain.mdp),
        400,
        reset="oracle",
        tau=0.3,
        certify_config=config,
        rng=np.random.default_rng(0),
        proposal_rollouts=200,
    )
    assert all(step.improvement >= -1e-12 for step in steps)
    assert steps[-1].next_objective > steps[0].objective
    assert steps[-1].stopped == "no improvable state left"


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="resetrl")
    cpi_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_writes_json_markdown_and_plots(tmp_path):
    out = tmp_path / "cpi"
    common = ["--out", str(out), "--no-progress"]
    assert (
        run_cli(
            [
                "cpi",
                "measure",
                "--set",
                "cpi.measure.p_grid=0.1,0.4",
                "--set",
                "cpi.measure.q_grid=[0, 1]",
                "--set",
                "cpi.measure.seeds=3",
                "--set",
                "cpi.measure.bootstrap=50",
                *common,
            ]
        )
        == 0
    )
    results = json.loads((out / "measure.json").read_text())
    assert set(results["slopes"]) >= {"rollouts/random", "improvement/oracle"}
    assert "Fitted log-log slopes" in (out / "measure.md").read_text()
    assert (out / "cpi_measure.png").stat().st_size > 0
    assert (
        run_cli(
            ["cpi", "run", "--set", "cpi.run.p=0.4", "--set", "cpi.run.iterations=3",
             "--set", "cpi.run.proposal_rollouts=500", *common]
        )
        == 0
    )
    assert (out / "cpi_run.png").exists() and json.loads((out / "run.json").read_text())["runs"]
    assert run_cli(["cpi", "exact", "--set", "cpi.exact.p=0.2", *common]) == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["cpi"], "subcommand"),
        (["cpi", "measure", "--set", "cpi.measure.p_grid=0.1,abc"], "cpi.measure.p_grid"),
        (["cpi", "measure", "--set", "cpi.measure.p_grid=0.1"], "at least two"),
        (["cpi", "measure", "--set", "cpi.measure.p_grid=0.1,1.5"], "p must be in"),
        (["cpi", "measure", "--set", "cpi.measure.seeds=1"], "seeds"),
        (["cpi", "exact", "--set", "cpi.problem.tau=0.9"], "tau"),
        (["cpi", "exact", "--set", "cpi.exact.p=0"], "cpi.exact.p"),
        (["cpi", "exact", "--set", "cpi.certify.confidence=1.2"], "confidence"),
        (["cpi", "exact", "--set", "cpi.problem.num_actions=1"], "num_actions"),
        (["cpi", "run", "--set", "cpi.run.resets=random,bogus"], "known: noisy-oracle, oracle, random"),
        (["cpi", "run", "--set", "cpi.run.iterations=0"], "iterations"),
        (["cpi", "run", "--set", "cpi.seed=-1"], "cpi.seed"),
    ],
)
def test_bad_input_is_an_error_naming_the_problem(argv, message, tmp_path):
    with pytest.raises(ResetRLError) as error:
        run_cli([*argv, "--out", str(tmp_path)] if len(argv) > 1 else argv)
    assert message in str(error.value)


def test_settings_are_the_cpi_section_of_the_one_config(tmp_path):
    """`resetrl config` lists every CPI field with a description; a file and --set fill them; a
    config written as YAML loads back the same (a run's config.yaml compares equal)."""
    descriptions = {key: description for key, _, _, description in field_rows(Config())}
    cpi_keys = [key for key in descriptions if key.startswith("cpi.")]
    assert {"cpi.seed", "cpi.problem.tau", "cpi.certify.margin", "cpi.measure.p_grid", "cpi.run.resets",
            "cpi.exact.p"} <= set(cpi_keys)
    assert all(descriptions[key] for key in cpi_keys)
    path = tmp_path / "cpi.yaml"
    path.write_text("cpi: {seed: 2, measure: {p_grid: [0.1, 0.4]}}\n")
    config = load_config(str(path), overrides=["cpi.run.resets=oracle,random", "cpi.exact.p=0.3"])
    assert (config.cpi.seed, config.cpi.measure.p_grid) == (2, [0.1, 0.4])
    assert (config.cpi.run.resets, config.cpi.exact.p) == (["oracle", "random"], 0.3)
    written = tmp_path / "written.yaml"
    written.write_text(config.to_yaml())
    assert load_config(str(written)) == config
