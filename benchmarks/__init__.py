"""Benchmarks: speed, memory and scale of every pipeline stage.

Run ``python -m benchmarks --scale 10k`` (or ``make bench SCALE=10k``). Each stage lives in
``benchmarks/stages/<name>.py`` and returns a :class:`benchmarks.common.StageResult`; a stage whose
pipeline code is not implemented yet is reported as ``skipped: not implemented`` instead of failing.
Results go to ``benchmarks/results/<date>-<machine>.{json,md}``.
"""
