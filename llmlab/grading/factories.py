"""Trusted builders the grader may ask a worker to run.

Graders send plain specifications (a seed, a config dict, a state dict); the worker builds the
library object here, before or after the submission is loaded, and keeps it behind a handle. This
lets a submission receive real library objects (a ``torch.Generator``, a transformers model) as
arguments without any object crossing the process boundary.
"""
from __future__ import annotations

import torch


def torch_generator(seed: int) -> torch.Generator:
    """A ``torch.Generator`` seeded with ``seed``."""
    return torch.Generator().manual_seed(int(seed))


def python_random(seed: int):
    """A ``random.Random(seed)``."""
    import random

    return random.Random(int(seed))


def _in_eval_with(module: torch.nn.Module, state_dict: dict | None) -> torch.nn.Module:
    """``module`` in eval mode, with the weights ``state_dict`` if given."""
    module.eval()
    if state_dict is not None:
        module.load_state_dict(state_dict)
    return module


def _hf_model(model_class, config_class, config: dict, state_dict: dict | None, seed: int):
    """``model_class(config_class(**config))`` initialised under ``torch.manual_seed(seed)``, in eval mode, with
    ``state_dict``'s weights if given."""
    torch.manual_seed(seed)
    return _in_eval_with(model_class(config_class(**config)), state_dict)


def hf_llama(config: dict, state_dict: dict | None = None, seed: int = 0):
    """A transformers ``LlamaForCausalLM`` from a config dict (and weights, if given)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    return _hf_model(LlamaForCausalLM, LlamaConfig, config, state_dict, seed)


def hf_bert(config: dict, state_dict: dict | None = None, seed: int = 0):
    """A transformers ``BertModel`` from a config dict (and weights, if given)."""
    from transformers import BertConfig, BertModel

    return _hf_model(BertModel, BertConfig, config, state_dict, seed)


def smollm2_tokenizer():
    """SmolLM2-135M-Instruct's real tokenizer (from the kit's model cache)."""
    from transformers import AutoTokenizer

    from ..models import smollm2_dir

    return AutoTokenizer.from_pretrained(smollm2_dir())


def scripted_openai(reviews: list, script: list, **options):
    """An ``openai.OpenAI`` client answered inside the worker by a script, with every request logged.

    Returns a :class:`llmlab.grading.scripted.ScriptedEndpoint`: pass ``endpoint.get("client")`` to the
    submission; read ``endpoint.call("log")`` (requests: review, attempt, start/end times, requests in
    flight, status, SDK retry count) and ``endpoint.call("describe", results)`` (a returned list of
    results as plain data) back. The client sends through
    ``openai.DefaultHttpx2Client(transport=httpx2.MockTransport(...))``: no socket is opened, so the
    worker's network guard stays up. ``script[i]`` lists the planned answers to review ``i``'s attempts;
    ``options``: ``hold``, ``sdk_max_retries``, ``seed``, ``timeout`` (see ``ScriptedEndpoint``).
    """
    # imported here, in the worker, when a check first needs it (openai and httpx2 cost a second to import)
    from .scripted import ScriptedEndpoint

    return ScriptedEndpoint(reviews, script, **options)


def bert_classifier(config: dict, num_labels: int = 2, seed: int = 0):
    """A trusted sequence classifier for graders of training loops: a ``BertModel`` (no pooler), the
    hidden state at position 0 and a linear head; ``forward(input_ids, attention_mask) -> logits``.

    Each forward call appends ``(training, grad_enabled)`` to the model's ``calls`` list (read it with
    ``obj.get("calls")``); ``obj.call("modes")`` lists the training flag of every submodule. The same
    ``(config, num_labels, seed)`` gives the same weights in any process.
    """
    from transformers import BertConfig, BertModel

    class RecordingClassifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = BertModel(BertConfig(**config), add_pooling_layer=False)
            self.head = torch.nn.Linear(self.encoder.config.hidden_size, num_labels)
            self.calls = []

        def forward(self, input_ids, attention_mask):
            self.calls.append((self.training, torch.is_grad_enabled()))
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return self.head(hidden[:, 0])

        def modes(self):
            return [m.training for m in self.modules()]

    torch.manual_seed(seed)
    return RecordingClassifier()


def torch_optimizer(name: str, model, **kwargs):
    """``torch.optim.<name>(model.parameters(), **kwargs)`` for ``name`` in SGD, Adam, AdamW."""
    return {"SGD": torch.optim.SGD, "Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW}[name](
        model.parameters(), **kwargs)


def torch_lr_scheduler(name: str, optimizer, **kwargs):
    """``torch.optim.lr_scheduler.<name>(optimizer, **kwargs)`` for ``name`` in StepLR, LinearLR, ExponentialLR."""
    from torch.optim import lr_scheduler

    return {"StepLR": lr_scheduler.StepLR, "LinearLR": lr_scheduler.LinearLR,
            "ExponentialLR": lr_scheduler.ExponentialLR}[name](optimizer, **kwargs)


def one_pass(items: list):
    """An iterator over ``items`` that can be consumed only once and has no ``len()`` (like a generator)."""
    return (item for item in items)


def cross_entropy_sgd_step(model, input_ids, attention_mask, labels, lr: float = 0.1):
    """One trusted training step of a classifier: ``model.train()``, cross-entropy of
    ``model(input_ids, attention_mask)`` against ``labels``, plain SGD with learning rate ``lr``."""
    model.train()
    model.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(input_ids, attention_mask), labels)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= lr * p.grad
    return float(loss)


def hf_llama_traced(config: dict, state_dict: dict | None = None, seed: int = 0):
    """``hf_llama`` for graders of decoding loops: it records its forward calls and refuses ``generate``.

    ``model.llmlab_calls`` (read it with ``obj.get("llmlab_calls")``) gets one ``[batch, new_tokens,
    cached_tokens]`` per forward call: the tokens the call feeds and the length of the KV cache it is
    given (0 without one). A loop that reuses its cache feeds the prompt once, then one token per step
    on a growing cache; one that recomputes feeds the whole sequence each time. No clock involved.
    """
    model = hf_llama(config, state_dict, seed)
    calls: list = []

    def record(module, args, kwargs):
        tokens = kwargs.get("input_ids", args[0] if args else None)
        if tokens is None:
            tokens = kwargs.get("inputs_embeds")
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        cached = int(cache.get_seq_length()) if hasattr(cache, "get_seq_length") else 0
        calls.append([int(tokens.shape[0]), int(tokens.shape[1]), cached])

    def refuse(*args, **kwargs):
        raise RuntimeError("model.generate is not available in this exercise: write the decoding loop yourself")

    model.model.register_forward_pre_hook(record, with_kwargs=True)
    model.llmlab_calls = calls
    model.generate = refuse
    return model


def torch_transformer_layer(kind: str, d_model: int, n_heads: int, d_ff: int, state_dict: dict | None = None,
                            **options):
    """A ``torch.nn.TransformerEncoderLayer`` (``kind="encoder"``) or ``TransformerDecoderLayer``
    (``"decoder"``) with ``batch_first=True``, no dropout, in eval mode; ``options`` (``norm_first``,
    ``activation``, ``layer_norm_eps``, ``bias``) are passed on, ``norm_first`` defaulting to True."""
    cls = {"encoder": torch.nn.TransformerEncoderLayer, "decoder": torch.nn.TransformerDecoderLayer}[kind]
    options = {"norm_first": True, **options}
    return _in_eval_with(cls(d_model, n_heads, d_ff, dropout=0.0, batch_first=True, **options), state_dict)


def scripted_translator(script: list, bos_id: int, wrong_id: int, vocab: int):
    """A stand-in for an ``EncoderDecoder`` for graders of decoding loops: row ``b`` of any batch it
    encodes "translates" to ``script[b]`` (a list of token ids).

    ``encode(src_ids, src_mask)`` returns a memory ``(B, S, 1)`` holding each row's index (so rows keep
    their identity if a loop drops finished ones). ``decode(tgt_ids, memory, ...)`` gives one-hot logits
    ``(B, T, vocab)``: at position ``t``, ``script[b][t]`` if the tokens fed so far are ``[bos_id] +
    script[b][:t]``, else ``wrong_id`` (past the script's end: ``wrong_id`` too). ``calls`` records the
    ``[batch, length]`` of every decode call.
    """
    class ScriptedTranslator(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.calls = []

        def encode(self, src_ids, src_mask=None):
            B, S = src_ids.shape
            return torch.arange(B, dtype=torch.float32)[:, None, None].expand(B, max(S, 1), 1).clone()

        def decode(self, tgt_ids, memory, src_mask=None, tgt_mask=None):
            B, T = tgt_ids.shape
            self.calls.append([B, T])
            logits = torch.zeros(B, T, vocab)
            for b in range(B):
                row = script[int(memory[b, 0, 0])]
                fed = [int(t) for t in tgt_ids[b]]
                for t in range(T):
                    ok = t < len(row) and fed[:t + 1] == [bos_id] + list(row[:t])
                    logits[b, t, row[t] if ok else wrong_id] = 1.0
            return logits

    return ScriptedTranslator()


def counting_encoder(kind: str = "bytes"):
    """A trusted ``encode_fn`` for ``tokenizer.tokens_per_word``: one token per UTF-8 byte of the text
    (``kind="bytes"``) or per character that is not whitespace (``kind="non_space"``)."""
    def encode_fn(text):
        if kind == "bytes":
            return list(text.encode("utf-8"))
        return [ord(c) for c in text if not c.isspace()]
    return encode_fn
