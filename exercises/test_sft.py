"""Example tests for `sft` (the hidden graders compare with a transformers Llama, one big batch and
clip_grad_norm_ on random tiny models)."""

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from exercises.sft import collate_sft, sft_loss, train_sft

EXAMPLES = [{"input_ids": [5, 6, 7, 8], "labels": [-100, -100, 7, 8]}, {"input_ids": [9, 3], "labels": [-100, 3]}]


def tiny_llama(seed=0):
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(vocab_size=20, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                                        num_attention_heads=2, num_key_value_heads=1, pad_token_id=0))


def test_collate_sft_pads_on_the_right():
    batch = collate_sft(EXAMPLES, pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8], [9, 3, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["labels"].tolist() == [[-100, -100, 7, 8], [-100, 3, -100, -100]]  # padding is never trained


def test_sft_loss_is_shifted_and_averaged_over_tokens():
    logits = torch.randn(2, 4, 10)
    labels = torch.tensor([[-100, -100, 7, 8], [-100, 3, -100, -100]])
    logp = torch.log_softmax(logits, dim=-1)
    # three trained targets: tokens 7 and 8 of row 0 (from positions 1, 2), token 3 of row 1 (from position 0)
    expected = -(logp[0, 1, 7] + logp[0, 2, 8] + logp[1, 0, 3]) / 3
    torch.testing.assert_close(sft_loss(logits, labels), expected)


def test_sft_loss_equals_the_model_loss():
    model, batch = tiny_llama(), collate_sft(EXAMPLES, pad_id=0)
    out = model(**batch)
    torch.testing.assert_close(sft_loss(out.logits, batch["labels"]), out.loss)


def test_gradient_accumulation_equals_one_big_batch():
    one, two = tiny_llama(1), tiny_llama(1)
    big = collate_sft(EXAMPLES, pad_id=0)
    opt = torch.optim.SGD(one.parameters(), lr=1.0)
    assert len(train_sft(one, [big], opt)) == 1
    micro = [collate_sft(EXAMPLES[:1], pad_id=0), collate_sft(EXAMPLES[1:], pad_id=0)]
    losses = train_sft(two, micro, torch.optim.SGD(two.parameters(), lr=1.0), grad_accum=2)
    assert len(losses) == 1  # two micro-batches, one optimizer step
    for a, b in zip(one.parameters(), two.parameters()):
        torch.testing.assert_close(a, b)
