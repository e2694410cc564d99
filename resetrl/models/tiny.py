"""`tiny`: a randomly initialised Llama-style model with a tokenizer built in code. For tests and the
`smoke` preset: it runs the whole pipeline in seconds and needs nothing downloaded."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from resetrl.models.tokenizer import build_tokenizer
from resetrl.prompts import INSTRUCTIONS, localization_prompt, question_block
from resetrl.tasks import create_task
from resetrl.thoughts import format_chain


def tiny_corpus(size: int = 300) -> list[str]:
    """Texts the tiny tokenizer is trained on: the prompts and arith_chain chains."""
    task = create_task("arith_chain")
    texts = [INSTRUCTIONS, localization_prompt("q", ["a", "b"], "short")]
    for problem in task.problems("train", size, seed=0):
        chain = task.reference_chain(problem)
        texts.append(question_block(problem.question, task.examples()) + format_chain(chain))
    return texts


def build_tiny(seed: int = 0, hidden_size: int = 64, layers: int = 2, vocab_size: int = 512):
    tokenizer = build_tokenizer(tiny_corpus(), vocab_size=vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=2,  # head size 32: the smallest vLLM's CPU attention kernels accept
        num_key_value_heads=1,
        max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config), tokenizer
