"""vidfake.checkpoints.compose: one detector from the parts of several."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from tests.tiny_models import tiny_model_config
from vidfake.checkpoints.compose import compose, main
from vidfake.checkpoints.format import checkpoint_config, load_checkpoint, save_checkpoint
from vidfake.extract.pipeline import ExtractConfig
from vidfake.temporal import create_model
from vidfake.temporal.aggregate import AggregationConfig


def _save(path, config, seed: int, **card):
    torch.manual_seed(seed)
    model = create_model(config, pretrained=False)
    settings = checkpoint_config(config, ExtractConfig(plan="clips:2x8"), AggregationConfig(temperature=1.7))
    settings["card"] = card
    return save_checkpoint(path, model.state_dict(), settings)


def test_parts_come_from_their_donors_and_everything_else_from_the_base(tmp_path):
    base = _save(tmp_path / "base.safetensors", tiny_model_config(sync=False), 0, note="base")
    sync = _save(tmp_path / "sync.safetensors", tiny_model_config(), 1)
    mouth = _save(tmp_path / "mouth.safetensors", replace(tiny_model_config(sync=False), mouth_motion=True,
                                                           mouth_motion_size=16), 2)
    out = compose(base, {"sync": sync, "mouth_motion": mouth}, tmp_path / "out.safetensors")
    result, b, s, m = (load_checkpoint(p) for p in (out, base, sync, mouth))
    model = result.settings.model
    assert model.sync and model.mouth_motion and model.mouth_motion_size == 16
    assert result.config["aggregation"]["temperature"] == 1.7 and result.config["card"]["note"] == "base"
    assert "sync from sync.safetensors" in result.config["card"]["composed"]
    for name, tensor in result.state_dict.items():
        donor = s if name.startswith("sync") else m if name.startswith("mouth") else b
        assert torch.equal(tensor, donor.state_dict[name]), name
    weighted = load_checkpoint(compose(out, {}, tmp_path / "w.safetensors", mouth_weight=0.75))
    assert float(weighted.state_dict["mouth_weight"]) == 0.75 and "mouth weight 0.75" in weighted.config["card"]["composed"]
    assert weighted.settings.aggregation.mouth_threshold == 0.0  # not asked: the default
    judged = load_checkpoint(compose(weighted.path, {}, tmp_path / "t.safetensors", mouth_threshold=1.25))
    assert judged.settings.aggregation.mouth_threshold == 1.25 and judged.settings.aggregation.temperature == 1.7
    assert float(judged.state_dict["mouth_weight"]) == 0.75 and "mouth threshold 1.25" in judged.config["card"]["composed"]


def test_a_part_the_donor_lacks_or_that_does_not_fit_is_refused(tmp_path):
    base = _save(tmp_path / "base.safetensors", tiny_model_config(sync=False), 0)
    with pytest.raises(ValueError, match="no mouth_motion weights"):
        compose(base, {"mouth_motion": base}, tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match="unknown part"):
        compose(base, {"temporal": base}, tmp_path / "x.safetensors")
    sync = _save(tmp_path / "s.safetensors", tiny_model_config(), 1)
    with_sync = compose(base, {"sync": sync}, tmp_path / "with_sync.safetensors")
    mouth40 = _save(tmp_path / "m40.safetensors", replace(tiny_model_config(sync=False), mouth_motion=True, n_mels=40), 4)
    with pytest.raises(ValueError, match="n_mels"):
        compose(with_sync, {"mouth_motion": mouth40}, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_cli(tmp_path, capsys):
    base = _save(tmp_path / "base.safetensors", tiny_model_config(sync=False), 0)
    sync = _save(tmp_path / "sync.safetensors", tiny_model_config(), 1)
    assert main([str(base), "--part", f"sync={sync}", "--out", str(tmp_path / "o.safetensors")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert main([str(base), "--part", f"mouth_motion={base}", "--out", str(tmp_path / "p.safetensors")]) == 1
    assert "no mouth_motion weights" in capsys.readouterr().err
    assert main([str(base), "--mouth-weight", "1", "--out", str(tmp_path / "r.safetensors")]) == 1
    assert "no mouth-motion head" in capsys.readouterr().err
    assert main([str(base), "--mouth-threshold", "1", "--out", str(tmp_path / "r.safetensors")]) == 1
    assert "no mouth-motion head" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(base), "--part", "sync", "--out", str(tmp_path / "q.safetensors")])
