"""Byte-level BPE, written plainly: recount every pair at each step, and encode by replaying the
merges one after another in the order they were learnt (equivalent to lowest-rank-first, because a
merge can only be used by later merges)."""
import regex

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def pretokenize(text, pattern=GPT2_PATTERN):
    if type(text) is not str:
        raise TypeError("text must be a string")
    return [m.group(0) for m in regex.finditer(pattern, text)]


def _replace(seq, a, b, new):
    # walk the (token, next token) pairs; a merged pair swallows the next step
    out, swallowed = [], False
    for here, after in zip(seq, list(seq[1:]) + [None]):
        if swallowed:
            swallowed = False
        elif here == a and after == b:
            out.append(new)
            swallowed = True
        else:
            out.append(here)
    return out


def train_bpe(texts, vocab_size, *, pattern=GPT2_PATTERN):
    if not isinstance(texts, list) or any(not isinstance(t, str) for t in texts):
        raise TypeError("texts must be a list of strings")
    if vocab_size < 256:
        raise ValueError("vocab_size must be >= 256")
    seqs = [list(p.encode("utf-8")) for t in texts for p in pretokenize(t, pattern)]
    merges = []
    for new in range(256, vocab_size):
        counts = {}
        for s in seqs:
            for i in range(len(s) - 1):
                counts[(s[i], s[i + 1])] = counts.get((s[i], s[i + 1]), 0) + 1
        if not counts:
            break
        top = max(counts.values())
        pair = min(p for p, c in counts.items() if c == top)
        merges.append(pair)
        seqs = [_replace(s, pair[0], pair[1], new) for s in seqs]
    return merges


def encode(text, merges, *, pattern=GPT2_PATTERN):
    if not isinstance(text, str):
        raise TypeError("text must be a string")
    if not isinstance(merges, (list, tuple)):
        raise TypeError("merges must be a list")
    for i, m in enumerate(merges):
        if not isinstance(m, (list, tuple)) or len(m) != 2 or any(type(x) is not int for x in m):
            raise TypeError(f"merge {i} is not a pair of ints")
        if min(m) < 0 or max(m) >= 256 + i:
            raise ValueError(f"merge {i} refers to an id that is not defined yet")
    ids = []
    for piece in pretokenize(text, pattern):
        seq = list(piece.encode("utf-8"))
        for i, (a, b) in enumerate(merges):
            if len(seq) < 2:
                break
            seq = _replace(seq, a, b, 256 + i)
        ids += seq
    return ids


def decode(ids, merges):
    table = {b: bytes([b]) for b in range(256)}
    for i, (a, b) in enumerate(merges):
        table[256 + i] = table[a] + table[b]
    data = bytearray()
    for i in ids:
        if i not in table:
            raise ValueError(f"no token with id {i}")
        data += table[i]
    return data.decode("utf-8", "replace")


def tokens_per_word(encode_fn, texts):
    n_tokens = n_words = 0
    for t in texts:
        n_tokens += len(encode_fn(t))
        n_words += len(t.split())
    if not n_words:
        raise ValueError("no words")
    return n_tokens / n_words
