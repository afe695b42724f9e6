"""Print every buggy variant's score and failing feedback, for a before/after comparison.

    PYTHONPATH=KIT python3 scripts/variant_scores.py KIT [TOPIC ...] [--max-examples N] [--all] > scores.txt

Grades every variant of every topic (or the named ones) of the kit at KIT with the trusted runner and
prints, per variant, its points and each non-passing check's status and feedback. ``--all`` grades the
reference, the stub and every correct alternative too (the issue 17 comparison: every score and every
feedback text of the kit's own submissions). The output depends
only on the kit's files (grading is deterministic), so two kits' outputs can be diffed: a refactor of
the variants must leave it unchanged. ``--max-examples N`` lowers hypothesis' examples per check (a
quicker, still deterministic comparison; both kits must then be run with the same N).
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path


def main(argv: list[str]) -> None:
    max_examples = None
    if "--max-examples" in argv:
        i = argv.index("--max-examples")
        max_examples, argv = int(argv[i + 1]), argv[:i] + argv[i + 2:]
    everything = "--all" in argv
    argv = [a for a in argv if a != "--all"]
    root = Path(argv[0]).resolve()
    sys.path.insert(0, str(root))  # the kit under test, not whichever llmlab is installed
    from llmlab import topics as kit_topics
    from llmlab.grading.runner import grade
    from llmlab.grading.variants import alternatives, load_variants, write_alternative
    from llmlab.paths import KIT_ROOT

    if KIT_ROOT != root:
        sys.exit(f"llmlab was imported from {KIT_ROOT}, not {root}: set PYTHONPATH={root}")
    for topic in argv[1:] or kit_topics.topic_names():
        variants = sorted(load_variants(topic), key=lambda v: v.name)
        with tempfile.TemporaryDirectory() as tmp:
            subs = {v.name: v.write(Path(tmp) / v.name) for v in variants}
            if everything:
                subs |= {"(reference)": root / "solutions", "(stub)": root / "exercises"}
                subs |= {f"(alternative {a.stem})": write_alternative(a, Path(tmp) / a.stem)
                         for a in alternatives(topic)}
            results = grade(subs, [topic], trusted=True, max_examples=max_examples) if subs else {}
            for name in sorted(subs):
                t = results[name].topics[topic]
                print(f"== {topic}:{name} {t.points}/{t.max_points}")
                for c in t.checks:
                    if c["status"] != "passed":
                        feedback = c["feedback"].replace(tmp, "<tmp>").replace(str(root), "<kit>")
                        print(f"   {c['check']} [{c['status']}] {c['points']}: {feedback}")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
