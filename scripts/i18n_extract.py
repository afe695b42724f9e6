"""List the feedback texts the Chinese catalogue lacks, or holds for texts that no longer exist.

    python3 scripts/i18n_extract.py            # counts per topic, then every missing / stale entry
    python3 scripts/i18n_extract.py --add      # also add the missing ones to llmlab/i18n/zh/*.json (null)

The texts are found statically in graders/test_<topic>.py and graders/variants/<topic>.diff (see
llmlab/i18n/extract.py); an entry left null stays English and fails tests/test_i18n.py until translated.
Exit status 1 when anything is missing or stale.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llmlab import topics  # noqa: E402
from llmlab.i18n import CATALOGUE, read_catalogue  # noqa: E402
from llmlab.i18n.extract import audit, check_names, stale_kit_entries, topic_templates  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--add", action="store_true", help="add missing entries (null) to the catalogue files")
    args = parser.parse_args()
    bad = 0
    for topic in topics.topic_names():
        cat = read_catalogue(topic)
        found = audit(topic, cat)
        done = sum(1 for t in topic_templates(topic) if cat["texts"].get(t))
        titled = sum(1 for c in check_names(topic) if cat["checks"].get(c))
        print(f"{topic:16} texts {done}/{len(topic_templates(topic))}  check titles {titled}/{len(check_names(topic))}")
        for kind, items in found.items():
            for item in items:
                print(f"    {kind}: {item}")
        bad += sum(map(len, found.values()))
        if args.add and (found["missing texts"] or found["missing checks"]):
            cat.setdefault("texts", {}).update({t: None for t in found["missing texts"]})
            cat.setdefault("checks", {}).update({c: None for c in found["missing checks"]})
            (CATALOGUE / f"{topic}.json").write_text(json.dumps(cat, ensure_ascii=False, indent=1) + "\n",
                                                      encoding="utf-8")
    kit = read_catalogue("kit")["texts"]
    stale = stale_kit_entries(kit)
    print(f"{'kit':16} texts {len(kit)}")
    for item in stale:
        print(f"    stale texts: {item}")
    return 1 if bad or stale else 0


if __name__ == "__main__":
    sys.exit(main())
