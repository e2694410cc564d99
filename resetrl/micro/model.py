"""The micro model: a small Llama-style causal LM and its tokenizer, built in code.

The tokenizer is the project's byte-level BPE (`resetrl.models.tokenizer`: digits one per token,
`</thought>` and `\\boxed{` whole tokens, ChatML template) trained on arith_chain prompts and
chains, plus one extra token per *fixed sentence* of the project's two prompts (the thought-format
instructions, and the constant paragraphs of the localization prompt). The prompts are the project's
own text, unchanged; reading each fixed paragraph as one symbol makes a solver prompt about 30 tokens
instead of 100 and a localization prompt about 90 instead of 220, so a 1M-parameter model spends
its compute on the problem. If the prompt text is edited later, the old micro model still encodes it
(byte-level fallback) but sees it as unfamiliar tokens: rebuild it. A built model's folder, and how it
loads, are resetrl/models/micro.py's.
"""

from __future__ import annotations

import random
import re

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from resetrl.models.tokenizer import build_tokenizer
from resetrl.prompts import INSTRUCTIONS, localization_prompt, question_block
from resetrl.tasks.base import Task
from resetrl.thoughts import format_chain

# Segments of the prompts shorter than this stay ordinary BPE text ("Step ", ": ", " to ").
MIN_PHRASE_CHARS = 16


def prompt_phrases() -> list[str]:
    """The fixed sentences of the solver and localization prompts, read off the prompt functions
    themselves (so they always match the current prompt text)."""
    question_mark, thought_mark = "\x01", "\x02"
    rendered = localization_prompt(question_mark, [thought_mark, thought_mark], "short")
    segments = re.split(r"[\x01\x02]|\d+", rendered)
    return [INSTRUCTIONS] + [s for s in segments if len(s) >= MIN_PHRASE_CHARS]


def tokenizer_corpus(task: Task, size: int = 500, seed: int = 0) -> list[str]:
    """Solver and localization texts of `size` training problems: every word the testbed uses,
    also where a prompt phrase token swallows the space before it ("Problem: " + "Start") and the
    chat template's role names."""
    texts = ["user\nassistant\n"]
    for problem in task.problems("train", size, seed):
        texts.append(problem.question)
        chain = task.reference_chain(problem)
        texts.append(question_block(problem.question, None) + format_chain(chain))
        if getattr(task, "phrasings", 0):  # the training chains' connectives ("Next,") become tokens too
            texts.append(format_chain(task.training_chain(problem, random.Random(f"tokenizer/{problem.id}"))))
        texts.append(localization_prompt(problem.question, chain, "short") + f"\\boxed{{{len(chain)}}}")
    return texts


def build_micro_tokenizer(task: Task, vocab_size: int = 1024):
    """Deterministic for a given task: the BPE saturates (every word of the corpus becomes a token)
    well below `vocab_size`."""
    tokenizer = build_tokenizer(tokenizer_corpus(task), vocab_size=vocab_size)
    tokenizer.add_tokens(prompt_phrases())
    return tokenizer


def micro_config(tokenizer, hidden_size: int = 128, layers: int = 4, heads: int = 4) -> LlamaConfig:
    """A Llama block stack about 1M parameters in size (hidden 128, 4 layers: 0.9M)."""
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 3,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )


def init_micro_model(tokenizer, seed: int, **sizes) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    return LlamaForCausalLM(micro_config(tokenizer, **sizes))
