"""``engine`` runs with only torch and numpy installed; the ``pfes`` package with only the stdlib.

Each check runs in a fresh interpreter whose ``sys.meta_path`` starts with a finder that
refuses every top-level module outside an allow-list (the standard library, the named project
packages, and for engine: torch, numpy and what torch itself requires). A refused module looks
uninstalled, exactly as on the GPU machine that has no MediaPipe, PyAV, pyzmq or onnxruntime.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# installed here, so a working blocker must make them fail to import in the child
MUST_BLOCK = ["cv2", "av", "zmq", "mediapipe", "onnxruntime", "onnx", "skimage", "scipy",
              "tqdm", "matplotlib", "stream", "training", "calibration"]

_PRELUDE = r"""
import json, sys
CFG = json.loads(sys.argv[1])
ALLOWED = set(CFG["allowed"]) | set(sys.stdlib_module_names)
REFUSED = []

class _OnlyAllowed:
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in ALLOWED:
            return None
        REFUSED.append(name)
        raise ModuleNotFoundError(f"No module named {name!r} (refused by the isolation test)",
                                  name=name)

sys.meta_path.insert(0, _OnlyAllowed())

def check_blocked():
    leaked = []
    for name in CFG["must_block"]:
        try:
            __import__(name)
            leaked.append(name)
        except ModuleNotFoundError:
            pass
    return leaked
"""

_ENGINE = r"""
import importlib, pkgutil, tempfile, os
import numpy as np
import torch
torch.set_num_threads(1)

import engine, engine.model, engine.checkpoint, engine.detector, engine.runtime, engine.export
import engine.backends
backend_modules = sorted(m.name for m in pkgutil.iter_modules(engine.backends.__path__))
for m in backend_modules:
    importlib.import_module(f"engine.backends.{m}")

from engine.backends import BACKENDS, create_backend
from engine.checkpoint import load_checkpoint, save_checkpoint
from engine.detector import DetectorConfig, detect
from engine.model import ModelConfig, PfesNet
from engine.runtime import StreamEngine
from pfes.errors import DependencyError

torch.manual_seed(0)
net = PfesNet(ModelConfig(in_features=7, channels=8, dilations=(1, 2), proj_dim=8)).eval()
rng = np.random.default_rng(0)
T = 40
x = rng.normal(size=(T, 7)).astype(np.float32)
valid = np.ones(T, bool)
with torch.no_grad():
    ref = net(torch.from_numpy(x)[None], torch.from_numpy(valid)[None]).intensity[0].numpy()

stepped = {}
for name in ("torch", "numpy"):
    eng = StreamEngine(net, backend=name, max_streams=2)
    slot = eng.open_slot()
    out = [float(eng.step([slot], x[t:t + 1], valid[t:t + 1]).intensity[0]) for t in range(T)]
    stepped[name] = float(np.abs(np.asarray(out) - ref).max())

with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "m.pt")
    save_checkpoint(path, net, {"detector": DetectorConfig().to_dict()})
    back = load_checkpoint(path)
    with torch.no_grad():
        again = back.net(torch.from_numpy(x)[None]).intensity[0].numpy()
    ckpt_diff = float(np.abs(again - ref).max())
    # optional dependencies fail only when used, with an install hint
    used = {}
    try:
        engine.export.export_step(net, os.path.join(d, "m.onnx"), "onnx")
        used["export-onnx"] = "ok"
    except DependencyError as e:
        used["export-onnx"] = "DependencyError: " + str(e)

bump = np.zeros(T, np.float32)
bump[10:22] = 0.9  # one 12-frame expression with a confident macro apex
instances = [(i.onset, i.offset, i.kind) for i in
             detect(bump, np.tile(np.float32([0.9, 0.1]), (T, 1)), valid, DetectorConfig(), 30.0)]
for name in ("onnxruntime", "tensorrt", "cuda-graph"):
    try:
        create_backend(name, net, 2, "cpu")
        used[name] = "ok"
    except DependencyError as e:
        used[name] = "DependencyError: " + str(e)

refused = sorted(set(REFUSED))
print(json.dumps({"backend_modules": backend_modules, "registry": sorted(BACKENDS),
                  "stepped": stepped, "ckpt_diff": ckpt_diff, "instances": instances,
                  "used": used, "leaked": check_blocked(), "refused": refused}))
"""

_PFES = r"""
import pfes, pfes.errors, pfes.cli, pfes.commands
assert callable(pfes.cli.main) and pfes.cli.COMMANDS
refused = sorted(set(REFUSED))
print(json.dumps({"leaked": check_blocked(), "refused": refused,
                  "modules": sorted(m for m in sys.modules if m.partition(".")[0] == "pfes")}))
"""


def _dist_closure(roots: list[str]) -> set[str]:
    """Distributions ``roots`` need at run time (extras excluded), transitively, as installed."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        try:
            reqs = md.requires(name) or []
        except md.PackageNotFoundError:
            continue  # a requirement for another platform or Python: not installed here
        seen.add(name)
        for r in reqs:
            if "extra ==" in r.replace('"', " ").replace("'", " ") or "extra==" in r:
                continue
            todo.append(re.split(r"[ ;<>=!~\[(]", r.strip(), maxsplit=1)[0])
    return seen


def _top_levels(dists: set[str]) -> set[str]:
    out = set()
    for top, owners in md.packages_distributions().items():
        if any(re.sub(r"[-_.]+", "-", o).lower() in dists for o in owners):
            out.add(top)
    return out


def _run(body: str, allowed: set[str], also_block: tuple[str, ...] = ()) -> dict:
    must = [m for m in (*MUST_BLOCK, *also_block)
            if m not in allowed and importlib.util.find_spec(m)]
    cfg = json.dumps({"allowed": sorted(allowed), "must_block": must})
    proc = subprocess.run([sys.executable, "-c", _PRELUDE + body, cfg], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["leaked"] == [], f"the blocker let these import: {res['leaked']}"
    res["must_block"] = must
    return res


def test_engine_imports_and_steps_with_only_torch_and_numpy():
    allowed = _top_levels(_dist_closure(["torch", "numpy"])) | {"engine", "pfes"}
    assert {"torch", "numpy"} <= allowed
    assert not ({"stream", "training", "calibration", "cv2", "zmq", "av"} & allowed)
    res = _run(_ENGINE, allowed)
    assert len(res["must_block"]) >= 5  # the blocker was really tested against installed modules

    on_disk = sorted(p.stem for p in (ROOT / "engine" / "backends").glob("*.py")
                     if p.stem != "__init__")
    assert res["backend_modules"] == on_disk
    assert {"torch", "numpy", "onnxruntime", "tensorrt"} <= set(res["registry"])
    assert res["stepped"]["torch"] < 1e-5 and res["stepped"]["numpy"] < 1e-4, res["stepped"]
    assert res["ckpt_diff"] < 1e-6
    assert res["instances"] == [[10, 21, "macro"]]  # the detector ran and found the bump
    # onnxruntime / onnx / torch-tensorrt are absent here: they fail when used, with a hint
    for name in ("export-onnx", "onnxruntime", "tensorrt"):
        msg = res["used"][name]
        assert msg.startswith("DependencyError: ") and "pip install" in msg, (name, msg)
    assert res["used"]["cuda-graph"].startswith("DependencyError: ")


def test_pfes_package_is_stdlib_only():
    res = _run(_PFES, {"pfes"}, also_block=("torch", "numpy"))
    assert {"torch", "numpy"} <= set(res["must_block"])
    assert {"pfes", "pfes.errors", "pfes.cli", "pfes.commands"} <= set(res["modules"])
    assert res["refused"] == [], f"pfes imported non-stdlib modules: {res['refused']}"
