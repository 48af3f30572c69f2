"""Test media and fuzzing, shipped with the package so tests, benchmarks and users share them:
synthetic videos and images with known ground truth (``media``) and the mutation fuzzer
behind ``benchmarks/fuzz.py`` (``fuzz``). Nothing in the scoring path imports this."""
