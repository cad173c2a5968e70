"""Scoring a spotter on real videos annotated by eye (``pfes eval --videos DIR``).

A real-video folder holds ``<video>.mp4`` (or any container PyAV reads), ``annotations.csv``
(the dataset columns ``subject,video,onset,apex,offset,type`` plus optional ``point``, ``what``
and ``confidence``) and an optional ``spans.csv`` (``video,start,end,label`` with label
``neutral`` or ``talking``). Frames are 0-based, inclusive, counted in decoding order.

What is counted (all pooled over the folder):

* **Clear expressions**: annotations whose ``confidence`` is not ``unsure``. Matching is the
  MEGC rule (IoU >= 0.5 on inclusive frames, each truth at most once, predictions in
  descending score order), per class (``macro``, ``micro``, ``overall``) and class-agnostic
  (``any``: the kind is ignored, what a user watching for "an expression" sees).
* **Unsure annotations** are neither required nor forbidden: a prediction that matches one is
  not a false positive, and missing one is not a miss.
* **Neutral spans**: events whose apex lies in a ``neutral`` span (target: none).
* **Talking spans**: false events (matching no annotation, clear or unsure) whose apex lies in
  a ``talking`` span, per minute of talking. A smile while talking is an expression and is
  annotated; speech alone is not.

Landmarks are extracted once per video and cached (keyed by the file's size, mtime and name).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pfes.errors import InputError
from training.evaluate import Interval, iou, match_video

__all__ = ["RealTruth", "Span", "load_real_folder", "score_real", "format_real_table"]

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str  # "neutral" | "talking"


@dataclass
class RealTruth:
    """One video's annotations (clear and unsure) and spans."""

    video: str
    path: Path
    clear: list[Interval] = field(default_factory=list)
    unsure: list[Interval] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)


def _read_csv(path: Path, need: Sequence[str]) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
            cols = set(rows[0]) if rows else set(csv.reader(path.open()).__next__() or [])
    except (OSError, StopIteration, csv.Error, UnicodeDecodeError) as e:
        raise InputError(f"cannot read {path}: {e}") from e
    missing = [c for c in need if c not in cols]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    return rows


def _int(row: Mapping[str, str], key: str, where: str) -> int:
    try:
        return int(str(row[key]).strip())
    except (TypeError, ValueError) as e:
        raise InputError(f"{where}: {key}={row.get(key)!r} is not a frame number") from e


def load_real_folder(root: str | Path) -> dict[str, RealTruth]:
    """The videos of ``root`` with their annotations and spans (see the module docstring).

    Every video named in annotations.csv or spans.csv must exist; videos with no annotation
    are scored too (every event on them is a false one)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root} is not a directory")
    ann = root / "annotations.csv"
    if not ann.is_file():
        raise InputError(f"{root}: no annotations.csv")
    videos = {p.stem: p for p in sorted(root.iterdir()) if p.suffix.lower() in VIDEO_SUFFIXES}
    if not videos:
        raise InputError(f"{root}: no video files ({', '.join(VIDEO_SUFFIXES)})")
    out = {name: RealTruth(name, p) for name, p in videos.items()}
    need = ("video", "onset", "apex", "offset", "type")
    for i, row in enumerate(_read_csv(ann, need), start=2):
        where = f"{ann}:{i}"
        name = row["video"].strip()
        if name not in out:
            raise InputError(f"{where}: video {name!r} has no file in {root}")
        on, ap, off = (_int(row, k, where) for k in ("onset", "apex", "offset"))
        kind = row["type"].strip()
        if kind not in ("macro", "micro") or not on <= ap <= off:
            raise InputError(f"{where}: need type macro|micro and onset <= apex <= offset")
        iv = Interval(on, off, kind, 1.0, ap)
        unsure = (row.get("confidence") or "").strip().lower() == "unsure"
        (out[name].unsure if unsure else out[name].clear).append(iv)
    spans = root / "spans.csv"
    if spans.is_file():
        for i, row in enumerate(_read_csv(spans, ("video", "start", "end", "label")), start=2):
            where = f"{spans}:{i}"
            name = row["video"].strip()
            if name not in out:
                raise InputError(f"{where}: video {name!r} has no file in {root}")
            s, e = _int(row, "start", where), _int(row, "end", where)
            label = row["label"].strip()
            if label not in ("neutral", "talking") or e < s:
                raise InputError(f"{where}: need label neutral|talking and start <= end")
            out[name].spans.append(Span(s, e, label))
    return out


def _matches_any(p: Interval, truth: Sequence[Interval], thr: float) -> bool:
    return any(iou(p.onset, p.offset, g.onset, g.offset) >= thr for g in truth)


def _stats(tp: int, fp: int, n: int) -> dict:
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / n if n else 0.0
    f1 = 2 * tp / (tp + fp + n) if tp + fp + n else 0.0
    return {"tp": tp, "fp": fp, "n": n, "precision": prec, "recall": rec, "f1": f1}


def score_real(
    preds: Mapping[str, Sequence[Interval]],
    truth: Mapping[str, RealTruth],
    fps: Mapping[str, float],
    thr: float = 0.5,
) -> dict:
    """Counts and rates for a folder (see the module docstring). ``preds``: video -> events."""
    totals = {c: [0, 0, 0] for c in ("macro", "micro", "any")}
    neutral_events = 0
    talking_false = 0
    talking_s = 0.0
    clips = []
    for name in sorted(truth):
        t = truth[name]
        ps = list(preds.get(name, ()))
        # Predictions matching an unsure annotation are set aside (neither TP nor FP).
        kept = [p for p in ps if not _matches_any(p, t.unsure, thr)]
        row: dict = {"video": name, "events": len(ps), "clear": len(t.clear)}
        for c in ("macro", "micro"):
            tp, fp, n = match_video(kept, t.clear, c, thr)
            totals[c][0] += tp
            totals[c][1] += fp
            totals[c][2] += n
        anyk = [Interval(p.onset, p.offset, "any", p.score, p.apex) for p in kept]
        anyt = [Interval(g.onset, g.offset, "any", 1.0, g.apex) for g in t.clear]
        tp, fp, n = match_video(anyk, anyt, "any", thr)
        totals["any"][0] += tp
        totals["any"][1] += fp
        totals["any"][2] += n
        row.update(found=tp, false=fp)
        n_neu = n_talk = 0
        allt = t.clear + t.unsure
        for p in ps:
            apex = p.apex if p.apex is not None else (p.onset + p.offset) // 2
            spans_at = [s for s in t.spans if s.start <= apex <= s.end]
            if any(s.label == "neutral" for s in spans_at):
                n_neu += 1
            if any(s.label == "talking" for s in spans_at) and not _matches_any(p, allt, thr):
                n_talk += 1
        secs = sum(s.end - s.start + 1 for s in t.spans if s.label == "talking") / fps.get(name, 25.0)
        neutral_events += n_neu
        talking_false += n_talk
        talking_s += secs
        row.update(neutral_events=n_neu, talking_false=n_talk, talking_s=round(secs, 2))
        clips.append(row)
    res: dict = {c: _stats(*totals[c]) for c in ("macro", "micro")}
    res["overall"] = _stats(*(totals["macro"][i] + totals["micro"][i] for i in range(3)))
    res["any"] = _stats(*totals["any"])
    res["neutral_events"] = neutral_events
    res["talking_false_events"] = talking_false
    res["talking_s"] = round(talking_s, 2)
    res["talking_false_per_min"] = talking_false / (talking_s / 60.0) if talking_s else 0.0
    res["clips"] = clips
    return res


def format_real_table(res: Mapping, title: str | None = None) -> str:
    """The real-video result as fixed-width text: per class, then per clip."""
    lines = [title] if title else []
    lines.append(f"{'class':<8} {'TP':>4} {'FP':>4} {'N':>4} {'prec':>6} {'recall':>6} {'F1':>6}")
    for c in ("macro", "micro", "overall", "any"):
        r = res[c]
        lines.append(f"{c:<8} {r['tp']:>4} {r['fp']:>4} {r['n']:>4} "
                     f"{r['precision']:>6.3f} {r['recall']:>6.3f} {r['f1']:>6.3f}")
    lines.append(f"events in neutral spans: {res['neutral_events']}; false events in talking "
                 f"spans: {res['talking_false_events']} in {res['talking_s']:.1f} s = "
                 f"{res['talking_false_per_min']:.1f}/min")
    lines.append(f"{'clip':<24} {'events':>6} {'clear':>5} {'found':>5} {'false':>5} "
                 f"{'neutral':>7} {'talk-false':>10}")
    for c in res["clips"]:
        lines.append(f"{c['video']:<24} {c['events']:>6} {c['clear']:>5} {c['found']:>5} "
                     f"{c['false']:>5} {c['neutral_events']:>7} {c['talking_false']:>10}")
    return "\n".join(lines)


def cache_key(path: Path) -> str:
    st = path.stat()
    h = hashlib.sha256(f"{path.name}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    return f"{path.stem}-{h[:12]}"


def cached_landmarks(path: Path, cache_dir: Path | None, extract: Callable[[Path], object]):
    """``extract(path)`` -> LandmarkSeries, cached as an .npz under ``cache_dir``."""
    from stream.extract import load_landmarks_npz, save_landmarks_npz

    if cache_dir is not None:
        f = cache_dir / f"{cache_key(path)}.npz"
        if f.is_file():
            return load_landmarks_npz(f)
    series = extract(path)
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        save_landmarks_npz(series, f)  # type: ignore[arg-type]
    return series


def dump_json(res: Mapping, path: str | Path) -> None:
    Path(path).write_text(json.dumps(res, indent=2) + "\n")


def evaluate_real_videos(
    root: str | Path,
    model: str | Path | None = None,
    real_face: bool = True,
    face_model: str | Path | None = None,
    cache_dir: str | Path | None = None,
    progress: Callable[[str], None] = lambda m: None,
) -> tuple[dict, dict]:
    """Score ``model`` (default: the bundled one) on a real-video folder.

    Returns (result, predictions): the :func:`score_real` dict (plus ``protocol``) and, per
    video, the events as dicts (onset, apex, offset, kind, score, what, moved)."""
    from engine.checkpoint import load_checkpoint
    from stream.extract import extract_landmarks
    from training.evaluate import to_intervals
    from training.infer import predict_instances, predict_instances_real_face

    truth = load_real_folder(root)
    ckpt = load_checkpoint(model)
    bsm = None
    if real_face:
        from stream.blendshapes import load_blendshape_model

        bsm = load_blendshape_model(face_model)
    cache = Path(cache_dir) if cache_dir else None
    preds: dict[str, list[Interval]] = {}
    fps: dict[str, float] = {}
    events: dict[str, list[dict]] = {}
    for k, name in enumerate(sorted(truth), start=1):
        progress(f"[{k}/{len(truth)}] {name}")
        s = cached_landmarks(truth[name].path, cache, lambda p: extract_landmarks(p))
        fps[name] = float(s.fps)
        if bsm is not None:
            from stream.expression import blendshapes_per_frame, what_moved

            bs = blendshapes_per_frame(bsm, s.landmarks, s.valid)
            insts = predict_instances_real_face(ckpt, s.landmarks, s.valid, s.fps, bsm,
                                                blendshapes=bs)
            desc = [what_moved(bs, i.onset, i.apex) for i in insts]
        else:
            insts = predict_instances(ckpt, s.landmarks, s.valid, s.fps)
            last = s.n_frames - 1
            insts = [dataclasses.replace(i, offset=min(i.offset, last)) for i in insts]
            desc = [([], "")] * len(insts)
        preds[name] = to_intervals(insts)
        events[name] = [
            {"onset": i.onset, "apex": i.apex, "offset": i.offset, "kind": i.kind,
             "score": round(float(i.score), 4), "what": w, "moved": m}
            for i, (m, w) in zip(insts, desc, strict=True)
        ]
    res = score_real(preds, truth, fps)
    res["protocol"] = {"model": str(ckpt.path), "data": str(Path(root)), "videos": len(truth),
                       "real_face": real_face, "iou": 0.5}
    return res, events
