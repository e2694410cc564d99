"""Generation with Hugging Face transformers models, on CPU or GPU.

Two modes (`generation.mode`):
- `chain` (default): a whole chain in one batched call; every row is stopped by its own thought-format
  rules (RowStopper, generation/stopping.py): answer, thought count, per-thought cap, total cap, end-of-sequence.
- `thought`: one batched call per thought, every row stopped at `</thought>` (the reference code's
  loop); the chain rules are applied between calls. A call resumes from the keys and values the
  previous one left in the PrefixStore, so a thought is not encoded twice. Same distribution as
  `chain`, more calls.

Two engines:
- `cached` (default for decoders whose layers all attend to the full context: Llama, Qwen2, ...):
  each distinct context is encoded once and its keys and values are expanded to its n continuations
  (n chains of a prompt, K continuations of a reset prefix); contexts encoded in earlier calls are
  reused from a PrefixStore; the KV cache is preallocated (no per-step copy); finished rows leave
  the batch; sampling is exact top-k/top-p without sorting the vocabulary (sampling.py).
- `generate`: `model.generate` with RowStopper as a StoppingCriteria, for other architectures.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import StoppingCriteriaList

from resetrl.attention import cache_dtype
from resetrl.generation.base import (BACKENDS, GENERATION_MODES, ChainRequest, GeneratedChain, GenerationBackend,
                                     SamplingParams)
from resetrl.generation.cache_keyword import cache_keyword
from resetrl.generation.prefix_cache import BatchKVCache, PrefixStore, supports_batch_cache
from resetrl.generation.sampling import sample_next_tokens
from resetrl.generation.stopping import RowStopper
from resetrl.precision import compute, torch_dtype
from resetrl.thoughts import ChainLimits

ENGINES = ("auto", "cached", "generate")


@dataclass
class ContextRows:
    """`n` rows sampled after one context, each with the same token cap and prior thought count.
    `remember`: keep the context's keys and values for later calls (a prompt, which reset contexts
    and top-up draws start with). What `HFBackend.sample_rows` takes (bench/ drives the engine so)."""

    context: list[int]
    n: int
    cap: int
    prior_thoughts: int = 0
    remember: bool = False


@BACKENDS.register("hf")
class HFBackend(GenerationBackend):
    auto_mode = "chain"  # measured faster than thought by thought on hf (docs/vllm.md)

    def __init__(self, model, tokenizer, batch_size: int = 64, mode: str = "chain", engine: str = "auto",
                 prefix_cache_mb: int = 1024, dtype: str = "float32"):
        GENERATION_MODES.get(mode)
        if engine not in ENGINES:
            raise ValueError(f"unknown generation engine {engine!r}; known: {', '.join(ENGINES)}")
        self.model, self.tokenizer, self.batch_size, self.mode = model, tokenizer, batch_size, mode
        if engine == "auto":
            engine = "cached" if supports_batch_cache(model) else "generate"
        self.engine = engine
        self.dtype = dtype  # float32, or bfloat16: every call under bf16 autocast (resetrl/precision.py)
        self.store = PrefixStore(prefix_cache_mb * 2**20) if engine == "cached" and prefix_cache_mb > 0 else None
        eos = model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        self.eos_ids = {token for token in eos + [tokenizer.eos_token_id] if token is not None}
        # Counters for benchmarks and step statistics.
        self.tokens_generated = 0
        self.calls = 0  # generate_chains / generate_text calls
        self.batches = 0  # batched generation runs (a call makes one per `batch_size` rows, per thought round)
        self.encoded_tokens = 0  # context tokens run through the model (not reused, not duplicated)

    @classmethod
    def from_config(cls, model, tokenizer, config, dtype: str = "float32") -> "HFBackend":
        return cls(model, tokenizer, batch_size=config.batch_size, mode=cls.mode_for(config.mode),
                   prefix_cache_mb=config.prefix_cache_mb, dtype=dtype)

    # -- the interface --------------------------------------------------------------------------
    def generate_chains(self, requests: list[ChainRequest], sampling: SamplingParams,
                        limits: ChainLimits) -> list[list[GeneratedChain]]:
        self.calls += 1
        # A prompt (no reset prefix) is remembered: later calls of the step start with it.
        work = [ContextRows(r.context_ids, r.n, max(1, limits.max_total_tokens - r.prefix_tokens), r.prefix_thoughts,
                      remember=r.prefix_tokens == 0) for r in requests]
        if self.mode == "thought":
            outputs = self._by_thought(work, sampling, limits)
        else:
            outputs = self.sample_rows(work, sampling, limits)
        return [[GeneratedChain(ids, reason, logprobs) for ids, reason, logprobs in rows] for rows in outputs]

    def generate_text(self, prompts: list[list[int]], sampling: SamplingParams,
                      max_new_tokens: int) -> list[list[int]]:
        self.calls += 1
        # Free-text prompts (localization, verification) are not reused later: not remembered.
        outputs = self.sample_rows([ContextRows(p, 1, max_new_tokens) for p in prompts], sampling, None)
        return [rows[0][0] for rows in outputs]

    def release_memory(self) -> None:
        """Drop the keys and values kept for reuse (stale once the weights change), e.g. before training."""
        if self.store is not None:
            self.store.clear()

    # -- thought-by-thought mode ----------------------------------------------------------------
    def _by_thought(self, work: list[ContextRows], sampling: SamplingParams,
                    limits: ChainLimits) -> list[list[tuple[list[int], str]]]:
        """One call per thought: every open chain samples its next thought, stopped at `</thought>`."""
        chains = [[([], None, []) for _ in range(item.n)] for item in work]  # (ids, final reason, logprobs)
        thoughts = [[item.prior_thoughts] * item.n for item in work]
        # First round: the chains of a context still share it, so it is encoded once for all of them.
        round_work = list(work)
        owners = [[(index, copy) for copy in range(item.n)] for index, item in enumerate(work)]
        kept_keys: list[tuple[int, ...]] = []
        while round_work:
            added: list[tuple[int, ...]] = []
            outputs = self.sample_rows(round_work, sampling, limits, stop_at_thought_end=True, remember_continuing=added)
            self._forget(kept_keys)  # the previous round's entries were consumed by this round's encoding
            kept_keys = added
            next_work, next_owners = [], []
            for rows, row_owners in zip(outputs, owners):
                for (ids, reason, logprobs), (index, copy) in zip(rows, row_owners):
                    so_far = chains[index][copy][0] + ids
                    previous = chains[index][copy][2]
                    logprobs_so_far = None if previous is None or logprobs is None else previous + logprobs
                    if reason == "thought":
                        thoughts[index][copy] += 1
                        chains[index][copy] = (so_far, None, logprobs_so_far)
                        cap = work[index].cap - len(so_far)
                        next_work.append(ContextRows(work[index].context + so_far, 1, cap, thoughts[index][copy]))
                        next_owners.append([(index, copy)])
                    else:
                        chains[index][copy] = (so_far, reason, logprobs_so_far)
            round_work, owners = next_work, next_owners
        self._forget(kept_keys)
        return chains

    def _forget(self, keys: list[tuple[int, ...]]) -> None:
        for key in keys:
            if self.store is not None:
                self.store.discard(key)

    # -- batching -------------------------------------------------------------------------------
    @torch.no_grad()
    def sample_rows(self, work: list[ContextRows], sampling: SamplingParams, limits: ChainLimits | None,
                    stop_at_thought_end: bool = False,
                    remember_continuing: list | None = None) -> list[list[tuple[list[int], str, list[float] | None]]]:
        """For each work item, its n (new token ids, stop reason, token log-probabilities). Rows are sorted by context length
        (less padding) and cut into batches of `batch_size` rows; a context split over two batches is
        encoded again in the second (from the PrefixStore when it is on)."""
        # Equal contexts end up side by side, so they are encoded once even across work items.
        order = sorted(range(len(work)), key=lambda index: (len(work[index].context), work[index].context))
        rows = [(index, copy) for index in order for copy in range(work[index].n)]
        outputs: list[list] = [[None] * item.n for item in work]
        was_training = self.model.training
        self.model.eval()
        with compute(self.dtype, next(self.model.parameters()).device):
            self._run_batches(work, rows, outputs, sampling, limits, stop_at_thought_end, remember_continuing)
        self.model.train(was_training)
        return outputs

    def _run_batches(self, work: list[ContextRows], rows: list[tuple[int, int]], outputs: list[list],
                     sampling: SamplingParams, limits: ChainLimits | None, stop_at_thought_end: bool,
                     remember_continuing: list | None) -> None:
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start:start + self.batch_size]
            groups: list[tuple[int, int]] = []  # (work index of a distinct context, its rows here), in order
            for index, _ in chunk:
                if groups and work[groups[-1][0]].context == work[index].context:
                    groups[-1] = (groups[-1][0], groups[-1][1] + 1)
                else:
                    groups.append((index, 1))
            stopper = RowStopper(self.tokenizer.decode, self.eos_ids, [work[index].cap for index, _ in chunk],
                                 limits, [work[index].prior_thoughts for index, _ in chunk], stop_at_thought_end)
            contexts = [work[index].context for index, _ in groups]
            if self.engine == "cached":
                remember = [work[index].remember for index, _ in groups]
                self._decode(contexts, [count for _, count in groups], sampling, stopper, remember,
                             remember_continuing)
            else:
                self._generate_with_hf([work[index].context for index, _ in chunk], sampling, stopper)
            self.batches += 1
            for position, (index, copy) in enumerate(chunk):
                ids = stopper.generated[position]
                outputs[index][copy] = (ids, stopper.reasons[position] or "max_tokens", stopper.row_logprobs(position))
                self.tokens_generated += len(ids)

    # -- the cached engine ----------------------------------------------------------------------
    def _decode(self, contexts: list[list[int]], counts: list[int], sampling: SamplingParams,
                stopper: RowStopper, remember: list[bool], remember_continuing: list | None) -> None:
        """Sample continuations of `contexts` (distinct), `counts[i]` rows each, until every row of
        `stopper` has stopped. Rows of the stopper are the contexts' rows in order."""
        max_new = max(stopper.max_new)
        cache, logits, mask, positions = self._encode(contexts, max_new, remember)
        expand = torch.repeat_interleave(torch.arange(len(contexts)), torch.tensor(counts)).to(logits.device)
        if len(expand) > len(contexts):  # n continuations of one context: copy its cache, not re-encode it
            cache.take_rows(expand)
            logits, mask, positions = logits[expand], mask[expand], positions[expand]
        row_context = expand.tolist()
        live: list[int | None] = list(range(len(expand)))  # stopper row of each batch row; None = finished
        finished = 0
        for _ in range(max_new):
            tokens = sample_next_tokens(logits, sampling)
            # log pi(token) at temperature 1, as the trainer computes it: the loss's old_logprobs.
            scores = logits.float()
            logprobs = (scores.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(scores, dim=-1)).tolist()
            for batch_row, token in enumerate(tokens.tolist()):
                row = live[batch_row]
                if row is None:
                    continue
                reason = stopper.push(row, token, logprobs[batch_row])
                if reason is None:
                    continue
                if reason == "thought" and remember_continuing is not None and self.store is not None:
                    # Its next call resumes after these tokens: keep their keys and values (all but the
                    # newest token, which is not encoded yet).
                    key = contexts[row_context[row]] + stopper.generated[row][:-1]
                    columns = mask[batch_row, :cache.length].nonzero().squeeze(-1)
                    self.store.add(key, cache.read_row(batch_row, columns))
                    remember_continuing.append(tuple(key))
                live[batch_row] = None
                finished += 1
            if finished == len(live):
                break
            # Finished rows leave the batch once they are a quarter of it (each removal copies the cache).
            if finished * 4 >= len(live):
                keep = torch.tensor([i for i, row in enumerate(live) if row is not None], device=logits.device)
                cache.take_rows(keep)
                mask, positions, tokens = mask[keep], positions[keep], tokens[keep]
                live = [row for row in live if row is not None]
                finished = 0
            column = cache.length
            mask[:, column] = True
            logits = self.model(input_ids=tokens.unsqueeze(-1), attention_mask=mask[:, :column + 1],
                                position_ids=positions.unsqueeze(-1), **{cache_keyword(self.model): cache},
                                use_cache=True, logits_to_keep=1).logits[:, -1]
            positions += 1

    def _encode(self, contexts: list[list[int]], max_new: int, remember: list[bool]):
        """Run the distinct contexts through the model in one left-padded batch, reusing the longest
        stored prefix of each. Returns the cache (room for `max_new` more columns), the last logits,
        the attention mask over cache columns and each row's next position id."""
        device = next(self.model.parameters()).device
        hits = [(0, None)] * len(contexts)
        if self.store is not None:
            self.store.check_weights(self.model)
            # At least the last token is encoded: its logits start the sampling.
            hits = [self.store.lookup(context, len(context) - 1) for context in contexts]
        tails = [context[reused:] for context, (reused, _) in zip(contexts, hits)]
        reused_width = max(reused for reused, _ in hits)
        tail_width = max(len(tail) for tail in tails)
        width = reused_width + tail_width
        cache = BatchKVCache.allocate(self.model, len(contexts), width + max_new,
                                     cache_dtype(self.model, torch_dtype(self.dtype)))
        mask = torch.zeros((len(contexts), width + max_new), dtype=torch.bool, device=device)
        input_ids = torch.full((len(contexts), tail_width), self.tokenizer.pad_token_id, dtype=torch.long)
        position_ids = torch.zeros((len(contexts), tail_width), dtype=torch.long)
        for row, ((reused, entry), tail) in enumerate(zip(hits, tails)):
            # Layout of a row: [hole | reused prefix | padding | tail]; holes and padding are masked.
            hole = reused_width - reused
            if hole:
                for layer in cache.layers:  # masked, but must hold finite numbers (0 x NaN is NaN)
                    layer.keys[row, :, :hole] = 0
                    layer.values[row, :, :hole] = 0
            if reused:
                cache.write_row(row, hole, entry, reused)
                mask[row, hole:reused_width] = True
            input_ids[row, tail_width - len(tail):] = torch.tensor(tail, dtype=torch.long)
            position_ids[row, tail_width - len(tail):] = torch.arange(reused, reused + len(tail))
            mask[row, width - len(tail):width] = True
        cache.set_length(reused_width)
        logits = self.model(input_ids=input_ids.to(device), attention_mask=mask[:, :width],
                            position_ids=position_ids.to(device), **{cache_keyword(self.model): cache},
                            use_cache=True, logits_to_keep=1).logits[:, -1]
        self.encoded_tokens += sum(len(tail) for tail in tails)
        for row, context in enumerate(contexts):
            if remember[row] and self.store is not None:
                self.store.add(context, cache.read_row(row, mask[row, :width].nonzero().squeeze(-1)))
        positions = torch.tensor([len(context) for context in contexts], dtype=torch.long, device=device)
        return cache, logits, mask, positions

    # -- the generate engine --------------------------------------------------------------------
    def _generate_with_hf(self, contexts: list[list[int]], sampling: SamplingParams, stopper: RowStopper) -> None:
        device = next(self.model.parameters()).device
        width = max(len(context) for context in contexts)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(contexts), width), pad, dtype=torch.long)
        attention_mask = torch.zeros((len(contexts), width), dtype=torch.long)
        for row, context in enumerate(contexts):  # left padding: every row's new tokens line up
            input_ids[row, width - len(context):] = torch.tensor(context)
            attention_mask[row, width - len(context):] = 1
        self.encoded_tokens += sum(len(context) for context in contexts)
        greedy = sampling.temperature <= 0
        self.model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention_mask.to(device),
            do_sample=not greedy,
            temperature=None if greedy else sampling.temperature,
            top_p=None if greedy else sampling.top_p,
            top_k=None if greedy else sampling.top_k,
            max_new_tokens=max(stopper.max_new),
            stopping_criteria=StoppingCriteriaList([stopper]),
            pad_token_id=pad,
        )
