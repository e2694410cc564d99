"""The registries: each kind's unknown name is a one-line error listing the known ones; each training
method's entry says its layout, localizer and loss; the config accepts exactly the registered keys."""

import random

import pytest

from resetrl.config import TrainConfig, load_config
from resetrl.errors import ResetRLError
from resetrl.generation.base import GENERATION_MODES
from resetrl.generation.hf import HFBackend
from resetrl.groups import LAYOUTS, Layout
from resetrl.ics.verification import VERIFY_GATES
from resetrl.losses import AGGREGATIONS, LOSSES, default_aggregation
from resetrl.methods import METHODS
from resetrl.registry import Registry
from resetrl.resets import LOCALIZERS, LocateContext, OracleLocalizer, ResetPoint
from resetrl.scoring import Sample
from resetrl.tasks import TASK_FAMILIES, create_task, task_factory, task_names
from resetrl.tasks.base import Problem, Task


def one_line_error(registry: Registry, name: str = "nope") -> str:
    with pytest.raises(ResetRLError) as error:
        registry.get(name)
    return str(error.value)


@pytest.mark.parametrize("registry, known", [
    (METHODS, ["critique_grpo", "first_reset", "grpo", "grpo_mask", "oracle", "rrpo", "score", "spo_tree", "srpo"]),
    (LAYOUTS, ["1x4", "1x8", "2x4"]),
    (LOCALIZERS, ["oracle", "quote", "random", "regenerate", "self"]),
    (AGGREGATIONS, ["micro-token-mean", "padded-length-mean", "seq-mean-token-mean", "token-mean"]),
    (GENERATION_MODES, ["chain", "thought"]),
    (VERIFY_GATES, ["any", "majority", "unanimous"]),
    (TASK_FAMILIES, ["reasoning_gym"]),
])
def test_unknown_name_is_one_line_listing_the_known(registry, known):
    assert registry.names() == known
    message = one_line_error(registry)
    assert "\n" not in message and f"unknown {registry.kind} 'nope'" in message
    assert message.endswith("known: " + ", ".join(known))


def test_registering_a_name_twice_fails():
    registry = Registry("thing")
    registry.register("a")(1)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("a")(2)


def test_method_entries():
    grpo, rrpo, srpo, oracle = (METHODS.get(name) for name in ("grpo", "rrpo", "srpo", "oracle"))
    # GRPO: no resets, the whole budget one fresh group; the others: the configured reset layout.
    assert grpo.localizer is None and grpo.reset_localizer() is None
    assert grpo.layout("1x8", 6) == Layout(parents=0, fresh=6, continuations=0)
    for method, localizer in ((rrpo, "random"), (srpo, "self"), (oracle, "oracle")):
        assert method.localizer == localizer
        assert isinstance(method.reset_localizer(), LOCALIZERS.get(localizer))
        assert method.layout("2x4", 6) == LAYOUTS.get("2x4") and method.layout("1x4", 6).budget == 8
    with pytest.raises(ResetRLError, match="unknown layout '3x3'"):
        srpo.layout("3x3", 8)
    # Loss defaults: train.grpo_loss overrides train.loss for GRPO only.
    train = TrainConfig(loss="pg", grpo_loss="clip")
    assert grpo.loss(train) == "clip" and srpo.loss(train) == rrpo.loss(train) == oracle.loss(train) == "pg"
    assert grpo.loss(TrainConfig(loss="clip")) == "clip"
    assert default_aggregation("pg") == "seq-mean-token-mean" and default_aggregation("clip") == "token-mean"
    assert LOSSES.names() == ["clip", "pg", "shaped_offpolicy"]


def test_oracle_localizer_checks_its_task():
    OracleLocalizer().check(create_task("arith_chain"))  # knows the true first error

    class NoFirstError(Task):
        name = "plain"

    with pytest.raises(ResetRLError) as error:
        OracleLocalizer().check(NoFirstError())
    assert "\n" not in str(error.value) and "oracle" in str(error.value) and "'plain'" in str(error.value)


def chain(thoughts, first_error=None) -> Sample:
    return Sample("p", "parent", [1], [2], 0, [], thoughts, None, 0.0, "answer", 1, first_error=first_error)


def test_localizers_share_one_reset_point_type():
    problem = Problem("p", "What is 1 + 1?", "2")
    chains = [chain(["a", "b", "c"], first_error=2), chain(["a"])]
    context = LocateContext(ask=lambda texts: [("\\boxed{3}", 4)] * len(texts), rng=random.Random(0))
    oracle = LOCALIZERS.get("oracle")().locate([problem] * 2, chains, context)
    assert oracle == [ResetPoint(2, "oracle"), ResetPoint(1, "oracle:unknown->1")]
    assert all(1 <= p.step <= 3 and p.source == "random"
               for p in LOCALIZERS.get("random")().locate([problem] * 2, chains, context))
    assert LOCALIZERS.get("regenerate")().locate([problem], chains[:1], context) == [ResetPoint(1, "regenerate")]
    # self: training's record ("self:" sources) and Thought-ICS's (plain) from one localizer.
    trained = LOCALIZERS.get("self")().locate([problem] * 2, chains, context)
    assert [(p.step, p.source, p.tokens) for p in trained] == [(3, "self:boxed", 4), (1, "self:out_of_range->1", 4)]
    ics = LOCALIZERS.get("self")().locate([problem], chains[:1], LocateContext(context.ask, level="L2"))
    assert (ics[0].step, ics[0].source, ics[0].text) == (3, "boxed", "\\boxed{3}")

    def failing(texts):
        raise RuntimeError("engine down")

    failed = LOCALIZERS.get("self")().locate([problem], chains[:1], LocateContext(failing))
    assert failed == [ResetPoint(1, "self:call_failed->1")]


def test_config_validates_against_the_registries():
    for key, value, kind in (("method", "ppo", "method"), ("rollout.layout", "3x3", "layout"),
                             ("generation.mode", "token", "generation mode"),
                             ("train.loss_aggregation", "sum", "loss aggregation")):
        with pytest.raises(ResetRLError) as error:
            load_config(preset="smoke", overrides=[f"{key}={value}"])
        message = str(error.value)
        assert "\n" not in message and key in message and f"unknown {kind} '{value}'" in message
    config = load_config(preset="smoke", overrides=["method=oracle", "rollout.layout=2x4", "generation.mode=thought",
                                                    "train.loss_aggregation=token-mean"])
    assert (config.method, config.rollout.layout, config.generation.mode) == ("oracle", "2x4", "thought")


def test_generation_mode_auto_is_each_backends_own():
    from resetrl.generation.vllm import VLLMBackend

    assert HFBackend.mode_for("auto") == "chain" and VLLMBackend.mode_for("auto") == "thought"
    assert HFBackend.mode_for("thought") == "thought"


def test_task_families():
    factory, member = task_factory("reasoning_gym:chain_sum")
    assert factory is TASK_FAMILIES.get("reasoning_gym") and member == "chain_sum"
    assert "reasoning_gym:<generator>" in task_names()
    with pytest.raises(ResetRLError, match="reasoning_gym:<generator>"):
        task_factory("nope:thing")  # not a family: an unknown task, listing every known name


def test_a_declared_entry_is_known_by_name_and_imported_on_first_get():
    from resetrl.generation import BACKENDS

    registry = Registry("thing")
    registry.declare("json", "json")  # a module that registers nothing: get still fails, naming it
    assert "json" in registry and registry.check("json") == "json" and registry.names() == ["json"]
    with pytest.raises(ResetRLError, match="unknown thing 'json'"):
        registry.get("json")
    assert BACKENDS.get("hf") is HFBackend  # declared in resetrl.generation, registered by hf.py
    with pytest.raises(ResetRLError, match=r"unknown thing 'jsn'; known: json \(did you mean 'json'\?\)"):
        registry.check("jsn")
