"""Read the labels and frame folders of the licensed spotting datasets into conversion jobs.

All three need a signed licence; pfes ships no part of them. What follows is how their
releases lay out labels and frames, as the public spotting code that reads them agrees; the
converter checks every assumption and says which one failed.

**CAS(ME)^2** (30 fps; 22 participants, about 300 macro and 57 micro instances):

- frames: ``rawpic/s15/15_0101disgustingteeth/img1.jpg`` (or ``img001.jpg``): one folder per
  subject, one per video named ``<subject number>_<4-digit video code><words>``; the image
  number is the frame number, from 1;
- labels: ``CAS(ME)^2code_final.xlsx`` (also ``...(Updated).xlsx``). Its first sheet has no
  header row; columns: participant index (1-22), clip (``disgust1_1``: video name, ``_``,
  expression number), onset, apex, offset (1-based frame numbers), action units, emotion,
  type (``macro-expression`` / ``micro-expression``). A 0 apex or offset means "not given".
  Sheet ``naming rule1`` maps participant index -> subject number (rows ``15, s15, 1``), sheet
  ``naming rule2`` maps video code -> video name (rows ``0101, disgust1``). Where a release
  lacks those sheets the public mapping below is used.

**SAMM-LV** (SAMM long videos, 200 fps; 30 subjects, about 343 macro and 159 micro):

- frames: ``SAMM_longvideos/006_1/006_1_0001.jpg``: one folder per video, named
  ``<3-digit subject>_<inducement>``; the 4-digit number is the frame number, from 1;
- labels: ``SAMM_LongVideos_V*_Release.xlsx``: some title rows, then a header row with
  Subject, Filename, Inducement Code, Onset, Apex, Offset, Duration, Type, Action Units, Notes;
  Filename ``006_1_3`` = video ``006_1``, expression 3; Type ``Macro`` or ``Micro - 1/2``;
  -1 means "not given".

**CAS(ME)^3 Part A** (30 fps; about 98 subjects, 13 videos each, about 3300 macro and 860
micro instances in v2):

- frames: ``data/part_A/spNO.1/a/color/37.jpg`` (the variant folder may also be named
  ``Compressed_version1_seperate_compress`` or ``part_A_split/part_A``): one folder per subject
  ``spNO.<N>``, one per video ``a``-``m``, colour frames in ``color/`` named by an unpadded
  number that does not start at 0 or 1 and may have gaps (depth in ``depth/`` is not read);
- labels: ``CAS(ME)3_part_A_v2.xls`` (legacy Excel; an ``.xlsx`` copy of it works too), sheet
  ``AU+Emotion`` with a header row: Subject (``spNO.1``), Filename (``a``; a few ``J``),
  Onset, Apex, Offset (file numbers, mostly stored as text), AU, Expression type
  (``Macro-expression`` / ``Micro-expression``), Objective class; sheet ``eye blink`` is not
  read. The numbers are jpg file numbers, not positions: a label maps to the position of the
  file with that number (the nearest one where it is missing). A 0 apex means "not given".
  The type column decides macro or micro, never the length (most micro-expressions last more
  than 15 frames from onset to offset).

SAMM-LV is recorded at 200 fps and is usually studied at 25-30 fps (method.md): by default
every 7th image is read (28.6 fps) and the labels are mapped to the frames kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from pfes.errors import InputError
from stream.source_images import list_images
from training.convert import Label, VideoJob
from training.xlsx import Cell, read_xlsx

__all__ = ["DATASETS", "casme2_jobs", "samm_lv_jobs", "casme3_jobs", "frame_number", "step_for"]

# Public CAS(ME)^2 mappings (used only when the workbook lacks its naming-rule sheets).
CASME2_SUBJECTS = [15, 16, 19, 20, 21, 22, 23, 24, 25, 26, 27, 29, 30, 31, 32, 33, 34, 35, 36,
                   37, 38, 40]  # participant index 1..22 -> subject number
CASME2_CODES = {"disgust1": "0101", "disgust2": "0102", "anger1": "0401", "anger2": "0402",
                "happy1": "0502", "happy2": "0503", "happy3": "0505", "happy4": "0507",
                "happy5": "0508"}

_LAST_DIGITS = re.compile(r"(\d+)(?!.*\d)")


def frame_number(path: Path) -> int | None:
    """The frame number in an image file name: its last run of digits (``img12`` -> 12)."""
    m = _LAST_DIGITS.search(path.stem)
    return int(m.group(1)) if m else None


def step_for(fps: float, target_fps: float) -> int:
    """Keep every ``step``-th frame so that ``fps / step`` is nearest ``target_fps``."""
    if target_fps <= 0:
        raise InputError(f"--fps-out must be > 0, got {target_fps}")
    return max(1, int(round(fps / target_fps)))


def _numbers(files: list[Path]) -> list[int]:
    nums = [frame_number(f) for f in files]
    if any(n is None for n in nums) or len(set(nums)) != len(nums):
        # no usable numbers in the names: count the files from 1
        return list(range(1, len(files) + 1))
    return [int(n) for n in nums if n is not None]


def _int_cell(v: Cell) -> int | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        return int(float(v))
    except (TypeError, ValueError):
        return None


def _kind(v: Cell) -> str | None:
    s = str(v or "").strip().lower()
    if s.startswith("macro"):
        return "macro"
    if s.startswith("micro"):
        return "micro"
    return None


def _find_one(root: Path, patterns: Iterable[str], what: str) -> Path:
    for pat in patterns:
        hits = sorted(p for p in root.glob(pat) if p.is_file() and not p.name.startswith("~$"))
        if hits:
            return hits[-1]  # the newest release sorts last (V1 < V2 < V3, "(Updated)")
    raise InputError(f"no {what} found in {root}; give it with --labels")


# --------------------------------------------------------------------------------------------
# CAS(ME)^2


def _casme2_maps(book: dict[str, list[list[Cell]]]) -> tuple[dict[int, int], dict[str, str]]:
    subj = {i + 1: s for i, s in enumerate(CASME2_SUBJECTS)}
    codes = dict(CASME2_CODES)
    for name, rows in book.items():
        low = name.lower().replace(" ", "")
        if low == "namingrule1":
            for r in rows:
                num, idx = _int_cell(r[0] if r else None), _int_cell(r[2] if len(r) > 2 else None)
                if num is not None and idx is not None:
                    subj[idx] = num
        elif low == "namingrule2":
            for r in rows:
                if len(r) >= 2 and r[0] is not None and r[1] is not None:
                    code = _int_cell(r[0])
                    if code is not None:
                        codes[str(r[1]).strip().lower()] = f"{code:04d}"
    return subj, codes


def casme2_jobs(root: str | Path, labels: str | Path | None = None, frames: str | None = None,
                target_fps: float = 30.0) -> tuple[list[VideoJob], list[str]]:
    """Conversion jobs for a CAS(ME)^2 release at ``root`` (see the module docstring).

    Returns (jobs, warnings). Every video folder becomes a job, labelled or not (unlabelled
    videos still count in evaluation: whatever is spotted there is a false positive).
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset folder not found: {root}")
    xlsx = Path(labels) if labels else _find_one(
        root, ["*code_final*.xlsx", "*code*.xlsx"], "CAS(ME)^2 label workbook (*code_final*.xlsx)")
    book = read_xlsx(xlsx)
    if not book:
        raise InputError(f"{xlsx}: workbook has no sheets")
    sheet_name, rows = next(iter(book.items()))
    subj_of, code_of = _casme2_maps(book)
    frame_root = root / (frames or "rawpic")
    if not frame_root.is_dir():
        raise InputError(f"frame folder {frame_root} not found (--frames names it; "
                         "CAS(ME)^2 ships rawpic/ and cropped/)")
    fps = 30.0
    step = step_for(fps, target_fps)
    jobs: dict[str, VideoJob] = {}
    warns: list[str] = []
    for sdir in sorted(p for p in frame_root.iterdir() if p.is_dir()):
        for vdir in sorted(p for p in sdir.iterdir() if p.is_dir()):
            m = re.match(r"^(\d+)_(\d{4})", vdir.name)
            if not m:
                warns.append(f"{vdir}: not a CAS(ME)^2 video folder name; skipped")
                continue
            num, code = int(m.group(1)), m.group(2)
            video = f"s{num}_{code}"
            if video in jobs:
                warns.append(f"{vdir}: second folder for {video}; skipped")
                continue
            files = list_images(vdir)
            jobs[video] = VideoJob(f"s{num}", video, files, _numbers(files), fps, step)
    if not jobs:
        raise InputError(f"no video folders (<subject>_<code>...) under {frame_root}/s*/")
    bad_rows = 0
    for i, r in enumerate(rows, start=1):
        cells = list(r) + [None] * 8
        idx, clip = _int_cell(cells[0]), str(cells[1] or "").strip()
        on, ap, off, kind = (_int_cell(cells[2]), _int_cell(cells[3]), _int_cell(cells[4]),
                             _kind(cells[7]))
        if idx is None or not clip or on is None or kind is None:
            if any(c not in (None, "") for c in r):
                bad_rows += 1  # a title or malformed row
            continue
        vname = clip.rsplit("_", 1)[0].strip().lower()
        code = code_of.get(vname)
        subj_num = subj_of.get(idx)
        if code is None or subj_num is None:
            warns.append(f"{xlsx.name} row {i}: unknown participant {idx} or video {vname!r}; "
                         "skipped")
            continue
        job = jobs.get(f"s{subj_num}_{code}")
        if job is None:
            warns.append(f"{xlsx.name} row {i}: no frame folder for s{subj_num} video {code}; "
                         "skipped")
            continue
        job.labels.append(Label(on, ap, off, kind, f"{xlsx.name}:{sheet_name} row {i}"))
    if not any(j.labels for j in jobs.values()):
        raise InputError(f"{xlsx}: no labels matched the frame folders under {frame_root} "
                         f"({bad_rows} rows not understood); is this the CAS(ME)^2 workbook?")
    if bad_rows:
        warns.append(f"{xlsx.name}: {bad_rows} rows without a participant, clip, onset and type "
                     "were ignored")
    return list(jobs.values()), warns


# --------------------------------------------------------------------------------------------
# SAMM-LV


def _header_row(rows: list[list[Cell]], need: tuple[str, ...]) -> tuple[int, dict[str, int]]:
    for i, r in enumerate(rows):
        names = {str(c).strip().lower(): j for j, c in enumerate(r) if c is not None}
        if all(n in names for n in need):
            return i, names
    raise InputError(f"no header row with columns {', '.join(need)}")


def samm_lv_jobs(root: str | Path, labels: str | Path | None = None, frames: str | None = None,
                 target_fps: float = 30.0) -> tuple[list[VideoJob], list[str]]:
    """Conversion jobs for a SAMM long-videos release at ``root`` (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset folder not found: {root}")
    xlsx = Path(labels) if labels else _find_one(
        root, ["SAMM_LongVideos*.xlsx", "*SAMM*.xlsx", "*.xlsx"],
        "SAMM-LV label workbook (SAMM_LongVideos_*.xlsx)")
    book = read_xlsx(xlsx)
    need = ("subject", "filename", "onset", "apex", "offset", "type")
    found = None
    for sheet, rows in book.items():
        try:
            h, col = _header_row(rows, need)
        except InputError:
            continue
        found = (sheet, rows, h, col)
        break
    if found is None:
        raise InputError(f"{xlsx}: no sheet has a header row with {', '.join(need)}")
    sheet, rows, h, col = found
    if frames is not None:
        frame_root = root / frames
    else:
        cands = [p for p in (root / "SAMM_longvideos", root / "SAMM_LongVideos", root)
                 if p.is_dir()]
        frame_root = cands[0]
    if not frame_root.is_dir():
        raise InputError(f"frame folder {frame_root} not found (--frames names it)")
    fps = 200.0
    step = step_for(fps, target_fps)
    jobs: dict[str, VideoJob] = {}
    warns: list[str] = []
    for vdir in sorted(p for p in frame_root.iterdir() if p.is_dir()):
        m = re.match(r"^(\d{3})_(\d+)$", vdir.name)
        if not m:
            continue
        files = list_images(vdir)
        jobs[vdir.name] = VideoJob(m.group(1), vdir.name, files, _numbers(files), fps, step)
    if not jobs:
        raise InputError(f"no video folders (006_1, ...) in {frame_root} (--frames names it)")
    bad_rows = 0
    for i in range(h + 1, len(rows)):
        r = list(rows[i]) + [None] * (max(col.values()) + 1)
        fname = str(r[col["filename"]] or "").strip()
        on, ap, off = (_int_cell(r[col[k]]) for k in ("onset", "apex", "offset"))
        kind = _kind(r[col["type"]])
        if not fname or on is None or kind is None:
            if any(c not in (None, "") for c in rows[i]):
                bad_rows += 1
            continue
        parts = fname.split("_")
        video = "_".join(parts[:2]) if len(parts) >= 2 else fname
        if len(parts) >= 2 and parts[0].isdigit():
            video = f"{int(parts[0]):03d}_{parts[1]}"
        job = jobs.get(video)
        if job is None:
            warns.append(f"{xlsx.name} row {i + 1}: no frame folder {video}; skipped")
            continue
        job.labels.append(Label(on, ap, off, kind, f"{xlsx.name}:{sheet} row {i + 1}"))
    if not any(j.labels for j in jobs.values()):
        raise InputError(f"{xlsx}: no labels matched the video folders in {frame_root}")
    if bad_rows:
        warns.append(f"{xlsx.name}: {bad_rows} rows without a filename, onset and type were "
                     "ignored")
    return list(jobs.values()), warns


# --------------------------------------------------------------------------------------------
# CAS(ME)^3 Part A


def _read_book(path: Path) -> dict[str, list[list[Cell]]]:
    """Every sheet of an .xlsx (our reader) or a legacy .xls (xlrd) workbook."""
    if path.suffix.lower() != ".xls":
        return read_xlsx(path)
    try:
        import xlrd
    except ImportError as e:  # pragma: no cover - xlrd is a dependency
        raise InputError("reading a legacy .xls workbook needs xlrd: pip install 'xlrd>=2,<3'") from e
    try:
        book = xlrd.open_workbook(str(path))
    except (OSError, xlrd.XLRDError, ValueError, AssertionError) as e:
        raise InputError(f"{path}: not a readable .xls workbook ({e})") from e
    out: dict[str, list[list[Cell]]] = {}
    for sh in book.sheets():
        out[sh.name] = [[None if v == "" else v for v in sh.row_values(i)] for i in range(sh.nrows)]
    return out


def _casme3_frame_root(root: Path, frames: str | None) -> Path:
    if frames is not None:
        cands = [root / frames]
    else:
        cands = [root / "data" / "part_A", root / "part_A", root / "data" / "part_A_split" / "part_A",
                 root / "data", root]
        cands += sorted(p for p in (root / "data").glob("*") if p.is_dir()) if (root / "data").is_dir() else []
    for c in cands:
        if c.is_dir() and any(p.is_dir() and p.name.lower().startswith("spno.") for p in c.iterdir()):
            return c
    raise InputError(f"no subject folders (spNO.<N>/) found under {root} (--frames names the "
                     "folder that holds them)")


def casme3_jobs(root: str | Path, labels: str | Path | None = None, frames: str | None = None,
                target_fps: float = 30.0) -> tuple[list[VideoJob], list[str]]:
    """Conversion jobs for a CAS(ME)^3 Part A release at ``root`` (see the module docstring).

    Subjects become ``sp<N>``, videos ``sp<N>_<letter>``; every video folder with colour frames
    is a job, labelled or not."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset folder not found: {root}")
    book_path = Path(labels) if labels else _find_one(
        root, ["annotation/CAS(ME)3_part_A_v*.xls*", "annotation/partA/CAS(ME)3_part_A_v*.xls*",
               "CAS(ME)3_part_A_v*.xls*", "**/CAS(ME)3_part_A_v*.xls*"],
        "CAS(ME)^3 label workbook (CAS(ME)3_part_A_v2.xls)")
    book = _read_book(book_path)
    need = ("subject", "filename", "onset", "apex", "offset", "expression type")
    found = None
    for sheet, rows in book.items():
        try:
            found = (sheet, rows, *_header_row(rows, need))
            break
        except InputError:
            continue
    if found is None:
        raise InputError(f"{book_path}: no sheet has a header row with {', '.join(need)}")
    sheet, rows, h, col = found
    frame_root = _casme3_frame_root(root, frames)
    fps = 30.0
    step = step_for(fps, target_fps)
    jobs: dict[str, VideoJob] = {}
    warns: list[str] = []
    for sdir in sorted(p for p in frame_root.iterdir() if p.is_dir()):
        m = re.match(r"^spno\.(\d+)$", sdir.name.lower())
        if not m:
            continue
        subject = f"sp{int(m.group(1))}"
        for vdir in sorted(p for p in sdir.iterdir() if p.is_dir()):
            color = vdir / "color"
            if not re.match(r"^[a-z]$", vdir.name.lower()) or not color.is_dir():
                warns.append(f"{vdir}: not a CAS(ME)^3 video folder (<letter>/color/); skipped")
                continue
            video = f"{subject}_{vdir.name.lower()}"
            if video in jobs:
                warns.append(f"{vdir}: second folder for {video}; skipped")
                continue
            files = list_images(color)
            jobs[video] = VideoJob(subject, video, files, _numbers(files), fps, step)
    if not jobs:
        raise InputError(f"no video folders (spNO.<N>/<letter>/color/) under {frame_root}")
    bad_rows = 0
    for i in range(h + 1, len(rows)):
        r = list(rows[i]) + [None] * (max(col.values()) + 1)
        subj = str(r[col["subject"]] or "").strip().lower()
        letter = str(r[col["filename"]] or "").strip().lower()
        on, ap, off = (_int_cell(r[col[k]]) for k in ("onset", "apex", "offset"))
        kind = _kind(r[col["expression type"]])
        sm = re.match(r"^spno\.(\d+)$", subj)
        if sm is None or not letter or on is None or kind is None:
            if any(c not in (None, "") for c in rows[i]):
                bad_rows += 1
            continue
        video = f"sp{int(sm.group(1))}_{letter}"
        job = jobs.get(video)
        if job is None:
            warns.append(f"{book_path.name} row {i + 1}: no frame folder for {video}; skipped")
            continue
        job.labels.append(Label(on, ap, off, kind, f"{book_path.name}:{sheet} row {i + 1}"))
    if not any(j.labels for j in jobs.values()):
        raise InputError(f"{book_path}: no labels matched the video folders under {frame_root}")
    if bad_rows:
        warns.append(f"{book_path.name}: {bad_rows} rows without a subject, video, onset and "
                     "expression type were ignored")
    return list(jobs.values()), warns


DATASETS = {"casme2": casme2_jobs, "samm-lv": samm_lv_jobs, "casme3": casme3_jobs}
