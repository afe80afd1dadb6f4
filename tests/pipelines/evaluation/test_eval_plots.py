"""save_plots writes the five PNGs."""

from __future__ import annotations

import numpy as np

from pipelines.evaluation import PLOT_FILES, save_plots


def test_save_plots_writes_five_pngs(tmp_path):
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.25).astype(int)
    p = np.clip(0.2 + 0.4 * y + rng.normal(0, 0.15, y.size), 0, 1)
    paths = save_plots(y, p, tmp_path / "plots")
    assert sorted(x.name for x in paths) == sorted(PLOT_FILES)
    for path in paths:
        assert path.stat().st_size > 1000
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
