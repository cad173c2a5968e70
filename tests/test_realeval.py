"""The real-video scorer on a hand-made folder (counts worked out by hand)."""

from __future__ import annotations

import pytest

from pfes.errors import InputError
from training.evaluate import Interval
from training.realeval import format_real_table, load_real_folder, score_real


def _folder(tmp_path):
    for v in ("a", "b"):
        (tmp_path / f"{v}.mp4").write_bytes(b"")
    (tmp_path / "annotations.csv").write_text(
        "subject,video,onset,apex,offset,type,point,what,confidence\n"
        "s1,a,10,15,29,macro,15,smile,clear\n"
        "s1,a,60,62,64,micro,62,burst,unsure\n"
        "s2,b,0,5,49,macro,5,frown,clear\n"
    )
    (tmp_path / "spans.csv").write_text(
        "video,start,end,label\na,0,99,talking\nb,50,74,neutral\nb,75,124,talking\n"
    )
    return load_real_folder(tmp_path)


def test_counts_by_hand(tmp_path):
    truth = _folder(tmp_path)
    preds = {
        # a: matches the smile (IoU 16/20 = 0.8); one on the unsure burst (set aside);
        #    one false event at apex 80 in talking
        "a": [Interval(12, 27, "macro", 1.0, 15), Interval(60, 64, "micro", 0.9, 62),
              Interval(78, 84, "macro", 0.5, 80)],
        # b: the frown found as micro (class-aware miss, class-agnostic hit); one event with
        #    apex in the neutral span; one false event in talking
        "b": [Interval(0, 40, "micro", 1.0, 5), Interval(55, 70, "macro", 0.8, 60),
              Interval(100, 110, "macro", 0.7, 105)],
    }
    res = score_real(preds, truth, {"a": 25.0, "b": 25.0})
    assert res["macro"] == pytest.approx(
        {"tp": 1, "fp": 3, "n": 2, "precision": 0.25, "recall": 0.5, "f1": 2 / 6})
    assert (res["micro"]["tp"], res["micro"]["fp"], res["micro"]["n"]) == (0, 1, 0)
    assert (res["any"]["tp"], res["any"]["fp"], res["any"]["n"]) == (2, 3, 2)
    assert res["any"]["recall"] == 1.0
    assert res["neutral_events"] == 1
    # talking: a 100 frames + b 50 frames = 6 s; false events in talking: a@80, b@105
    assert res["talking_s"] == 6.0 and res["talking_false_events"] == 2
    assert res["talking_false_per_min"] == pytest.approx(20.0)
    rows = {c["video"]: c for c in res["clips"]}
    assert (rows["a"]["found"], rows["a"]["false"], rows["b"]["neutral_events"]) == (1, 1, 1)
    assert "20.0/min" in format_real_table(res)


def test_bad_folders_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="no annotations.csv"):
        load_real_folder(tmp_path)
    (tmp_path / "annotations.csv").write_text("subject,video,onset,apex,offset,type\ns,x,0,1,2,macro\n")
    (tmp_path / "a.mp4").write_bytes(b"")
    with pytest.raises(InputError, match="'x' has no file"):
        load_real_folder(tmp_path)
    (tmp_path / "annotations.csv").write_text("subject,video,onset,apex,offset,type\ns,a,5,1,2,macro\n")
    with pytest.raises(InputError, match="onset <= apex <= offset"):
        load_real_folder(tmp_path)
