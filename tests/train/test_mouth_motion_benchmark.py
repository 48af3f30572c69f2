"""benchmarks/mouth_motion.py end to end on a tiny folder: every family's fakes against every real file."""
from __future__ import annotations

import csv
import importlib
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from tests.paths import BENCHMARKS
from tests.tiny_models import tiny_model_config
from tests.train.folders import SynthClip, synthetic_face, write_extraction


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("mouth_motion")


def test_per_group_ranks_each_familys_fakes_against_all_reals(bench):
    rows = [{"label": 0, "score": s, "family": "real"} for s in (0.0, 1.0)]
    rows += [{"label": 1, "score": 2.0, "family": "lip-sync"}, {"label": 1, "score": 0.5, "family": "swap"}]
    result = bench.per_group(rows, "family")
    assert result["lip-sync"]["auc"] == 1.0 and result["swap"]["auc"] == 0.5
    assert result["swap"]["fake"] == 1 and result["swap"]["real"] == 2


def test_benchmark_writes_per_family_results(bench, tmp_path):
    from vidfake.checkpoints.format import checkpoint_config, save_checkpoint
    from vidfake.extract.pipeline import ExtractConfig
    from vidfake.temporal import create_model
    from vidfake.temporal.aggregate import AggregationConfig

    rng = np.random.default_rng(0)
    clips, rows = [], []
    media = tmp_path / "media"
    media.mkdir()
    for i, family in enumerate(["real", "real", "lip-sync", "talking head"]):
        face, landmarks = synthetic_face(rng, 64)
        (media / f"v{i}.mp4").write_bytes(b"")
        clips.append(SynthClip(f"v{i}", label=int(family != "real"), frames=np.repeat(face[None], 8, 0),
                               landmarks=np.repeat(landmarks[None], 8, 0), mouths=np.zeros((8, 32, 32, 3), np.uint8)))
        rows.append({"path": f"v{i}.mp4", "label": "REAL" if family == "real" else "FAKE", "family": family,
                     "method": family})
    folder = write_extraction(tmp_path / "faces", clips, 64, 32)
    records = [json.loads(line) for line in (folder / "tracks.jsonl").read_text().splitlines()]
    for record in records:  # the folder's records point at the labelled media
        record["path"] = str(media / f"{record['media_id']}.mp4")
    (folder / "tracks.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    with (media / "labels.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["path", "label", "family", "method"])
        writer.writeheader()
        writer.writerows(rows)
    config = replace(tiny_model_config(), mouth_motion=True, mouth_motion_size=16)
    torch.manual_seed(0)
    checkpoint = save_checkpoint(tmp_path / "m.safetensors", create_model(config, pretrained=False).state_dict(),
                                 checkpoint_config(config, ExtractConfig(), AggregationConfig()))
    out = tmp_path / "result.json"
    assert bench.main([str(checkpoint), "--data", str(folder), "--labels", str(media / "labels.csv"),
                       "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["scored"] == 4 and result["left_out"] == 0
    assert set(result["per_family"]) == {"lip-sync", "talking head"}
    assert result["per_family"]["lip-sync"]["fake"] == 1 and result["per_family"]["lip-sync"]["real"] == 2
    from vidfake.train.mouth_motion import mouth_run_logits

    runs = mouth_run_logits(checkpoint, folder)
    reals = [float(np.mean(runs[f"v{i}"])) for i in (0, 1)]
    assert result["real_logit_90th_percentile"] == pytest.approx(np.quantile(reals, 0.9), abs=1e-4)


def test_combined_adds_the_head_to_the_detector_cross_fitted_by_source(bench, tmp_path):
    rng = np.random.default_rng(0)
    rows, lines = [], ["path,logit,status"]
    for i in range(80):
        label = i % 2
        family = "real" if label == 0 else ("lip-sync" if i % 4 == 1 else "face swap")
        mouth = 2.0 * (family == "lip-sync") + rng.normal()  # the head sees lip-syncs only
        base = 1.0 * label + rng.normal()
        rows.append({"media_id": f"v{i}", "label": label, "score": mouth, "evidence": max(mouth, 0.0), "family": family,
                     "method": family, "group": f"g{i // 4}", "source": f"repo{i % 10}",
                     "path": str((tmp_path / f"v{i}.mp4").resolve())})
        lines.append(f"v{i}.mp4,{base},ok")
    lines.append("missing.mp4,0.0,no_face")
    (tmp_path / "predictions.csv").write_text("\n".join(lines) + "\n")
    result = bench.combined(rows, tmp_path / "predictions.csv", tmp_path)
    assert result["videos"] == 80 and result["weight"] > 0
    detector, both = result["per_family_detector"], result["per_family_combined"]
    assert set(both) == {"lip-sync", "face swap"} and both["lip-sync"]["real"] == 40
    assert both["lip-sync"]["auc"] > detector["lip-sync"]["auc"] + 0.05
    with pytest.raises(SystemExit):
        bench.combined(rows, tmp_path / "predictions.csv", tmp_path / "elsewhere")


def test_within_groups_orders_fakes_against_their_own_groups_reals(bench):
    rows = [{"media_id": "in", "label": 0, "score": 0.4, "group": "g1", "method": "real"},
            {"media_id": "out1", "label": 1, "score": 0.9, "group": "g1", "method": "Wav2Lip"},
            {"media_id": "out2", "label": 1, "score": 0.4, "group": "g1", "method": "DINet"},  # a tie: half
            {"media_id": "other", "label": 0, "score": 0.0, "group": "g2", "method": "real"},  # no fake in g2
            {"media_id": "lone", "label": 1, "score": 0.0, "group": "g3", "method": "Wav2Lip"}]  # no real in g3
    result = bench.within_groups(rows)
    assert result["all"] == {"pairs": 2, "groups": 1, "fakes": 2, "correct": 0.75}
    assert result["per_method"]["Wav2Lip"]["correct"] == 1.0 and result["per_method"]["DINet"]["correct"] == 0.5
    assert bench.within_groups(rows[3:])["all"] is None
