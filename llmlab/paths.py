"""Where the kit's parts live."""
from __future__ import annotations

import os
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = KIT_ROOT / "solutions"
EXERCISES = KIT_ROOT / "exercises"
GRADERS = KIT_ROOT / "graders"
NOTEBOOKS = KIT_ROOT / "notebooks"

# Directories a submission must never read: the reference and the hidden graders.
PROTECTED = (SOLUTIONS, GRADERS)


def shared_dir() -> Path:
    """The course's shared folder (notes, spec, data), beside the checkout unless LLMLAB_SHARED says."""
    return Path(os.environ.get("LLMLAB_SHARED", KIT_ROOT.parent / "shared")).resolve()
