"""A small, harmless preference set that the kit writes itself (no download, no third-party text).

Each pair answers an everyday question correctly twice. The *chosen* answer is polite and to the
point; the *rejected* one carries the same fact but is either **rude** (dismissive remarks around the
answer) or **rambling** (the answer buried in filler). A model tuned on these pairs should learn a
style, not new facts, which makes the effect of preference tuning easy to see and to measure.

The questions and the phrasing templates are both split between ``train`` and ``test``: a test pair
asks a question never seen in training, wrapped in phrasings never seen in training, so preference
accuracy on ``test`` measures whether the style generalises.

* :func:`preference_pairs` returns the pairs as dicts ``{"prompt", "chosen", "rejected", "flaw"}``;
* :func:`build_batch` tokenizes pairs for DPO with a chat template, TRL's layout: the chosen rows
  first, then the rejected rows, right padding, labels ``-100`` on the prompt and on padding.
"""
from __future__ import annotations

import random

# (question, a correct one-sentence answer). Kept simple, factual and uncontroversial.
QUESTIONS: list[tuple[str, str]] = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("How many days are there in a week?", "A week has seven days."),
    ("What colour do you get by mixing blue and yellow?", "Mixing blue and yellow gives green."),
    ("At what temperature does water boil at sea level?", "At sea level, water boils at 100 degrees Celsius."),
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("What is the largest planet in our solar system?", "Jupiter is the largest planet in our solar system."),
    ("Which gas do plants take in from the air for photosynthesis?", "Plants take in carbon dioxide."),
    ("How many minutes are there in an hour?", "An hour has sixty minutes."),
    ("What is the chemical symbol for gold?", "The chemical symbol for gold is Au."),
    ("What is 7 times 8?", "7 times 8 is 56."),
    ("Which ocean is the largest?", "The Pacific Ocean is the largest ocean."),
    ("What is the freezing point of water in Celsius?", "Water freezes at 0 degrees Celsius."),
    ("How many continents are there?", "There are seven continents."),
    ("Who wrote Romeo and Juliet?", "William Shakespeare wrote Romeo and Juliet."),
    ("What is the capital of Japan?", "The capital of Japan is Tokyo."),
    ("How many sides does a hexagon have?", "A hexagon has six sides."),
    ("What do bees make?", "Bees make honey and beeswax."),
    ("Which planet is known as the Red Planet?", "Mars is known as the Red Planet."),
    ("What is the square root of 81?", "The square root of 81 is 9."),
    ("How many hours are there in a day?", "A day has 24 hours."),
    ("What is the main language spoken in Brazil?", "The main language of Brazil is Portuguese."),
    ("What is the tallest animal?", "The giraffe is the tallest animal."),
    ("How many strings does a standard guitar have?", "A standard guitar has six strings."),
    ("What is the capital of Italy?", "The capital of Italy is Rome."),
    ("Which organ pumps blood through the body?", "The heart pumps blood through the body."),
    ("What is 15 plus 27?", "15 plus 27 is 42."),
    ("What is the largest mammal?", "The blue whale is the largest mammal."),
    ("How many months have 31 days?", "Seven months have 31 days."),
    ("What is the opposite of hot?", "The opposite of hot is cold."),
    ("Which star is closest to Earth?", "The Sun is the star closest to Earth."),
    ("What is the capital of Canada?", "The capital of Canada is Ottawa."),
    ("How many players are on a football (soccer) team on the field?", "Each team has eleven players on the field."),
    ("What is H2O commonly called?", "H2O is water."),
    ("How many wheels does a bicycle have?", "A bicycle has two wheels."),
    ("What is the capital of Germany?", "The capital of Germany is Berlin."),
    ("Which metal is liquid at room temperature?", "Mercury is liquid at room temperature."),
    ("What is 100 divided by 4?", "100 divided by 4 is 25."),
    ("What is the longest river in Africa?", "The Nile is the longest river in Africa."),
    ("How many bones does an adult human have?", "An adult human has 206 bones."),
    ("What do caterpillars turn into?", "Caterpillars turn into butterflies or moths."),
    ("What is the capital of Spain?", "The capital of Spain is Madrid."),
    ("How many centimetres are in a metre?", "A metre has 100 centimetres."),
    ("Which instrument has black and white keys?", "The piano has black and white keys."),
    ("What is the primary colour of a ripe banana?", "A ripe banana is yellow."),
    ("What is the capital of Australia?", "The capital of Australia is Canberra."),
    ("How many degrees are in a right angle?", "A right angle has 90 degrees."),
    ("What force keeps us on the ground?", "Gravity keeps us on the ground."),
    ("What is the smallest prime number?", "The smallest prime number is 2."),
    ("Which animal is known for its black and white stripes?", "The zebra has black and white stripes."),
    ("What is the capital of Egypt?", "The capital of Egypt is Cairo."),
    ("How many seconds are in a minute?", "A minute has sixty seconds."),
    ("What is frozen water called?", "Frozen water is called ice."),
    ("What is 9 squared?", "9 squared is 81."),
    ("Which season comes after winter?", "Spring comes after winter."),
    ("What is the capital of Kenya?", "The capital of Kenya is Nairobi."),
    ("What do you call a baby cat?", "A baby cat is called a kitten."),
    ("How many letters are in the English alphabet?", "The English alphabet has 26 letters."),
    ("Which planet do we live on?", "We live on Earth."),
    ("What is the capital of Mexico?", "The capital of Mexico is Mexico City."),
    ("How many grams are in a kilogram?", "A kilogram has 1000 grams."),
    ("What shape has three sides?", "A triangle has three sides."),
    ("What is the hardest natural material?", "Diamond is the hardest natural material."),
    ("What is 12 minus 5?", "12 minus 5 is 7."),
    ("Which bird is a symbol of peace?", "The dove is a symbol of peace."),
    ("What is the capital of India?", "The capital of India is New Delhi."),
    ("How many years are in a century?", "A century has 100 years."),
    ("What does a thermometer measure?", "A thermometer measures temperature."),
    ("Which direction does the Sun rise in?", "The Sun rises in the east."),
    ("What is the capital of Russia?", "The capital of Russia is Moscow."),
    ("How many teeth does an adult human usually have?", "An adult human usually has 32 teeth."),
    ("What do pandas mainly eat?", "Pandas mainly eat bamboo."),
    ("What is half of 50?", "Half of 50 is 25."),
    ("What is the capital of China?", "The capital of China is Beijing."),
    ("What is the boiling point of water in Fahrenheit?", "Water boils at 212 degrees Fahrenheit at sea level."),
    ("How many planets are in our solar system?", "There are eight planets in our solar system."),
    ("What is the largest desert in the world?", "Antarctica is the largest desert; the Sahara is the largest hot one."),
    ("What is the capital of Norway?", "The capital of Norway is Oslo."),
    ("Which vitamin does sunlight help our body make?", "Sunlight helps the body make vitamin D."),
    ("How many sides does a square have?", "A square has four sides."),
    ("What is the currency of Japan?", "The currency of Japan is the yen."),
]

# Phrasings. Index ``i`` of each list belongs to ``test`` when ``i % 3 == 2``, else to ``train``.
# Polite answers carry a short friendly phrase; rude ones are *shorter*, so a model that merely likes
# short answers prefers the rude one: the preference has to be learned, not read off the length.
POLITE = [
    "Sure! {answer} I hope that helps.",
    "Good question. {answer}",
    "Happy to help: {answer} Let me know if you have more questions.",
    "{answer} I hope this is useful!",
    "Of course! {answer} Have a nice day.",
    "Thanks for asking. {answer}",
]
RUDE = [
    "Ugh. {answer}",
    "{answer} Obviously.",
    "Seriously? {answer}",
    "Whatever. {answer}",
    "{answer} Duh.",
    "Fine. {answer} Next.",
]
RAMBLING = [
    ("Well, people have wondered about questions like this for ages, so let me think out loud for a while "
     "first. {answer} Of course, there is much more one could say about it."),
    ("Let me start at the very beginning, because context matters and I would hate to skip anything. "
     "{answer} But there are many other details we could also go into."),
    ("Hmm, so, before answering I should mention a few general points, some only loosely related. {answer} "
     "That said, I could go on and on."),
    ("There are many ways to look at this, and I would like to walk through several of them first. {answer} "
     "And that is only part of the story."),
    ("This reminds me of many other questions, so let me set the scene broadly before anything else. {answer} "
     "Anyway, there is a lot more to it."),
    ("Right, this topic has a long history with many twists, which we could spend hours on. {answer} "
     "There is a lot more to it, really."),
]
FLAWS = {"rude": RUDE, "rambling": RAMBLING}


def _in_split(i: int, split: str) -> bool:
    return (i % 3 == 2) == (split == "test")


def preference_pairs(split: str = "train", *, flaws=("rude", "rambling"), seed: int = 0) -> list[dict]:
    """The preference pairs of ``split`` (``"train"``: 54 questions, ``"test"``: 26), one pair per
    question and flaw, in a shuffled but reproducible order.

    Returns dicts ``{"prompt": question, "chosen": polite answer, "rejected": flawed answer,
    "flaw": "rude" | "rambling"}``. Questions and phrasings of the two splits do not overlap.
    """
    if split not in ("train", "test"):
        raise ValueError("split must be 'train' or 'test'")
    unknown = set(flaws) - set(FLAWS)
    if unknown:
        raise ValueError(f"unknown flaws {sorted(unknown)}; known: {sorted(FLAWS)}")
    rng = random.Random(f"{split}-{seed}")
    polite = [t for i, t in enumerate(POLITE) if _in_split(i, split)]
    pairs = []
    for q, (question, answer) in enumerate(QUESTIONS):
        if not _in_split(q, split):
            continue
        for flaw in flaws:
            bad = [t for i, t in enumerate(FLAWS[flaw]) if _in_split(i, split)]
            pairs.append({"prompt": question, "chosen": rng.choice(polite).format(answer=answer),
                          "rejected": rng.choice(bad).format(answer=answer), "flaw": flaw})
    rng.shuffle(pairs)
    return pairs


def chat_prompt(tokenizer, question: str) -> str:
    """The question as a one-turn chat, rendered with the tokenizer's chat template and the generation
    prompt (the text the model continues)."""
    return tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                         add_generation_prompt=True)


def build_batch(tokenizer, pairs: list[dict], *, max_length: int = 128) -> dict:
    """Tokenize pairs for DPO in TRL's layout.

    Each row is ``chat_prompt(question) + completion + end-of-turn``; rows ``0..B-1`` hold the chosen
    completions and rows ``B..2B-1`` the rejected ones, right-padded to one length. ``labels`` equal
    ``input_ids`` on completion tokens (the end-of-turn token included) and ``-100`` on the prompt and
    on padding, ready for ``sequence_logprobs``. Rows longer than ``max_length`` lose tokens at the end.

    Returns a dict of tensors ``input_ids``, ``attention_mask``, ``labels``, all ``(2B, T)``.
    """
    import torch
    from torch.nn.utils.rnn import pad_sequence

    eos = tokenizer.eos_token
    sequences, targets = [], []
    for key in ("chosen", "rejected"):
        for pair in pairs:
            prompt = tokenizer(chat_prompt(tokenizer, pair["prompt"]), add_special_tokens=False)["input_ids"]
            completion = tokenizer(pair[key] + eos, add_special_tokens=False)["input_ids"]
            sequences.append(torch.tensor((prompt + completion)[:max_length], dtype=torch.long))
            targets.append(torch.tensor(([-100] * len(prompt) + completion)[:max_length], dtype=torch.long))
    pad_id = tokenizer.eos_token_id if tokenizer.pad_token_id is None else tokenizer.pad_token_id
    input_ids = pad_sequence(sequences, batch_first=True, padding_value=pad_id)
    labels = pad_sequence(targets, batch_first=True, padding_value=-100)
    return {"input_ids": input_ids, "labels": labels,
            "attention_mask": pad_sequence([torch.ones_like(t) for t in sequences], batch_first=True)}
