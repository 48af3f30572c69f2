"""Comparison tables of several evaluations: what each cell says, from metrics alone."""
from __future__ import annotations

from vidfake.eval.evaluate import evaluate_predictions
from vidfake.eval.tables import comparison_table


def _row(name: str, label: int, score: float, family: str) -> dict:
    return {"path": name, "name": name, "label": str(label), "score": str(score), "logit": "", "status": "ok",
            "family": family}


def _metrics(shift: float) -> dict:
    rows = [_row(f"r{i}", 0, s, "real") for i, s in enumerate([0.1, 0.2, 0.7, 0.3])]
    rows += [_row(f"s{i}", 1, s + shift, "swap") for i, s in enumerate([0.8, 0.6, 0.25])]
    rows += [_row("m0", 1, 0.9, "mixed"), _row("m1", 0, 0.4, "mixed")]
    return evaluate_predictions(rows, threshold=0.5, clip=1e-6, n_boot=20, by=("family",))


def test_each_cell_says_what_its_group_can_show():
    lines = comparison_table([_metrics(0.0), _metrics(-0.2)], ["A", "B"], "family")
    assert lines[0] == "| family | files (fake/real) | A | B |"
    rows = {line.split(" | ")[0].strip("| "): line for line in lines[2:]}
    assert set(rows) == {"mixed", "real", "swap", "**all videos**"}
    assert "within; log loss" in rows["mixed"] and "real called fake 0/1, fakes caught 1/1" in rows["mixed"]
    assert rows["real"].endswith("| real called fake 1/4 | real called fake 1/4 |")  # 0.7 is over 0.5 in both
    swap_a, swap_b = rows["swap"].split(" | ")[2:4]
    assert "vs reals" in swap_a and swap_a.endswith("fakes caught 2/3")
    assert swap_b.rstrip(" |").endswith("fakes caught 1/3")  # 0.6 - 0.2 now passes as real
    assert rows["**all videos**"].startswith("| **all videos** | 4/5 |")
