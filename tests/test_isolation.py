"""Adversarial submissions: none gains a point it did not earn, and nothing else is disturbed.

Each attack is the reference `attention` module with something appended. Its honest twin is the
same module with the attack's *visible behaviour* but no cheating (e.g. a function that simply
raises where the attack hangs or exits). Graded in real, isolated workers, every check of the attack
must score exactly what its twin scores, and the `causal_mask` topic of the same submission keeps
full marks.
"""
from __future__ import annotations

import shutil
import textwrap

import pytest

from llmlab.grading.remote import Limits
from llmlab.grading.runner import grade
from llmlab.paths import SOLUTIONS

pytestmark = pytest.mark.xdist_group("isolation")

RAISE = '''
def scaled_dot_product_attention(q, k, v, mask=None, *, scale=None):
    raise RuntimeError("broken")
'''

ZEROS = '''
def scaled_dot_product_attention(q, k, v, mask=None, *, scale=None):
    L, S = q.shape[-2], k.shape[-2]
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2])
    return torch.zeros(*lead, L, v.shape[-1], dtype=q.dtype), torch.zeros(*lead, L, S, dtype=q.dtype)
'''

IMPORT_RAISE = '''
raise RuntimeError("broken")
'''


def hoarding(chunk_mb: int) -> str:
    """An attention function that allocates ``chunk_mb`` MB chunks until memory runs out."""
    return f'''
def scaled_dot_product_attention(q, k, v, mask=None, *, scale=None):
    hoard = []
    while True:
        hoard.append(bytearray({chunk_mb} * 1024 * 1024))
'''

ATTACKS = {
    "import_hang": ('''
while True:
    pass
''', IMPORT_RAISE),
    "memory_chunks": (hoarding(64), RAISE),
    "search_disk_for_a_copy": ('''
import glob, os, tempfile
for _root in (os.path.expanduser("~"), tempfile.gettempdir(), "/tmp", "/home"):
    for _path in glob.glob(_root + "/**/solutions/attention.py", recursive=True)[:20]:
        try:
            exec(open(_path).read())
        except Exception:
            pass
''' + ZEROS, ZEROS),
    "infinite_loop": ('''
def scaled_dot_product_attention(q, k, v, mask=None, *, scale=None):
    while True:
        pass
''', RAISE),
    "sys_exit": ('''
import sys
def scaled_dot_product_attention(q, k, v, mask=None, *, scale=None):
    sys.exit(0)
''', RAISE),
    "os_exit": ('''
import os
def scaled_dot_product_attention(q, k, v, mask=None, *, scale=None):
    os._exit(0)
''', RAISE),
    "memory_bomb": (hoarding(50), RAISE),
    "tensor_memory_bomb": ('''
def scaled_dot_product_attention(q, k, v, mask=None, *, scale=None):
    return torch.empty(10**12), torch.empty(10**12)
''', RAISE),
    "fork_bomb": ('''
import os
def scaled_dot_product_attention(q, k, v, mask=None, *, scale=None):
    while True:
        os.fork()
''', RAISE),
    "background_process": ('''
import subprocess
def scaled_dot_product_attention(q, k, v, mask=None, *, scale=None):
    subprocess.Popen(["sleep", "1000"])
    raise RuntimeError("broken")
''', RAISE),
    "huge_print": ('''
_reference_sdpa = scaled_dot_product_attention
def scaled_dot_product_attention(q, k, v, mask=None, *, scale=None):
    print("x" * 100_000_000)
    return _reference_sdpa(q, k, v, mask, scale=scale)
''', RAISE),  # over the output limit: the function fails and is settled, like one that raises
    "patch_torch_comparisons": ('''
import builtins
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
torch.testing.assert_close = lambda *a, **k: None
builtins.isinstance = lambda *a: True
''' + ZEROS, ZEROS),
    "replace_modules": ('''
import sys, types
fake = types.ModuleType("torch")
sys.modules["numpy"] = fake
sys.modules["llmlab.codec"] = fake
''' + ZEROS, ZEROS),
    "import_reference": ('''
try:
    from solutions.attention import scaled_dot_product_attention
except Exception:
    pass
try:
    import glob, os, llmlab
    kit = os.path.dirname(os.path.dirname(llmlab.__file__))
    for path in glob.glob(kit + "/solutions/*.py") + glob.glob(kit + "/graders/*.py"):
        exec(open(path).read())
except Exception:
    pass
''' + ZEROS, ZEROS),
    "read_reference_file": ('''
def scaled_dot_product_attention(q, k, v, mask=None, *, scale=None):
    import llmlab.paths
    source = open(llmlab.paths.SOLUTIONS / "attention.py").read()
    namespace = {}
    exec(source, namespace)
    return namespace["scaled_dot_product_attention"](q, k, v, mask, scale=scale)
''', RAISE),
    "lying_objects": ('''
class Liar:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    shape = property(lambda self: (1,))
def scaled_dot_product_attention(q, k, v, mask=None, *, scale=None):
    return Liar(), Liar()
''', RAISE),
    "pickle_payload": ('''
import pickle, os
class Payload:
    def __reduce__(self):
        return (os.system, ("touch /tmp/llmlab-pwned",))
def scaled_dot_product_attention(q, k, v, mask=None, *, scale=None):
    blob = pickle.dumps(Payload())
    return blob, blob
''', RAISE),
    "kill_the_grader": ('''
import os, signal
def scaled_dot_product_attention(q, k, v, mask=None, *, scale=None):
    os.kill(os.getppid(), signal.SIGKILL)
    os.killpg(0, signal.SIGKILL)
''', RAISE),
    "network_access": ('''
import socket
def scaled_dot_product_attention(q, k, v, mask=None, *, scale=None):
    socket.create_connection(("127.0.0.1", 9), timeout=1)
''', RAISE),
    "warnings_and_stderr_noise": ('''
import sys, warnings
_reference_sdpa = scaled_dot_product_attention
def scaled_dot_product_attention(q, k, v, mask=None, *, scale=None):
    warnings.warn("this is fine", UserWarning)
    warnings.warn("so is this", DeprecationWarning)
    print("debug output", file=sys.stderr)
    return _reference_sdpa(q, k, v, mask, scale=scale)
''', ""),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("attacks")
    reference = (SOLUTIONS / "attention.py").read_text()
    subs, twins = {}, {}
    for name, (attack, twin) in ATTACKS.items():
        twins.setdefault(twin, f"twin{len(twins)}")  # attacks with the same twin share its grading
        for label, code in ((f"{name}-attack", attack), (twins[twin], twin)):
            if label in subs:
                continue
            d = root / label
            d.mkdir()
            (d / "attention.py").write_text(reference + "\n\n# ---- appended\n" + textwrap.dedent(code))
            shutil.copyfile(SOLUTIONS / "causal_mask.py", d / "causal_mask.py")
            subs[label] = d
    limits = Limits(timeout=3.0, memory_mb=1024)
    # few examples per check: containment is the point here, not the breadth of the checks
    results = grade(subs, ["attention", "causal_mask"], limits=limits, max_examples=4)
    for name, (_, twin) in ATTACKS.items():
        results[f"{name}-twin"] = results[twins[twin]]
    return results


@pytest.mark.slow
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_scores_exactly_its_honest_twin(graded, attack):
    got = {(c["topic"], c["check"]): c for t in graded[f"{attack}-attack"].topics.values() for c in t.checks}
    twin = {(c["topic"], c["check"]): c for t in graded[f"{attack}-twin"].topics.values() for c in t.checks}
    assert got.keys() == twin.keys()
    gained = {k: (got[k]["points"], twin[k]["points"]) for k in got if got[k]["points"] > twin[k]["points"]}
    assert not gained, f"{attack} gained points it did not earn: {gained}"
    lost = {k: got[k]["feedback"][:200] for k in got if got[k]["points"] < twin[k]["points"]}
    assert not lost, f"{attack} lost points an honest submission keeps: {lost}"
    causal = graded[f"{attack}-attack"].topics["causal_mask"]
    assert causal.points == causal.max_points, "another topic of the same submission was disturbed"
    assert not any(c["status"] == "error" for c in got.values()), "the grader itself failed"


@pytest.mark.slow
def test_attacks_leave_no_trace(graded):
    import os

    assert not os.path.exists("/tmp/llmlab-pwned")


@pytest.mark.slow
def test_feedback_explains_contained_failures(graded):
    def feedback(name):
        return " ".join(c["feedback"] for c in graded[name].topics["attention"].checks)

    assert "used more than 3 s of CPU time" in feedback("infinite_loop-attack")
    assert "importing your module attention.py failed" in feedback("import_hang-attack").lower()
    assert "MemoryError" in feedback("memory_chunks-attack")
    assert "printed more than 16 MB in one call" in feedback("huge_print-attack")
    assert "SystemExit" in feedback("sys_exit-attack")
    assert "exited" in feedback("os_exit-attack") or "died" in feedback("os_exit-attack")
    assert "MemoryError" in feedback("memory_bomb-attack") or "out of memory" in feedback("memory_bomb-attack")
    assert "does not allow starting processes" in feedback("fork_bomb-attack")
    assert "may not read the reference" in feedback("read_reference_file-attack")
    assert "should be a tuple" in feedback("lying_objects-attack") or "Liar" in feedback("lying_objects-attack")
