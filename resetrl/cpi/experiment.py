"""The CPI lab's measurements: samples to certify and improvement per iteration over grids of p and q.

Every grid point is one CPI iteration from the uniform policy on `pivot_chain(H, |Y|, p)`, with the
exact greedy policy (cpi.py), repeated over seeds; the exact (dynamic-programming) counterpart of
each number is stored beside the sampled one. Slopes are fitted on log-log axes to the per-p means
of the log over seeds, with bootstrap standard errors (seeds resampled per grid point).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
from tqdm import tqdm

from resetrl.cpi.cpi import cpi_iteration, exact_greedy, mix, run_cpi, step_size
from resetrl.cpi.estimate import (
    CertifyConfig,
    estimator_range,
    estimator_weights,
    exact_estimator_moments,
    exact_rollouts_to_certify,
)
from resetrl.cpi.mdp import (
    evaluate,
    improvable_mask,
    optimal_objective,
    pivot_chain,
    reach_probability,
    uniform_policy,
)
from resetrl.cpi.resets import improvable_mass, reset_distribution
from resetrl.errors import ResetRLError

RESETS = ("random", "oracle", "noisy-oracle")
SAMPLED_FIELD = {"rollouts": "rollouts", "improvement": "improvements"}  # GridPoint's per-seed lists
# Paper A's exponents (method.md section 6): samples ~ p^-2 and p^0, improvement ~ p^2 and p^1.
THEORY_SLOPES = {
    ("rollouts", "random"): -2.0,
    ("rollouts", "oracle"): 0.0,
    ("rollouts", "ratio"): -2.0,
    ("improvement", "random"): 2.0,
    ("improvement", "oracle"): 1.0,
}


@dataclass(frozen=True)
class ProblemConfig:
    """The pivot-chain problem family (mdp.py) and the improvability threshold.

    horizon: H, steps per chain (default 8). num_actions: |Y| (default 4).
    success_sound / success_error: P(reward 1) for a sound / a derailed chain (defaults 0.9 / 0.1).
    tau: a state is improvable when some action has advantage > tau (default 0.1).
    """

    horizon: int = 8
    num_actions: int = 4
    success_sound: float = 0.9
    success_error: float = 0.1
    tau: float = 0.1

    def __post_init__(self) -> None:
        pivot_chain(
            self.horizon, self.num_actions, 1.0, self.success_sound, self.success_error
        )  # checks them
        pivot_advantage = (1.0 - 1.0 / self.num_actions) * (self.success_sound - self.success_error)
        if not 0.0 <= self.tau < pivot_advantage:
            raise ResetRLError(
                f"tau must be in [0, {pivot_advantage:.3g}) (the pivot's advantage under the uniform "
                f"starting policy), got {self.tau}; otherwise nothing is improvable"
            )


@dataclass(frozen=True)
class MeasureConfig:
    """What `resetrl cpi measure` sweeps.

    p_grid: probabilities of reaching the pivot (default 0.025 .. 0.8, doubling).
    noisy_accuracy: q of the noisy oracle in the p sweep (default 0.5).
    q_grid: oracle accuracies of the q sweep (default 0, 0.1, 0.25, 0.5, 0.75, 1).
    q_sweep_p: the p at which q is swept (default 0.1).
    seeds: independent certification streams per grid point (default 50).
    seed: base seed; every stream's generator derives from it, the point's (reset, p, q) and the seed
        index (default 0).
    bootstrap: bootstrap resamples for the slopes' standard errors (default 2000).
    """

    p_grid: tuple[float, ...] = (0.025, 0.05, 0.1, 0.2, 0.4, 0.8)
    noisy_accuracy: float = 0.5
    q_grid: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)
    q_sweep_p: float = 0.1
    seeds: int = 50
    seed: int = 0
    bootstrap: int = 2000

    def __post_init__(self) -> None:
        if len(self.p_grid) < 2:
            raise ResetRLError(f"p_grid needs at least two values to fit a slope, got {list(self.p_grid)}")
        for p in (*self.p_grid, self.q_sweep_p):
            if not 0.0 < p <= 1.0:
                raise ResetRLError(f"every p must be in (0, 1], got {p}")
        for q in (*self.q_grid, self.noisy_accuracy):
            if not 0.0 <= q <= 1.0:
                raise ResetRLError(f"every oracle accuracy q must be in [0, 1], got {q}")
        if self.bootstrap < 2:
            raise ResetRLError(f"bootstrap must be at least 2 resamples, got {self.bootstrap}")
        if self.seeds < 2:
            raise ResetRLError(f"seeds must be at least 2 (slopes need an uncertainty), got {self.seeds}")


@dataclass
class ExactPoint:
    """Dynamic-programming quantities of one grid point (first CPI iteration, uniform policy)."""

    reach: float  # P(a chain passes through an improvable state): equals p by construction
    improvable_mass: float  # P(a reset lands on an improvable state)
    advantage: float  # A_mu(pi_hat)
    variance: float  # variance of one reset rollout's estimate
    rollouts: float  # deterministic equivalent of the samples needed to certify
    improvement: float  # J(pi') - J(pi) with alpha from LCB = margin * A_mu(pi_hat)


@dataclass
class GridPoint:
    """One (reset, p, q) point: exact quantities and one entry per seed of the sampled ones."""

    reset: str
    p: float
    q: float
    exact: ExactPoint
    rollouts: list[int] = field(default_factory=list)
    improvements: list[float] = field(default_factory=list)
    estimates: list[float] = field(default_factory=list)
    lower_bounds: list[float] = field(default_factory=list)
    certified: list[bool] = field(default_factory=list)


@dataclass
class SlopeFit:
    """d log(y) / d log(x): fitted on seed means of log y, bootstrap standard error and 95% interval,
    and the same fit on the exact values."""

    slope: float
    standard_error: float
    interval: tuple[float, float]
    exact_slope: float
    theory: float | None


def seed_key(seed: int, reset: str, p: float, q: float) -> list[int]:
    """Entropy for one grid point's generators: the base seed and the point itself, so a point's
    streams do not change when other points are added to or removed from a grid."""
    return [seed, *reset.encode(), round(p * 10**9), round(q * 10**9)]


def exact_point(
    problem: ProblemConfig,
    p: float,
    reset: str,
    q: float,
    certify_config: CertifyConfig,
    keep_ties: bool = False,
) -> ExactPoint:
    """The exact counterpart of a grid point: no sampling, only dynamic programming."""
    chain = pivot_chain(problem.horizon, problem.num_actions, p, problem.success_sound, problem.success_error)
    policy = uniform_policy(chain.mdp)
    evaluation = evaluate(chain.mdp, policy)
    improvable = improvable_mask(evaluation, problem.tau)
    mu = reset_distribution(reset, evaluation, improvable, q)
    greedy = exact_greedy(evaluation, keep_ties)
    weights = estimator_weights(policy, greedy)
    advantage, variance = exact_estimator_moments(evaluation, mu, weights)
    rollouts = exact_rollouts_to_certify(advantage, variance, estimator_range(weights), certify_config)
    alpha = step_size(certify_config.margin * advantage, chain.mdp.horizon)
    improvement = evaluate(chain.mdp, mix(policy, greedy, alpha)).objective - evaluation.objective
    return ExactPoint(
        reach=reach_probability(chain.mdp, policy, improvable),
        improvable_mass=improvable_mass(mu, improvable),
        advantage=advantage,
        variance=variance,
        rollouts=rollouts,
        improvement=improvement,
    )


def measure_point(
    problem: ProblemConfig,
    p: float,
    reset: str,
    q: float,
    certify_config: CertifyConfig,
    seeds: int,
    key: list[int],
) -> GridPoint:
    """Run the first CPI iteration `seeds` times (independent certification streams)."""
    point = GridPoint(reset, p, q, exact_point(problem, p, reset, q, certify_config))
    chain = pivot_chain(problem.horizon, problem.num_actions, p, problem.success_sound, problem.success_error)
    policy = uniform_policy(chain.mdp)
    for seed_index in range(seeds):
        rng = np.random.default_rng([*key, seed_index])
        step, _ = cpi_iteration(chain.mdp, policy, reset, problem.tau, certify_config, rng, oracle_accuracy=q)
        assert step.certificate is not None
        point.rollouts.append(step.rollouts)
        point.improvements.append(step.improvement)
        point.estimates.append(step.certificate.estimate)
        point.lower_bounds.append(step.certificate.lower_bound)
        point.certified.append(step.certificate.certified)
    return point


def fit_loglog(
    x: np.ndarray,
    samples: np.ndarray,
    exact: np.ndarray,
    rng: np.random.Generator,
    bootstrap: int,
    theory: float | None,
) -> SlopeFit:
    """Least-squares slope of the mean over seeds of log y against log x.

    samples: (len(x), seeds) positive values; exact: (len(x),). Bootstrap: for each x independently,
    resample its seeds with replacement, refit; the standard error is the spread of those slopes.
    NaN when a sample is not positive (a stream that hit max_rollouts made no step).
    """
    exact_slope = (
        float(np.polyfit(np.log(x), np.log(exact), 1)[0])
        if np.all(np.isfinite(exact) & (exact > 0))
        else math.nan
    )
    if not np.all(np.isfinite(samples) & (samples > 0)):  # an uncertified stream (no step, no improvement)
        return SlopeFit(math.nan, math.nan, (math.nan, math.nan), exact_slope, theory)
    log_x = np.log(x)
    log_samples = np.log(samples)

    def slope(log_y: np.ndarray) -> float:
        return float(np.polyfit(log_x, log_y, 1)[0])

    num_seeds = samples.shape[1]
    picks = rng.integers(0, num_seeds, size=(bootstrap, len(x), num_seeds))
    resampled_means = np.take_along_axis(log_samples[None], picks, axis=2).mean(axis=2)
    slopes = np.polyfit(log_x, resampled_means.T, 1)[0]
    return SlopeFit(
        slope=slope(log_samples.mean(axis=1)),
        standard_error=float(slopes.std(ddof=1)),
        interval=(float(np.percentile(slopes, 2.5)), float(np.percentile(slopes, 97.5))),
        exact_slope=exact_slope,
        theory=theory,
    )


def sampled_values(points: list[GridPoint], quantity: str) -> np.ndarray:
    """(points, seeds) array of a sampled quantity; NaN where the stream was not certified (its
    rollout count is censored at max_rollouts), so no slope is fitted through it."""
    values = np.array([getattr(pt, SAMPLED_FIELD[quantity]) for pt in points], dtype=float)
    return np.where(np.array([pt.certified for pt in points]), values, np.nan)


def run_measurement(
    problem: ProblemConfig, measure: MeasureConfig, certify_config: CertifyConfig, progress: bool = True
) -> dict:
    """The p sweep (three resets), the q sweep (noisy oracle), the slopes, as one JSON-able dict."""
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
            problem, p, reset, q, certify_config, measure.seeds, seed_key(measure.seed, reset, p, q)
        )
        sweeps[sweep].append(point)

    p_grid = np.array(measure.p_grid)
    by_reset = {reset: [pt for pt in sweeps["p"] if pt.reset == reset] for reset in RESETS}
    fit_rng = np.random.default_rng([measure.seed, 10**6])
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
        "problem": asdict(problem),
        "measure": asdict(measure),
        "certify": asdict(certify_config),
        "p_sweep": [asdict(pt) for pt in sweeps["p"]],
        "q_sweep": [asdict(pt) for pt in sweeps["q"]],
        "slopes": {name: asdict(fit) for name, fit in slopes.items()},
        "ablation_keep_ties": {"points": ablation, "exact_rollouts_slope": ablation_slope},
        "uncertified_streams": int(sum(not c for pt in all_points for c in pt.certified)),
        "runtime_seconds": time.perf_counter() - started,
    }


def geometric_mean(values: list[float]) -> float:
    return float(np.exp(np.mean(np.log(values))))


def markdown_report(results: dict) -> str:
    """The measurement as Markdown tables: per p, the slopes, the q sweep."""
    problem, measure = results["problem"], results["measure"]
    lines = [
        "# CPI with resets: samples to certify and improvement per iteration",
        "",
        f"Pivot chain H = {problem['horizon']}, |Y| = {problem['num_actions']}, "
        f"P(reward | sound) = {problem['success_sound']}, P(reward | derailed) = {problem['success_error']}, "
        f"tau = {problem['tau']}; confidence {results['certify']['confidence']}, margin {results['certify']['margin']}; "
        f"{measure['seeds']} seeds; noisy oracle q = {measure['noisy_accuracy']}. "
        "Sampled values are geometric means over seeds (improvement: arithmetic mean); [exact] is the "
        "dynamic-programming value. Runtime "
        f"{results['runtime_seconds']:.1f} s.",
        "",
        "## Samples needed to certify, per iteration",
        "",
        "| p | reset on improvable (random) | random | oracle | noisy oracle | random / oracle | ratio x p^2 |",
        "|---|---|---|---|---|---|---|",
    ]
    points = {(pt["reset"], pt["p"]): pt for pt in results["p_sweep"]}
    for p in measure["p_grid"]:
        rr, caro, noisy = (points[(reset, p)] for reset in RESETS)
        ratio = geometric_mean(rr["rollouts"]) / geometric_mean(caro["rollouts"])
        cells = [
            f"{geometric_mean(pt['rollouts']):.3g} [{pt['exact']['rollouts']:.3g}]"
            for pt in (rr, caro, noisy)
        ]
        lines.append(
            f"| {p:g} | {rr['exact']['improvable_mass']:.4g} | "
            + " | ".join(cells)
            + f" | {ratio:.3g} | {ratio * p * p:.3g} |"
        )
    lines += [
        "",
        "## Improvement J(pi') - J(pi) per iteration",
        "",
        "| p | random | oracle | noisy oracle |",
        "|---|---|---|---|",
    ]
    for p in measure["p_grid"]:
        cells = [
            f"{np.mean(points[(reset, p)]['improvements']):.3g} [{points[(reset, p)]['exact']['improvement']:.3g}]"
            for reset in RESETS
        ]
        lines.append(f"| {p:g} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Fitted log-log slopes against p",
        "",
        "| quantity | reset | slope +- s.e. | 95% interval | exact | Paper A |",
        "|---|---|---|---|---|---|",
    ]
    for name, fit in results["slopes"].items():
        quantity, reset = name.split("/")
        theory = "-" if fit["theory"] is None else f"{fit['theory']:g}"
        lines.append(
            f"| {quantity} | {reset} | {fit['slope']:.3f} +- {fit['standard_error']:.3f} | "
            f"[{fit['interval'][0]:.3f}, {fit['interval'][1]:.3f}] | {fit['exact_slope']:.3f} | {theory} |"
        )
    ablation = results["ablation_keep_ties"]
    lines += [
        "",
        f"Ablation (exact): random resets with a learner that leaves states with no positive advantage "
        f"unchanged need rollouts with slope {ablation['exact_rollouts_slope']:.3f} in p.",
        "",
        f"## Noisy oracle (SRPO's stand-in) at p = {measure['q_sweep_p']:g}",
        "",
        "| q | reset on improvable | samples to certify | improvement |",
        "|---|---|---|---|",
    ]
    for pt in results["q_sweep"]:
        lines.append(
            f"| {pt['q']:g} | {pt['exact']['improvable_mass']:.4g} | {geometric_mean(pt['rollouts']):.3g} "
            f"[{pt['exact']['rollouts']:.3g}] | {np.mean(pt['improvements']):.3g} [{pt['exact']['improvement']:.3g}] |"
        )
    if results["uncertified_streams"]:
        lines += ["", f"{results['uncertified_streams']} streams hit max_rollouts without certifying."]
    return "\n".join(lines) + "\n"


def run_comparison(
    problem: ProblemConfig,
    p: float,
    resets: list[str],
    oracle_accuracy: float,
    iterations: int,
    proposal_rollouts: int,
    certify_config: CertifyConfig,
    seed: int,
    progress: bool = True,
) -> dict:
    """Full CPI runs from the uniform policy, one per reset distribution, with the greedy policy
    estimated from `proposal_rollouts` reset rollouts per iteration (a practical learner)."""
    if iterations < 1:
        raise ResetRLError(f"iterations must be at least 1, got {iterations}")
    if proposal_rollouts < 1:
        raise ResetRLError(f"proposal_rollouts must be at least 1, got {proposal_rollouts}")
    started = time.perf_counter()
    chain = pivot_chain(problem.horizon, problem.num_actions, p, problem.success_sound, problem.success_error)
    runs = {}
    for reset in tqdm(resets, desc="cpi runs", disable=not progress):
        rng = np.random.default_rng(seed_key(seed, reset, p, oracle_accuracy))
        steps = run_cpi(
            chain.mdp,
            uniform_policy(chain.mdp),
            reset,
            problem.tau,
            iterations,
            certify_config,
            rng,
            oracle_accuracy=oracle_accuracy,
            proposal_rollouts=proposal_rollouts,
        )
        runs[reset] = [{**asdict(step), "improvement": step.improvement} for step in steps]
    return {
        "problem": asdict(problem),
        "certify": asdict(certify_config),
        "p": p,
        "oracle_accuracy": oracle_accuracy,
        "iterations": iterations,
        "proposal_rollouts": proposal_rollouts,
        "seed": seed,
        "optimal_objective": optimal_objective(chain.mdp),
        "runs": runs,
        "runtime_seconds": time.perf_counter() - started,
    }


def run_report(results: dict) -> str:
    """Markdown summary of `run_comparison`: where each run got, at what cost, and why it stopped."""
    lines = [
        f"# CPI runs on the pivot chain, p = {results['p']:g}",
        "",
        f"Greedy policy estimated from {results['proposal_rollouts']} reset rollouts per iteration; "
        f"noisy oracle q = {results['oracle_accuracy']:g}; optimal J = {results['optimal_objective']:.4f}.",
        "",
        "| reset | iterations | J start | J end | reset rollouts | rollouts / iteration | stopped |",
        "|---|---|---|---|---|---|---|",
    ]
    for reset, steps in results["runs"].items():
        total = sum(step["rollouts"] for step in steps)
        stopped = steps[-1]["stopped"] or "iteration budget"
        lines.append(
            f"| {reset} | {len(steps)} | {steps[0]['objective']:.4f} | {steps[-1]['next_objective']:.4f} | "
            f"{total:.3g} | {total / len(steps):.3g} | {stopped} |"
        )
    return "\n".join(lines) + "\n"
