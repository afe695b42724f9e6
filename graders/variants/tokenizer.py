"""Realistic buggy variants of ``tokenizer`` (byte-level BPE), as patches of the reference."""
from llmlab.grading.variants import Variants

bugs = Variants("tokenizer")

# --- pretokenize --------------------------------------------------------------------------------
bugs.patch("whitespace_pieces_dropped", "pretokenize",
           "return regex.findall(pattern, text)", "return [p for p in regex.findall(pattern, text) if p.strip()]",
           mistake="pieces made only of whitespace are dropped: the pieces must cover the whole text (spaces, "
                   "newlines and tabs included) so that decoding gives the text back")

# --- train_bpe ----------------------------------------------------------------------------------
bugs.patch("counted_across_pieces", "train_bpe",
           "pieces = Counter(p for t in texts for p in pretokenize(t, pattern))", "pieces = Counter(texts)",
           mistake="pairs are counted across piece boundaries (the texts were not pre-tokenized before counting): "
                   "a pair may only be counted, and merged, inside one piece")
bugs.patch("ties_to_largest_pair", "train_bpe",
           "return (-counts[pair], pair)", "return (-counts[pair], (-pair[0], -pair[1]))",
           mistake="ties between equally frequent pairs are broken the wrong way: the smallest pair (a, b) wins "
                   "(compare a, then b)")
bugs.patch("ties_to_first_seen", "train_bpe",
           "return (-counts[pair], pair)", "return -counts[pair]",
           mistake="ties between equally frequent pairs go to whichever pair was found first: the smallest pair "
                   "(a, b) must win (compare a, then b)")
bugs.patch("ties_to_first_seen", "train_bpe",
           "heap = [(rank(pair), pair) for pair in counts]\nheapq.heapify(heap)",
           "heap = [(rank(pair), n, pair) for n, pair in enumerate(counts)]\nheapq.heapify(heap)\n"
           "order = iter(range(len(heap), 10**12))  # later pairs lose ties")
bugs.patch("ties_to_first_seen", "train_bpe",
           "key, pair = heapq.heappop(heap)", "key, _, pair = heapq.heappop(heap)")
bugs.patch("ties_to_first_seen", "train_bpe",
           "heapq.heappush(heap, (rank(p), p))", "heapq.heappush(heap, (rank(p), next(order), p))")
bugs.patch("unweighted_counts", "train_bpe",
           "counts[pair] += sign * freq", "counts[pair] += sign",
           mistake="pair counts are not weighted by piece frequency: a piece that occurs k times in the corpus "
                   "must count its pairs k times")
bugs.patch("new_ids_off_by_one", "train_bpe",
           "new_id = 256 + len(merges)", "new_id = 257 + len(merges)",
           mistake="new ids are off by one: merge i creates id 256 + i (the first merge is 256)")
bugs.patch("vocab_counts_merges_only", "train_bpe",
           "while len(merges) < vocab_size - 256 and heap:", "while len(merges) < vocab_size and heap:",
           mistake="vocab_size counts the merges only: it counts the 256 bytes too, so training makes "
                   "vocab_size - 256 merges")

# --- encode -------------------------------------------------------------------------------------
bugs.patch("merges_in_order_found", "encode",
           "pair = min(present, key=ranks.__getitem__)", "pair = present[0]",
           mistake="merges are applied in the order the pairs are found (left to right) rather than by rank: "
                   "apply the lowest-ranked (earliest learnt) merge present first")
bugs.patch("encode_across_pieces", "encode",
           "for piece in pretokenize(text, pattern):", "for piece in [text]:",
           mistake="encode does not pre-tokenize: each piece must be encoded on its own, so no token spans two "
                   "pieces")
bugs.patch("encode_ids_off_by_one", "encode",
           "ids = _merge_pair(ids, pair, 256 + ranks[pair])", "ids = _merge_pair(ids, pair, 255 + ranks[pair])",
           mistake="encode gives merge i the id 255 + i: merge i creates id 256 + i")

# --- decode -------------------------------------------------------------------------------------
bugs.patch("decode_strict", "decode",
           'decode("utf-8", errors="replace")', 'decode("utf-8")',
           mistake='decode raises on bytes that are not valid UTF-8: decode with errors="replace", so that '
                   "incomplete characters become U+FFFD")
bugs.patch("decode_token_by_token", "decode",
           'return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")',
           'return "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)',
           mistake="each token's bytes are decoded on their own: join all the bytes first, then decode once "
                   "(a character's bytes may be split across tokens)")

# --- tokens_per_word ----------------------------------------------------------------------------
bugs.patch("words_per_token", "tokens_per_word",
           "return tokens / words", "return words / tokens",
           mistake="this is words per token: tokens per word is the number of tokens divided by the number of words")
bugs.patch("words_split_on_single_spaces", "tokens_per_word",
           "words = sum(len(t.split()) for t in texts)", 'words = sum(len(t.split(" ")) for t in texts)',
           mistake='words are counted with split(" "): split on any whitespace with split(), so that newlines, '
                   "tabs and repeated spaces do not make extra (empty) words")
