"""Bundle integrity: bundle.json lists every file with sha256 and size; anything else is one BundleError.

Before: a truncated LightGBM model.txt crashed the loading process (signal 11), damaged safetensors
surfaced as raw SafetensorError tracebacks, an unlisted pickle (``extra_state.dat``) was accepted and
bit-flipped weights loaded silently.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipelines.contract import ExitCode
from pipelines.models import BundleError, fit_calibrator, load_bundle, save_baseline_bundle
from pipelines.models.bundle import _sha256, seal_bundle
from tests.helpers.synthetic import FEATURES, make_customers
from tests.pipelines.models.test_model_bundle import _transformer_bundle

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def frame():
    return make_customers(120, seed=3)


@pytest.fixture
def baseline(tmp_path, frame) -> Path:
    import lightgbm as lgb

    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "deterministic": True, "seed": 1}
    booster = lgb.train(params, lgb.Dataset(frame[FEATURES].to_numpy(), frame["churned"].to_numpy()), 30)
    calibrator = fit_calibrator(frame["churned"], booster.predict(frame[FEATURES].to_numpy()), "platt")
    return save_baseline_bundle(
        tmp_path / "b", booster=booster, feature_names=FEATURES, calibrator=calibrator, threshold=0.5
    )


@pytest.fixture
def transformer(tmp_path, tiny_config, frame) -> Path:
    path, _ = _transformer_bundle(tmp_path, tiny_config, frame)
    return path


def _meta(path: Path) -> dict:
    return json.loads((path / "bundle.json").read_text())


def _flip_bit(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_bundle_json_lists_every_file_with_sha256_and_size(baseline, transformer):
    for path in (baseline, transformer):
        meta = _meta(path)
        on_disk = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
        assert sorted(meta["files"]) == [f for f in on_disk if f != "bundle.json"] and meta["format_version"] == 2
        for rel, entry in meta["files"].items():
            assert entry == {"sha256": _sha256(path / rel), "size": (path / rel).stat().st_size}
    assert "encoder/model.safetensors" in _meta(transformer)["files"]
    load_bundle(baseline), load_bundle(transformer)  # intact bundles load


@pytest.mark.parametrize("name", ["extra_state.dat", "encoder/notes.txt", ".hidden"])
def test_unlisted_files_are_refused_whatever_their_suffix(baseline, name):
    target = baseline / name
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(pickle.dumps({"w": [0.0, 0.0]}))  # a pickle, named innocently
    with pytest.raises(BundleError, match=rf"not listed in bundle.json: {name}"):
        load_bundle(baseline)


def test_bit_flips_are_refused_naming_the_file(baseline, transformer):
    _flip_bit(baseline / "model.txt", 200)
    with pytest.raises(BundleError, match=r"model.txt is corrupted: its sha256"):
        load_bundle(baseline)
    for rel in ("head.safetensors", "encoder/model.safetensors", "encoder/config.json"):
        damaged = transformer.parent / f"flip-{rel.replace('/', '-')}"
        shutil.copytree(transformer, damaged)
        _flip_bit(damaged / rel, (damaged / rel).stat().st_size // 2)
        with pytest.raises(BundleError, match=rf"{rel} is corrupted"):
            load_bundle(damaged)


@pytest.mark.parametrize("keep, what", [(0.5, "truncated"), (0.0, "empty")])
def test_truncated_or_empty_safetensors_are_one_bundle_error(transformer, keep, what):
    _truncate(transformer / "head.safetensors", keep)
    with pytest.raises(BundleError, match=rf"head.safetensors is {what}: \d+ bytes, bundle.json says \d+") as err:
        load_bundle(transformer)
    assert "\n" not in str(err.value) and err.value.exit_code == ExitCode.SCORING


def test_damaged_safetensors_with_a_consistent_manifest_is_still_a_bundle_error(transformer):
    """Even a tamperer who rewrites the checksums gets a BundleError naming the file, not a SafetensorError."""
    _truncate(transformer / "head.safetensors", 0.5)
    seal_bundle(transformer)
    with pytest.raises(BundleError, match="head.safetensors: cannot load the head weights"):
        load_bundle(transformer)
    _truncate(transformer / "encoder" / "model.safetensors", 0.3)
    seal_bundle(transformer)
    with pytest.raises(BundleError, match=r"cannot load encoder of bundle .*encoder/"):
        load_bundle(transformer)


def test_bundles_without_checksums_or_with_links_are_refused(baseline, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(baseline, old)
    meta = _meta(old)
    del meta["files"]
    meta["format_version"] = 1
    (old / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="no file list with checksums.*re-save"):
        load_bundle(old)

    escape = tmp_path / "escape"
    shutil.copytree(baseline, escape)
    meta = _meta(escape)
    meta["files"]["../b/model.txt"] = meta["files"]["model.txt"]
    (escape / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="bad file entry '../b/model.txt'"):
        load_bundle(escape)

    linked = tmp_path / "linked"
    shutil.copytree(baseline, linked)
    os.symlink(tmp_path / "elsewhere", linked / "link")
    with pytest.raises(BundleError, match="link is a link or special file"):
        load_bundle(linked)


LOAD_IN_CHILD = textwrap.dedent(
    """
    import sys
    from pipelines.models import BundleError, load_bundle
    for path in sys.argv[1:]:
        try:
            load_bundle(path)
            print(path, "loaded")
        except BundleError as exc:
            print(path, "BundleError:", exc)
    """
)


def test_truncated_lightgbm_model_never_crashes_the_process(baseline, tmp_path):
    """Loaded in one child process: before, a cut model.txt killed the loader with signal 11."""
    paths = []
    for keep in (0.1, 0.3, 0.5, 0.7):
        for reseal in (False, True):  # a stale checksum, or a tamperer who rewrote bundle.json
            path = tmp_path / f"cut-{keep}-{reseal}"
            shutil.copytree(baseline, path)
            _truncate(path / "model.txt", keep)
            if reseal:
                seal_bundle(path)
            paths.append(str(path))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.run(
        [sys.executable, "-c", LOAD_IN_CHILD, *paths], capture_output=True, text=True, env=env, timeout=300
    )
    assert child.returncode == 0, (child.returncode, child.stdout, child.stderr[-2000:])
    results = dict(line.split(" ", 1) for line in child.stdout.splitlines() if line.startswith(str(tmp_path)))
    assert sorted(results) == sorted(paths)
    for path, outcome in results.items():
        assert outcome.startswith("BundleError:") and "model.txt" in outcome, (path, outcome)
        if path.endswith("False"):
            assert "model.txt is truncated" in outcome
