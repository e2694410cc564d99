"""The `cpi:` config section: the CPI theory lab (`resetrl cpi`, docs/cpi.md), beside the package that
reads it; `resetrl.config.Config` holds it as `cpi`."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from resetrl.errors import ResetRLError
from resetrl.sections import Section, comma_list


class CPIProblemConfig(Section):
    """The pivot-chain problem family (resetrl/cpi/mdp.py) and the improvability threshold."""

    horizon: int = Field(8, description="H, steps per chain.")
    num_actions: int = Field(4, description="|Y|, continuations to choose from at each step.")
    success_sound: float = Field(0.9, description="P(reward 1) of a chain that never derailed.")
    success_error: float = Field(0.1, description="P(reward 1) of a derailed chain (a lucky guess).")
    tau: float = Field(0.1, description="A state is improvable when some action has advantage > tau.")

    @model_validator(mode="after")
    def _a_pivot_chain(self) -> "CPIProblemConfig":
        from resetrl.cpi.mdp import pivot_chain

        try:
            pivot_chain(self.horizon, self.num_actions, 1.0, self.success_sound, self.success_error)
        except ResetRLError as error:
            raise ValueError(str(error)) from None
        pivot_advantage = (1.0 - 1.0 / self.num_actions) * (self.success_sound - self.success_error)
        if not 0.0 <= self.tau < pivot_advantage:
            raise ValueError(f"tau must be in [0, {pivot_advantage:.3g}) (the pivot's advantage under the uniform "
                             f"starting policy), got {self.tau}; otherwise nothing is improvable")
        return self


class CPICertifyConfig(Section):
    """How an improvement is certified (resetrl/cpi/estimate.py: checkpoints and the stop rule)."""

    confidence: float = Field(0.95, gt=0, lt=1, description="1 - delta, holding simultaneously over all checkpoints.")
    margin: float = Field(0.5, gt=0, lt=1, description="Stop once LCB >= margin * estimate (0.5: the certified advantage is at least half the estimate).")
    first_checkpoint: int = Field(32, ge=2, description="n_0, the first number of rollouts looked at.")
    growth: float = Field(2**0.25, gt=1, description="g, the ratio between consecutive checkpoints.")
    max_rollouts: float = Field(1e10, description="Give up (not certified) past this many rollouts.")

    @model_validator(mode="after")
    def _room_to_certify(self) -> "CPICertifyConfig":
        if self.max_rollouts < self.first_checkpoint:
            raise ValueError(f"max_rollouts ({self.max_rollouts}) is below first_checkpoint")
        return self


class CPIMeasureConfig(Section):
    """What `resetrl cpi measure` sweeps."""

    p_grid: list[float] = Field([0.025, 0.05, 0.1, 0.2, 0.4, 0.8], description="Probabilities of reaching the pivot (the p sweep; at least two, for a slope).")
    noisy_accuracy: float = Field(0.5, description="q of the noisy oracle in the p sweep.")
    q_grid: list[float] = Field([0.0, 0.1, 0.25, 0.5, 0.75, 1.0], description="Oracle accuracies of the q sweep.")
    q_sweep_p: float = Field(0.1, description="The p at which q is swept.")
    seeds: int = Field(50, ge=2, description="Independent certification streams per grid point (slopes need an uncertainty).")
    bootstrap: int = Field(2000, ge=2, description="Bootstrap resamples for the slopes' standard errors.")

    _comma_lists = field_validator("p_grid", "q_grid", mode="before")(comma_list)

    @model_validator(mode="after")
    def _grids(self) -> "CPIMeasureConfig":
        if len(self.p_grid) < 2:
            raise ValueError(f"p_grid needs at least two values to fit a slope, got {list(self.p_grid)}")
        for p in (*self.p_grid, self.q_sweep_p):
            if not 0.0 < p <= 1.0:
                raise ValueError(f"every p must be in (0, 1], got {p}")
        for q in (*self.q_grid, self.noisy_accuracy):
            if not 0.0 <= q <= 1.0:
                raise ValueError(f"every oracle accuracy q must be in [0, 1], got {q}")
        return self


class CPIRunConfig(Section):
    """What `resetrl cpi run` runs: full CPI runs at one p, one per reset distribution."""

    p: float = Field(0.2, gt=0, le=1, description="Probability of reaching the pivot.")
    resets: list[str] = Field(["random", "oracle", "noisy-oracle"], description="Reset distributions, one run each (random, oracle, noisy-oracle).")
    oracle_accuracy: float = Field(0.5, ge=0, le=1, description="q of the noisy oracle.")
    iterations: int = Field(300, ge=1, description="CPI iterations per run.")
    proposal_rollouts: int = Field(4000, ge=1, description="Reset rollouts per iteration to estimate the greedy policy from.")

    _comma_lists = field_validator("resets", mode="before")(comma_list)

    @field_validator("resets")
    @classmethod
    def _known_resets(cls, value: list[str]) -> list[str]:
        from resetrl.cpi.resets import RESET_DISTRIBUTIONS

        for name in value:
            RESET_DISTRIBUTIONS.get(name)
        return value


class CPIExactConfig(Section):
    """What `resetrl cpi exact` prints: the dynamic-programming quantities of one problem."""

    p: float = Field(0.1, gt=0, le=1, description="Probability of reaching the pivot.")
    oracle_accuracy: float = Field(0.5, ge=0, le=1, description="q of the noisy oracle.")


class CPIConfig(Section):
    seed: int = Field(0, ge=0, description="Base seed of the CPI lab; its results are a function of it.")
    problem: CPIProblemConfig = Field(default_factory=CPIProblemConfig)
    certify: CPICertifyConfig = Field(default_factory=CPICertifyConfig)
    measure: CPIMeasureConfig = Field(default_factory=CPIMeasureConfig)
    run: CPIRunConfig = Field(default_factory=CPIRunConfig)
    exact: CPIExactConfig = Field(default_factory=CPIExactConfig)
