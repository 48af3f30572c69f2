"""eval: measuring a detector and writing what scoring found, from files alone.

- ``metrics``: AUC, log loss, TPR@FPR, EER, ECE, bootstrap intervals (numpy only).
- ``datasets``: labelled sets to evaluate on; ``evaluate``: ``vidfake eval``'s scoring
  loop and predictions file; ``outputs``, ``plots``, ``report``: metrics.json, the PNGs
  and report.md derived from that file; ``submission``: the field's two submission formats.
- ``calibrate``: ``vidfake calibrate``, fitting temperature (and bias) on predictions.
- ``results``: ``vidfake score``'s CSV/JSONL, submission and timeline files.

eval calls scoring (see DESIGN.md's "who uses whom"), never the reverse, and imports no
torch at module level: a scorer comes in as an argument and ``Verdict`` is a type hint
only, so metrics and reports of a predictions file need no model code
(``tests/eval/test_eval_imports.py`` holds every module here to that).
"""
