"""``pfes convert casme2|samm-lv|casme3 ROOT --out DIR``: a licensed dataset -> a pfes dataset directory."""

from __future__ import annotations

import argparse
import sys

__all__ = ["HELP", "add_arguments", "main"]

HELP = ("convert a CAS(ME)^2, SAMM-LV or CAS(ME)^3 Part A release (frames + label workbook) "
        "into a pfes dataset")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=["casme2", "samm-lv", "casme3"],
                        help="which release ROOT holds")
    parser.add_argument("root", metavar="ROOT",
                        help="the unpacked release (CAS(ME)^2: the folder with rawpic/ and the "
                             "*code_final*.xlsx workbook; SAMM-LV: the folder with "
                             "SAMM_longvideos/ and SAMM_LongVideos_*.xlsx; CAS(ME)^3: the Part A "
                             "folder with data/part_A/spNO.*/ and annotation/CAS(ME)3_part_A_v2.xls)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output dataset directory (annotations.csv + landmarks/)")
    parser.add_argument("--labels", metavar="XLSX",
                        help="the label workbook (.xlsx; .xls for CAS(ME)^3), if not found in ROOT")
    parser.add_argument("--frames", metavar="SUBDIR",
                        help="frame folder inside ROOT (default: rawpic for CAS(ME)^2, "
                             "SAMM_longvideos for SAMM-LV, the folder holding spNO.*/ for "
                             "CAS(ME)^3)")
    parser.add_argument("--fps-out", type=float, default=30.0, metavar="FPS",
                        help="keep every k-th frame so the rate is nearest FPS (default 30: "
                             "CAS(ME)^2 stays at 30, SAMM-LV's 200 becomes 28.6)")
    parser.add_argument("--videos", metavar="N", type=int,
                        help="convert only the first N videos (a quick check of the setup)")
    parser.add_argument("--face-model", metavar="PATH",
                        help="face_landmarker.task for the MediaPipe Tasks API "
                             "(default: the bundled legacy face mesh)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="videos tracked at once, one process each (default 1; about "
                             "one per two CPU cores is a good start)")
    parser.add_argument("--overwrite", action="store_true",
                        help="redo videos already in DIR (default: skip them, so an "
                             "interrupted run resumes)")
    parser.add_argument("--dry-run", action="store_true",
                        help="read the labels and list the videos, convert nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def main(args: argparse.Namespace) -> int:
    from pfes.errors import InputError
    from training.convert import convert_videos, map_labels
    from training.real_datasets import DATASETS

    if args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}")
    if args.videos is not None and args.videos < 1:
        raise InputError(f"--videos must be >= 1, got {args.videos}")
    jobs, warns = DATASETS[args.dataset](args.root, labels=args.labels, frames=args.frames,
                                         target_fps=args.fps_out)
    if args.videos is not None:
        jobs = jobs[: args.videos]
    n_lab = sum(len(j.labels) for j in jobs)
    n_micro = sum(lab.kind == "micro" for j in jobs for lab in j.labels)
    frames = sum(j.frames_out for j in jobs)
    subjects = len({j.subject for j in jobs})
    print(f"{args.dataset}: {len(jobs)} videos of {subjects} subjects, {n_lab} labels "
          f"({n_lab - n_micro} macro, {n_micro} micro), {frames} frames to track at "
          f"{jobs[0].fps / jobs[0].step:.2f} fps")
    if args.dry_run:
        for j in jobs:
            anns, label_warns = map_labels(j, j.frames_out)
            warns.extend(label_warns)
            print(f"  {j.video}: {len(j.files)} images, keep every {j.step}, "
                  f"{len(anns)} labels")
    else:
        report = convert_videos(jobs, args.out, dataset=args.dataset, source_root=args.root,
                                face_model=args.face_model, overwrite=args.overwrite,
                                progress=not args.quiet, notes=warns,
                                workers=args.workers)
        warns = [*warns, *report.warnings]
        print(f"wrote {args.out}: {len(report.converted)} videos converted, "
              f"{len(report.skipped)} already there, {report.annotations} labels")
    for w in warns[:20]:
        print(f"pfes convert: warning: {w}", file=sys.stderr)
    if len(warns) > 20:
        print(f"pfes convert: {len(warns) - 20} more warnings"
              + ("" if args.dry_run else f" in {args.out}/convert.json"), file=sys.stderr)
    return 0
