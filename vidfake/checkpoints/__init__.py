"""Checkpoints: the one place that reads and writes model files.

* ``format``: a single checkpoint (safetensors tensors plus its JSON config), its checks
  and the SHA-256 that names it;
* ``ensemble_file``: several checkpoints packed into one file that ships like one model;
* ``default``: the default model that ships inside this package, guarded by its checksum;
* ``package``: turning a trained, calibrated checkpoint into that default model.

Importing this package imports none of them (nor torch), so ``vidfake --help`` stays fast.
"""
