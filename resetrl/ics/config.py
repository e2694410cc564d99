"""The `ics:` config section: Thought-ICS at inference (`resetrl ics`, `resetrl localize`; docs/ics.md),
beside the package that reads it; `resetrl.config.Config` holds it as `ics`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from resetrl.sections import Section, comma_list, registered

VerifyGate = Annotated[str, registered("resetrl.ics.verification", "VERIFY_GATES")]

# The Thought-ICS methods `resetrl ics --compare` runs, in table order; `oracle-ics` (analysis only:
# the true first error as localizer) is run by name. Here, not in the package's engine, so `--help` needs no torch.
ICS_COMPARED = ("thought-ics", "regen", "token-ics", "self-refine", "majority")
ICS_ANALYSIS = ("oracle-ics",)


class ICSConfig(Section):
    """Thought-ICS at inference (`resetrl ics`, `resetrl localize`; docs/ics.md). The model, task and
    prompt format come from the other sections. Sampling, the L3 prompts and the verdict parser
    default to Paper B's reference code (docs/ics.md, "Reference settings"); a sampling field set to
    null takes the rollout section's value, as resetrl did before."""

    level: Literal["L1", "L2", "L3"] = Field("L2", description="L1: oracle verification, the localizer sees the correct answer; L2: oracle verification ('wrong' only), self-localization; L3: self-verification and self-localization.")
    methods: list[str] = Field(default_factory=lambda: ["thought-ics"], description=f"Methods run, in order: {', '.join(ICS_COMPARED + ICS_ANALYSIS)} (oracle-ics localizes with the true first error); a comma-joined string is split. --compare runs {', '.join(ICS_COMPARED)}.")
    size: int | None = Field(None, ge=1, description="Test problems; default: task.test_size.")
    variant: Literal["S", "A"] | None = Field(None, description="Headline variant: S returns the final chain, A the first unless verified; default: A at L3, S at L1/L2 (both are always reported).")
    max_iters: int = Field(10, ge=0, description="Verify -> localize -> resample rounds L (Paper B: 10).")
    votes: int | None = Field(None, ge=1, description="Samples of the majority-vote baseline; default: max_iters + 1 (the loop's budget).")
    temperature: float | None = Field(1.0, ge=0, description="First-chain (and majority-vote) temperature (reference: 1.0); null = rollout.temperature.")
    resample_temperature: float | None = Field(0.7, ge=0, description="Temperature of chains resampled after a localization (reference: 0.7); null = rollout.temperature.")
    localize_temperature: float | None = Field(0.3, ge=0, description="Localizer temperature (reference: 0.3); null = rollout.localize_temperature.")
    verify_temperature: float | None = Field(0.3, ge=0, description="Self-verification temperature, L3 (reference: 0.3); null = rollout.localize_temperature.")
    top_p: float | None = Field(0.9, gt=0, le=1, description="Top-p of every ICS call: chains, verifier, localizer (reference: 0.9); null = chains take rollout.top_p and the verifier and localizer top-p 1, as the trainer's localizer.")
    top_k: int | None = Field(50, ge=0, description="Top-k of every ICS call (reference: 50; 0 = off); null = chains take rollout.top_k and the verifier and localizer none.")
    verify_max_tokens: int | None = Field(1024, ge=1, description="Token cap of a self-verification answer, L3 (reference: 1024); null = rollout.localize_max_tokens.")
    verify_prompt: Literal["reference", "first-person"] = Field("reference", description="L3 verification prompt. reference (Paper B's code): a reviewer checks 'a solution' step by step, shown with its final answer; first-person: the model checks 'your previous solution' without being shown the answer and is told not to solve again.")
    verdict_parser: Literal["reference", "exact"] = Field("reference", description="How a verification answer becomes YES/NO. reference (Paper B's code): the last \\boxed{ must close, else NO; its text containing YES (any case) is YES, else containing NO is NO; a closed box with neither is YES only if the answer contains 'yes' and no 'no' anywhere (any case, inside words too), else NO. exact: the last complete box must be exactly one yes/no word, else the last upper-case YES or NO in the prose, else unparsed (not YES).")
    localize_prompt_l3: Literal["reference", "note"] = Field("reference", description="L3 localizer prompt. reference (Paper B's code): neutral, verify the chain step by step and box the first erroneous step or 0 if it is correct; note: the trainer's localization prompt (which says the answer is wrong) plus a note that this verdict may be mistaken.")
    verify_samples: int = Field(1, ge=1, description="Self-verification samples k per check (L3).")
    verify_gate: VerifyGate = Field("majority", description="How k verification votes certify a chain: any, majority or unanimous YES.")
    localize_samples: int = Field(2, ge=1, description="`resetrl localize`: chains sampled per problem and format.")

    _split_methods = field_validator("methods", mode="before")(comma_list)

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in ICS_COMPARED + ICS_ANALYSIS]
        if unknown or not value:
            raise ValueError(f"unknown ICS method(s) {', '.join(unknown) or '(none)'}; "
                             f"known: {', '.join(ICS_COMPARED + ICS_ANALYSIS)}")
        return value
