"""Turn a folder of per-frame images plus expression labels into a pfes dataset directory.

The licensed spotting datasets (CAS(ME)^2, SAMM-LV; see ``training/real_datasets.py`` for
their label files) ship one image per frame and a spreadsheet of intervals. This module does
the common part: it runs the face tracker over every video's frames (keeping every ``step``-th
frame of high-frame-rate recordings), writes ``landmarks/<video>.npz``, maps the labels to
0-based indices of the frames it kept, and writes ``annotations.csv`` (design.md, "Dataset
directory"). No ``point`` column is written: real datasets give intervals, and point
supervision simulates a point per instance from them (``training.prepare``).

Long work survives interruption: every finished video is moved into ``landmarks/`` in one
rename and ``annotations.csv`` is rewritten (atomically) after each one, so an interrupted
conversion leaves a valid, smaller dataset, and running the same command again skips the
videos already there. ``convert.json`` records what was converted, from where, and with what.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pfes.errors import InputError
from training.dataset import Annotation

__all__ = ["Label", "VideoJob", "ConvertReport", "map_labels", "convert_videos",
           "write_annotations"]

log = logging.getLogger(__name__)

ANNOTATION_COLUMNS = ("subject", "video", "onset", "apex", "offset", "type")


@dataclass(frozen=True)
class Label:
    """One labelled interval as the dataset numbers it: frame numbers of its image files.

    apex / offset may be None where the spreadsheet leaves them out (see :func:`map_labels`).
    """

    onset: int
    apex: int | None
    offset: int | None
    kind: str  # "macro" | "micro"
    row: str = ""  # where it came from, for messages ("file.xlsx row 12")


@dataclass
class VideoJob:
    """One video to convert.

    subject: subject id (no underscore: the dataset layout takes a video's subject from the
        part of its name before the first underscore when it has no labels).
    video: output name, ``<subject>_<something>``.
    files: its image files in frame order; numbers: the frame number of each file as the
        labels count them (usually the number in the file name).
    fps: recorded frame rate; step: keep every step-th file.
    """

    subject: str
    video: str
    files: list[Path]
    numbers: list[int]
    fps: float
    step: int
    labels: list[Label] = field(default_factory=list)

    @property
    def frames_out(self) -> int:
        """Frames the video has after keeping every ``step``-th file."""
        return len(range(0, len(self.files), self.step))


@dataclass
class ConvertReport:
    converted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already in the output (resume)
    annotations: int = 0
    warnings: list[str] = field(default_factory=list)


def map_labels(job: VideoJob, n_out: int) -> tuple[list[Annotation], list[str]]:
    """The job's labels in 0-based output frames (after keeping every ``step``-th file).

    A frame number maps to the position of the file with that number (the nearest one if the
    number itself is missing), then to ``round(position / step)``. A missing apex becomes the
    middle of the interval; a missing offset mirrors the onset about the apex. Labels that
    lie wholly outside the video's frames are dropped with a warning.
    """
    anns: list[Annotation] = []
    warns: list[str] = []
    if not job.numbers:
        return anns, [f"{job.video}: no frames"]
    first, last = job.numbers[0], job.numbers[-1]
    pos_of = {n: i for i, n in enumerate(job.numbers)}
    sorted_nums = sorted(pos_of)

    def pos(n: int) -> int:
        if n in pos_of:
            return pos_of[n]
        k = bisect.bisect_left(sorted_nums, n)
        cands = [sorted_nums[j] for j in (k - 1, k) if 0 <= j < len(sorted_nums)]
        return pos_of[min(cands, key=lambda c: abs(c - n))]

    for lab in job.labels:
        where = f"{job.video} {lab.row}".strip()
        on, ap, off = lab.onset, lab.apex, lab.offset
        if off is None or off <= 0:
            if ap is None or ap <= 0:
                warns.append(f"{where}: no apex and no offset; label dropped")
                continue
            off = ap + (ap - on)
            warns.append(f"{where}: no offset; used {off} (apex mirrored)")
        if ap is None or ap <= 0 or not on <= ap <= off:
            if ap not in (None, 0, -1):
                warns.append(f"{where}: apex {ap} outside [{on}, {off}]; used the middle")
            ap = (on + off) // 2
        if off < on:
            warns.append(f"{where}: offset {off} before onset {on}; label dropped")
            continue
        if off < first or on > last:
            warns.append(f"{where}: frames {on}-{off} outside the video's {first}-{last}; "
                         "label dropped")
            continue
        o, a, f = (min(n_out - 1, int(round(pos(n) / job.step))) for n in (on, ap, off))
        a = min(max(a, o), f)
        anns.append(Annotation(job.subject, job.video, o, a, f, lab.kind))
    return anns, warns


def write_annotations(path: Path, anns: Sequence[Annotation]) -> None:
    """Write ``annotations.csv`` atomically (temporary file, then rename)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(ANNOTATION_COLUMNS)
    for a in sorted(anns, key=lambda a: (a.video, a.onset, a.offset)):
        w.writerow([a.subject, a.video, a.onset, a.apex, a.offset, a.kind])
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    os.replace(tmp, path)


def _frames_of(npz: Path) -> int:
    from stream.landmark_file import read_landmark_file

    return len(read_landmark_file(npz).valid)


def _track_video(job: VideoJob, partial: Path, target: Path, face_model: str | Path | None,
                 extract: Callable | None, bar: bool) -> tuple[int, int, int]:
    """Track one video's faces and move its landmark file into place.

    Returns (frames, frames with a face, unreadable images). Runs in a worker process when
    ``convert_videos(jobs=N)`` has N > 1, so everything it gets must pickle.
    """
    from stream.extract import extract_landmarks, save_landmarks_npz
    from stream.source_images import ImageSequenceSource

    run_extract: Callable = extract if extract is not None else extract_landmarks
    src = ImageSequenceSource(job.files, job.fps, job.step, name=job.video)
    series = run_extract(src, face_model=face_model, progress=bar)
    tmp = save_landmarks_npz(series, partial / f"{job.video}.npz")
    os.replace(tmp, target)
    return series.n_frames, int(series.valid.sum()), src.unreadable


def convert_videos(
    jobs: Sequence[VideoJob],
    out: str | Path,
    *,
    dataset: str,
    source_root: str | Path,
    face_model: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = True,
    extract: Callable | None = None,
    notes: Sequence[str] = (),
    workers: int = 1,
) -> ConvertReport:
    """Convert ``jobs`` into the dataset directory ``out`` (see the module docstring).

    extract: ``extract(source, face_model=..., progress=...) -> LandmarkSeries``; defaults to
    :func:`stream.extract.extract_landmarks` (tests pass their own).
    notes: warnings from reading the labels, kept in ``convert.json`` with the converter's.
    workers: videos tracked at once, each in its own process with its own tracker (1: in
    this process, with a progress bar per video).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder")
    if workers < 1:
        raise InputError(f"--workers must be >= 1, got {workers}")
    names = [j.video for j in jobs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"two videos would both be named {dup[0]!r}")
    lm_dir, partial = out / "landmarks", out / ".partial"
    try:
        lm_dir.mkdir(parents=True, exist_ok=True)
        partial.mkdir(exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot write {out}: {e.strerror or e}") from e

    report = ConvertReport()
    done: list[Annotation] = []
    t0 = time.monotonic()

    def finish(job: VideoJob, n_out: int) -> None:
        anns, warns = map_labels(job, n_out)
        report.warnings.extend(warns)
        done.extend(anns)
        write_annotations(out / "annotations.csv", done)

    def tracked(job: VideoJob, result: tuple[int, int, int], k: int) -> None:
        n_out, found, unreadable = result
        report.converted.append(job.video)
        if unreadable:
            report.warnings.append(f"{job.video}: {unreadable} unreadable images")
        if n_out and found < 0.5 * n_out:
            report.warnings.append(f"{job.video}: face found in only {found} of {n_out} frames")
        if progress and workers > 1:
            print(f"[{k}/{len(todo)}] {job.video}: {n_out} frames, face in {found} "
                  f"({time.monotonic() - t0:.0f} s)", flush=True)
        finish(job, n_out)

    todo: list[VideoJob] = []
    for job in jobs:
        target = lm_dir / f"{job.video}.npz"
        if target.is_file() and not overwrite:
            report.skipped.append(job.video)
            finish(job, _frames_of(target))
        else:
            todo.append(job)
    if workers == 1 or len(todo) <= 1:
        for k, job in enumerate(todo, start=1):
            if progress:
                print(f"[{k}/{len(todo)}] {job.video}: {job.frames_out} frames "
                      f"at {job.fps / job.step:.2f} fps", flush=True)
            result = _track_video(job, partial, lm_dir / f"{job.video}.npz", face_model,
                                  extract, progress)
            tracked(job, result, k)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = multiprocessing.get_context("spawn")  # MediaPipe graphs do not survive fork
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futs = {pool.submit(_track_video, job, partial, lm_dir / f"{job.video}.npz",
                                face_model, extract, False): job for job in todo}
            try:
                for k, fut in enumerate(as_completed(futs), start=1):
                    tracked(futs[fut], fut.result(), k)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    report.annotations = len(done)
    try:
        partial.rmdir()
    except OSError:
        pass
    meta = {
        "dataset": dataset,
        "source_root": str(Path(source_root).resolve()),
        "videos": len(jobs),
        "converted_now": len(report.converted),
        "already_there": len(report.skipped),
        "annotations": report.annotations,
        "frame_rates": sorted({round(j.fps / j.step, 3) for j in jobs}),
        "steps": sorted({j.step for j in jobs}),
        "tracker": "tasks:" + str(face_model) if face_model else "mediapipe==0.10.21 face mesh",
        "warnings": [*notes, *report.warnings],
        "seconds": round(time.monotonic() - t0, 1),
    }
    (out / "convert.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return report
