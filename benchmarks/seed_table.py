"""Seed-spread table from benchmarks/accuracy_seeds.sh output: mean and sd over training seeds.

    python benchmarks/seed_table.py OUT_DIR      # reads OUT_DIR/seed*/<variant>.eval.json

Also prints each model's selection F1 (stored in its checkpoint), the number the bundled
recipe is chosen by.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS = ("gim", "gim-w2", "hard", "full")


def _selection_f1(model: Path) -> float | None:
    from engine.checkpoint import load_checkpoint
    try:
        ck = load_checkpoint(str(model))
    except Exception:  # noqa: BLE001 - a missing or broken model leaves the cell empty
        return None
    val = ck.meta.get("training", {}).get("val_result", {})
    f1 = val.get("overall", {}).get("f1") if isinstance(val, dict) else None
    return float(f1) if f1 is not None else None


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    root = Path(argv[0])
    seeds = sorted(p for p in root.glob("seed*") if p.is_dir())
    if not seeds:
        print(f"seed_table: no seed* directories in {root}", file=sys.stderr)
        return 1
    head = " | ".join(p.name for p in seeds)
    print(f"| variant | {head} | mean | sd | macro mean | micro mean | selection F1 mean |")
    print("|---|" + "---|" * (len(seeds) + 5))
    for v in VARIANTS:
        rows = [json.loads((s / f"{v}.eval.json").read_text()) if (s / f"{v}.eval.json").is_file()
                else None for s in seeds]
        ok = [r for r in rows if r is not None]
        cells = [f"{r['overall']['f1']:.3f}" if r else "-" for r in rows]
        sel = [f for f in (_selection_f1(s / f"{v}.pt") for s in seeds) if f is not None]
        if not ok:
            print(f"| `{v}` | " + " | ".join(cells) + " | - | - | - | - | - |")
            continue
        o = [r["overall"]["f1"] for r in ok]
        sd = statistics.stdev(o) if len(o) > 1 else float("nan")
        print(f"| `{v}` | " + " | ".join(cells)
              + f" | **{statistics.mean(o):.3f}** | {sd:.3f}"
              + f" | {statistics.mean(r['macro']['f1'] for r in ok):.3f}"
              + f" | {statistics.mean(r['micro']['f1'] for r in ok):.3f}"
              + (f" | {statistics.mean(sel):.3f} |" if sel else " | - |"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
