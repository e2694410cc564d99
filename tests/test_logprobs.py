"""Log-probabilities with shared contexts: the same values and gradients as one plain forward per row."""

import copy

import torch

from resetrl.logprobs import collate, response_logprobs
from resetrl.models import add_lora


def plain_logprobs(model, prompt, response, train_start):
    """One row, no padding, no sharing: log pi(y_t) of response[train_start:]."""
    ids = torch.tensor([prompt + response])
    logits = model(input_ids=ids).logits[0, len(prompt) - 1:-1]
    logprobs = torch.log_softmax(logits.float(), dim=-1).gather(-1, torch.tensor(response).unsqueeze(-1)).squeeze(-1)
    return logprobs[train_start:]


def rows(tokenizer):
    """Two prompts with several responses each, and a reset group (shared prefix, trained suffixes)."""
    encode = lambda text: tokenizer(text, add_special_tokens=False).input_ids  # noqa: E731
    first, second = encode("Q: 3 + 4 - 2 = ?\n"), encode("Q: a longer question, 9 * 2 + 1 = ?\n")
    prefix = encode("3 + 4 = 7</thought>\n")
    return [
        (first, encode("7 - 2 = 5, so \\boxed{5}</thought>"), 0),
        (first, encode("7 - 2 = 4</thought>"), 0),
        (second, encode("9 * 2 = 18</thought>\n18 + 1 = 19</thought>"), 0),
        (first, prefix + encode("7 - 2 = 5</thought>"), len(prefix)),
        (first, prefix + encode("so \\boxed{5}</thought>"), len(prefix)),
        (second, encode("\\boxed{19}"), 0),
    ]


def test_shared_contexts_give_plain_logprobs_and_gradients(tiny):
    model, tokenizer = copy.deepcopy(tiny[0]), tiny[1]
    model.train()
    data = rows(tokenizer)
    batch = collate([p for p, _, _ in data], [r for _, r, _ in data], [s for _, _, s in data], tokenizer.pad_token_id)
    assert batch.context_ids.shape[0] == 3  # two prompts, one reset context
    logprobs = response_logprobs(model, batch)
    for row, (prompt, response, train_start) in enumerate(data):
        expected = plain_logprobs(model, prompt, response, train_start)
        trained = batch.loss_mask[row].bool()
        assert trained.sum() == len(response) - train_start
        torch.testing.assert_close(logprobs[row][trained], expected, atol=1e-5, rtol=1e-5)

    weights = torch.linspace(-1, 1, len(data))
    (logprobs * batch.loss_mask * weights[:, None]).sum().backward()
    shared = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    sum(w * plain_logprobs(model, *row).sum() for w, row in zip(weights, data)).backward()
    for got, expected in zip(shared, (p.grad for p in model.parameters())):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_lora_model_and_rows_without_shared_context(tiny):
    model = add_lora(copy.deepcopy(tiny[0]), rank=4, alpha=8, dropout=0.0, target_modules="all-linear")
    tokenizer = tiny[1]
    data = [row for row in rows(tokenizer) if row[2] == 0][:3]
    batch = collate([p for p, _, _ in data], [r for _, r, _ in data], [0] * len(data), tokenizer.pad_token_id)
    logprobs = response_logprobs(model, batch)
    for row, (prompt, response, _) in enumerate(data):
        torch.testing.assert_close(logprobs[row][: len(response)], plain_logprobs(model, prompt, response, 0),
                                   atol=1e-5, rtol=1e-5)
    single = collate([[5]], [[6, 7]], [0], tokenizer.pad_token_id)  # a one-token prompt: empty context
    torch.testing.assert_close(response_logprobs(model, single)[0], plain_logprobs(model, [5], [6, 7], 0),
                               atol=1e-5, rtol=1e-5)


def test_collate_aligns_the_sampling_logprobs_with_the_loss_mask():
    prompts, responses, starts = [[1, 2], [1, 2]], [[5, 6, 7], [5, 8]], [1, 0]
    batch = collate(prompts, responses, starts, 0, [[-0.1, -0.2, -0.3], [-0.4, -0.5]])
    assert batch.sampling_logprobs.shape == batch.loss_mask.shape
    assert torch.allclose(batch.sampling_logprobs, torch.tensor([[-0.2, -0.3], [-0.4, -0.5]]))
    # None when a row has none, too few, or a NaN among its trained tokens (not in its untrained prefix).
    assert collate(prompts, responses, starts, 0).sampling_logprobs is None
    assert collate(prompts, responses, starts, 0, [[-0.1, -0.2, -0.3], None]).sampling_logprobs is None
    assert collate(prompts, responses, starts, 0, [[-0.1, -0.2], [-0.4, -0.5]]).sampling_logprobs is None
    assert collate(prompts, responses, starts, 0, [[-0.1, float("nan"), -0.3], [-0.4, -0.5]]).sampling_logprobs is None
    prefix_unknown = collate(prompts, responses, starts, 0, [[float("nan"), -0.2, -0.3], [-0.4, -0.5]])
    assert prefix_unknown.sampling_logprobs is not None
