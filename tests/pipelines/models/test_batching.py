"""Batching helpers: length buckets and progress lines of long encoder passes."""

from __future__ import annotations


def test_row_progress_logs_long_passes_at_most_every_interval(caplog, monkeypatch):
    """A 60k-row pass logs done/total with a rate and an ETA, not once per batch and not at the end."""
    import logging

    from pipelines.models import batching

    clock = iter(float(t) for t in range(0, 1000, 4))  # every call 4 s later
    monkeypatch.setattr(batching.time, "perf_counter", lambda: next(clock))
    with caplog.at_level(logging.INFO, logger="pipelines.models.batching"):
        progress = batching.RowProgress("frozen encoder vectors", 60_000, every_s=10)
        for _ in range(10):
            progress.step(6_000)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("frozen encoder vectors")]
    assert 2 <= len(lines) <= 4  # 40 s of work at 10 s intervals, the finishing step silent
    assert lines[0].startswith("frozen encoder vectors: 18000/60000 rows (1500.0 rows/s, ETA 0m28s)")
