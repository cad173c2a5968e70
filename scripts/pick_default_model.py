"""Choose the bundled model among candidate checkpoints and write it with a record of the choice.

Used by ``scripts/train_default_model.sh``. Each candidate has two scores that never touch the
held-out test subjects: its **selection F1** (synthetic subjects held out of its training, from
the checkpoint) and its **real-pixel selection F1** (overall F1 on the real-pixel selection set
of ``benchmarks/bench_realpixels.py --seed 2``, a set of clips used only for this choice; the
benchmark's reported sets are seeds 0 and 1). The candidate with the best mean of the two wins
(ties: the first given). Why the real-pixel score: training seeds of one recipe differ by up to
0.19 F1 on real pixels while their synthetic selection F1 differs by 0.04 and does not predict
it (eight models: Spearman correlation with the mean of the two reported real-pixel sets 0.83
for the selection set, -0.29 for the synthetic selection F1; benchmarks/RESULTS.md, "The
bundled model").

Usage::

    python scripts/pick_default_model.py --realpixels RP.json --out engine/weights/default.pt \
        seed0.pt seed1.pt
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from pfes.errors import PfesError  # noqa: E402

RULE = ("best mean of the synthetic selection F1 and the overall F1 on the real-pixel "
        "selection set (bench_realpixels.py --seed 2); ties: first candidate")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("candidates", nargs="+", help="candidate checkpoints")
    ap.add_argument("--realpixels", required=True, help="bench_realpixels.py --json output")
    ap.add_argument("--out", required=True, help="where to write the chosen checkpoint")
    a = ap.parse_args(argv)
    try:
        rp = json.loads(Path(a.realpixels).read_text())
        results = rp["results"]
    except (OSError, ValueError, KeyError) as e:
        print(f"pick_default_model: cannot read {a.realpixels}: {e}", file=sys.stderr)
        return 2
    rows = []
    for c in a.candidates:
        if c not in results:
            print(f"pick_default_model: {c} has no result in {a.realpixels}", file=sys.stderr)
            return 2
        try:
            ck = load_checkpoint(c)
        except PfesError as e:
            print(f"pick_default_model: {e}", file=sys.stderr)
            return 2
        sel = float(ck.meta["training"]["val_result"]["overall"]["f1"])
        real = float(results[c]["overall"]["f1"])
        rows.append({"candidate": Path(c).name, "seed": ck.meta["training"]["config"]["seed"],
                     "selection_f1": round(sel, 4), "realpixel_selection_f1": round(real, 4),
                     "score": round((sel + real) / 2, 4), "ckpt": ck})
    best = max(rows, key=lambda r: r["score"])  # max keeps the first of equal scores
    print("candidate          seed  selection F1  real-pixel F1  mean")
    for r in rows:
        mark = "  <- chosen" if r is best else ""
        print(f"{r['candidate']:<18} {r['seed']:>4}  {r['selection_f1']:12.3f}  "
              f"{r['realpixel_selection_f1']:13.3f}  {r['score']:.3f}{mark}")
    ck = best["ckpt"]
    meta = dict(ck.meta)
    meta["bundle"] = {
        "rule": RULE,
        "candidates": [{k: v for k, v in r.items() if k != "ckpt"} for r in rows],
        "chosen_seed": best["seed"],
        "realpixel_set": {k: rp.get(k) for k in ("release", "command")},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    save_checkpoint(a.out, ck.net, meta)
    print(f"wrote {a.out} (seed {best['seed']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
