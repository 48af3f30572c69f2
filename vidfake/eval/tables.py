"""Side-by-side markdown tables of several evaluations (``metrics.json`` of ``vidfake eval``):
the overall line, one row per value of a grouping (family, source, ...), one column per model.

Why: a model card compares the new model with the ones before it on the same set, per
family and per source, with intervals; copying numbers by hand is where mistakes come
from. ``python -m vidfake.eval.tables reports/a reports/b --by family --by source`` prints
the tables for the report folders given (their ``metrics.json``), in that order.

A cell holds what the group can show: AUC with its 95 % interval when it has both classes
(``within``) or, for a fake-only group, its fakes ranked against all real files of the set
(``vs reals``); the share of its real files called fake and of its fakes caught at the
model's threshold; and the log loss.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["comparison_table", "main"]


def _auc(metrics: Mapping | None) -> str:
    if not metrics or metrics.get("auc") is None:
        return "–"
    low, high = metrics["auc_ci"]
    return f"{metrics['auc']:.3f} [{low:.2f}, {high:.2f}]"


def _rates(metrics: Mapping) -> str:
    confusion = metrics.get("confusion")
    n_real, n_fake = metrics.get("n_real", 0), metrics.get("n_fake", 0)
    if confusion:
        called, caught = confusion["fp"], confusion["tp"]
    else:  # a one-class group: accuracy is the share it got right
        right = round(metrics.get("accuracy", 0.0) * metrics.get("n", 0))
        called, caught = (n_real - right, 0) if n_real else (0, right)
    parts = []
    if n_real:
        parts.append(f"real called fake {called}/{n_real}")
    if n_fake:
        parts.append(f"fakes caught {caught}/{n_fake}")
    return ", ".join(parts)


def _cell(group: Mapping | None, versus: Mapping | None) -> str:
    if group is None:
        return "–"
    if group.get("auc") is not None:
        text = f"{_auc(group)} within; log loss {group['log_loss']:.3f}"
    elif versus is not None and versus.get("auc") is not None:
        text = f"{_auc(versus)} vs reals; log loss {versus['log_loss']:.3f}"
    else:
        text = ""
    rates = _rates(group)
    return "; ".join(part for part in (text, rates) if part)


def comparison_table(metrics: Sequence[Mapping], names: Sequence[str], by: str) -> list[str]:
    """Markdown lines: one row per value of grouping ``by``, one column per evaluation."""
    values = sorted({v for m in metrics for v in m.get("groups", {}).get(by, {})})
    lines = [f"| {by} | files (fake/real) | " + " | ".join(names) + " |",
             "|---|---|" + "---|" * len(names)]
    for value in values:
        groups = [m.get("groups", {}).get(by, {}).get(value) for m in metrics]
        first = next(g for g in groups if g is not None)
        cells = [_cell(g, m.get("fakes_vs_all_reals", {}).get(by, {}).get(value)) for g, m in zip(groups, metrics)]
        lines.append(f"| {value} | {first.get('n_fake', 0)}/{first.get('n_real', 0)} | " + " | ".join(cells) + " |")
    overall = [m["video"] for m in metrics]
    lines.append(f"| **all videos** | {overall[0]['n_fake']}/{overall[0]['n_real']} | "
                 + " | ".join(f"{_auc(v)}; log loss {v['log_loss']:.3f}; {_rates(v)}" for v in overall) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Print the comparison tables; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m vidfake.eval.tables", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", type=Path, help="report folders of `vidfake eval` (metrics.json)")
    parser.add_argument("--name", action="append", help="column title per report (default: its folder name)")
    parser.add_argument("--by", action="append", default=[], help="grouping to tabulate (repeatable; default: family)")
    args = parser.parse_args(argv)
    try:
        metrics = [json.loads((folder / "metrics.json").read_text()) for folder in args.reports]
    except (OSError, json.JSONDecodeError) as error:
        print(f"tables: {error}", file=sys.stderr)
        return 2
    names = args.name or [folder.name for folder in args.reports]
    if len(names) != len(metrics):
        print("tables: give one --name per report", file=sys.stderr)
        return 2
    for by in args.by or ["family"]:
        print("\n".join(comparison_table(metrics, names, by)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
