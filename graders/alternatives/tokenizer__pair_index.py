"""Byte-level BPE with an incremental pair count: only the pieces that contain the merged pair are
updated, pair by pair (the pairs around each replaced occurrence), and the best pair is found by a
scan. Pieces are kept as tuples in a dict keyed by the original piece."""
from collections import defaultdict

import regex

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def pretokenize(text, pattern=GPT2_PATTERN):
    if not isinstance(text, str):
        raise TypeError(f"expected str, got {type(text).__name__}")
    return regex.compile(pattern).findall(text)


def _pairs(seq):
    counts = defaultdict(int)
    for p in zip(seq, seq[1:]):
        counts[p] += 1
    return counts


def _apply(seq, pair, new):
    out = []
    it = iter(range(len(seq)))
    for i in it:
        if i + 1 < len(seq) and (seq[i], seq[i + 1]) == pair:
            out.append(new)
            next(it, None)
        else:
            out.append(seq[i])
    return tuple(out)


def train_bpe(texts, vocab_size, *, pattern=GPT2_PATTERN):
    if not isinstance(texts, (list, tuple)):
        raise TypeError("texts must be a list")
    if vocab_size < 256:
        raise ValueError("vocab_size below 256")
    freq = defaultdict(int)
    for t in texts:
        if not isinstance(t, str):
            raise TypeError("every text must be a str")
        for piece in pretokenize(t, pattern):
            freq[tuple(piece.encode("utf-8"))] += 1
    seqs = dict(enumerate(freq))
    weight = dict(enumerate(freq.values()))
    stats = defaultdict(int)
    holders = defaultdict(set)
    for k, seq in seqs.items():
        for p, n in _pairs(seq).items():
            stats[p] += n * weight[k]
            holders[p].add(k)
    merges = []
    while len(merges) + 256 < vocab_size:
        live = [(c, p) for p, c in stats.items() if c > 0]
        if not live:
            break
        best = max(live, key=lambda cp: (cp[0], -cp[1][0], -cp[1][1]))[1]
        new = 256 + len(merges)
        merges.append(best)
        for k in list(holders[best]):
            old = seqs[k]
            fresh = _apply(old, best, new)
            if fresh == old:
                continue
            for p, n in _pairs(old).items():
                stats[p] -= n * weight[k]
            for p, n in _pairs(fresh).items():
                stats[p] += n * weight[k]
                holders[p].add(k)
            seqs[k] = fresh
        del holders[best]
    return merges


def encode(text, merges, *, pattern=GPT2_PATTERN):
    if not isinstance(text, str):
        raise TypeError("text must be str")
    try:
        pairs = [tuple(m) for m in merges]
    except TypeError:
        raise TypeError("merges must be a list of pairs") from None
    rank = {}
    for i, p in enumerate(pairs):
        if len(p) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) for x in p):
            raise TypeError(f"bad merge {p!r}")
        if not (0 <= p[0] < 256 + i and 0 <= p[1] < 256 + i):
            raise ValueError(f"merge {i} uses an undefined id")
        if p not in rank:
            rank[p] = i
    result = []
    for piece in pretokenize(text, pattern):
        seq = tuple(piece.encode("utf-8"))
        while True:
            best = None
            for p in zip(seq, seq[1:]):
                r = rank.get(p)
                if r is not None and (best is None or r < rank[best]):
                    best = p
            if best is None:
                break
            seq = _apply(seq, best, 256 + rank[best])
        result.extend(seq)
    return result


def _bytes_of(i, merges, memo):
    if i < 256:
        return bytes((i,))
    if i not in memo:
        a, b = merges[i - 256]
        memo[i] = _bytes_of(a, merges, memo) + _bytes_of(b, merges, memo)
    return memo[i]


def decode(ids, merges):
    memo = {}
    chunks = []
    for i in ids:
        if i < 0 or i >= 256 + len(merges):
            raise ValueError(f"id {i} out of range")
        chunks.append(_bytes_of(i, merges, memo))
    return b"".join(chunks).decode("utf-8", errors="replace")


def tokens_per_word(encode_fn, texts):
    words = sum(len(t.split()) for t in texts)
    if words == 0:
        raise ValueError("no words in texts")
    return float(sum(len(encode_fn(t)) for t in texts)) / words
