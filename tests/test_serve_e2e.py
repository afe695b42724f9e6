"""End to end: ``llmlab serve`` with the real model, the real ``openai`` client, the reference client.

Starts the server (transformers serve on SmolLM2 behind the fault proxy), classifies a small batch of
short reviews (as free text, and as one token restricted by ``logit_bias``, which must equal the local
argmax of the two label tokens), checks a slow answer against a short client timeout, reruns the batch
with the other fault kinds switched on, and stops the server: no process and no listening port may be
left behind.
"""
from __future__ import annotations

import os
import socket

import openai
import pytest
import torch

from llmlab.data import load_imdb
from llmlab.models import load_smollm2
from llmlab.serve import MODEL_NAME, LocalServer
from solutions.imdb_remote_llm import classify_remote, label_logit_bias, make_request


def _short_reviews(n=4, max_chars=300):
    rows = [r for r in load_imdb("test") if len(r["text"]) <= max_chars][:n]
    assert len(rows) == n
    return [r["text"] for r in rows]


def _local_argmax(model, tokenizer, reviews):
    """1 where the model's logit of "positive"'s first token beats "negative"'s at the answer position."""
    ids = [tokenizer.encode(w, add_special_tokens=False)[0] for w in ("negative", "positive")]
    labels = []
    for review in reviews:
        prompt = tokenizer.apply_chat_template(make_request("m", review)["messages"], add_generation_prompt=True,
                                               return_tensors="pt", return_dict=True)
        with torch.no_grad():
            logits = model(**prompt).logits[0, -1]
        labels.append(int(logits[ids[1]] > logits[ids[0]]))
    return labels


def _port_open(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_serve_classify_with_and_without_faults_then_stop():
    reviews = _short_reviews()
    model, tokenizer = load_smollm2()
    server = LocalServer(retry_after=0.5, slow_seconds=30, threads=1)
    with server:
        client = server.client(timeout=120)  # generous: a busy CPU can be slow, and slowness is not under test
        assert [m.id for m in client.models.list().data] == [MODEL_NAME]
        reply = client.chat.completions.create(**make_request(server.model, reviews[0]))
        assert isinstance(reply.choices[0].message.content, str) and reply.usage.prompt_tokens > 20
        assert reply.model == MODEL_NAME

        clean = classify_remote(client, server.model, reviews, concurrency=2)
        assert [r.error for r in clean] == [None] * len(reviews)
        assert all(r.attempts == 1 and r.prompt_tokens > 0 and r.completion_tokens > 0 for r in clean)

        # logit_bias: every answer is one label token, the one the model ranks higher
        biased = classify_remote(client, server.model, reviews, concurrency=2, logit_bias=label_logit_bias(tokenizer))
        assert [r.error for r in biased] == [None] * len(reviews)
        assert [r.completion_tokens for r in biased] == [1] * len(reviews)
        assert [r.label for r in biased] == _local_argmax(model, tokenizer, reviews)

        # a slow answer outlives a short client timeout, and the proxy drops it
        server.set_faults(rate=1.0, kinds=["slow"])
        with pytest.raises(openai.APITimeoutError):
            client.with_options(timeout=1.0, max_retries=0).chat.completions.create(
                **make_request(server.model, reviews[0]))

        # half of the model calls fail, every other kind mixed
        server.set_faults(rate=0.5, kinds=["429", "500", "503", "malformed"], seed=3)
        faulty = classify_remote(client, server.model, reviews, concurrency=2, max_retries=10)
        stats = server.stats()
        server.set_faults(rate=0.0)
        assert sum(stats["faults"][k] for k in ("429", "500", "503", "malformed")) > 0
        assert [r.error for r in faulty] == [None] * len(reviews)
        assert [r.label for r in faulty] == [r.label for r in clean]  # greedy decoding: same answers
        # every attempt was one model call: 1 by hand + the clean and biased batches + 1 slow + the faulty batch
        assert stats["model_calls"] == 1 + 2 * len(reviews) + 1 + sum(r.attempts for r in faulty)
        pid, port = server.process.pid, server.port
    assert server.process is None and not _port_open(port)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # the proxy and the model server it started are gone
