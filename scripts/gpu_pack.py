"""Prepare the GPU check here, on a CPU machine: everything ``scripts/gpu_check.sh`` needs on a lent GPU machine.

Why this exists: a lent GPU machine starts bare, reaches no network and gets only the working tree plus up to
64 MiB of carried files, while its device time is scarce. So the run there must be one short command over
things prepared here and checked to fit:

- ``bundle/``: the champion's transformer bundle (a hybrid's inner one) saved again with its encoder weights
  stored in fp16 (45 MB instead of 91 MB for MiniLM; loaded as fp32 there, so the fp32 reference is the model
  rounded once to fp16) and without ONNX graphs (a CPU backend);
- ``frame.parquet``: a seeded sample of the labelled test rows of the champion's training run: the bundle's
  features, text views and labels, without customer ids;
- ``wheels/``: the packages the GPU image lacks (``GPU_WHEELS``, versions from constraints.txt), built for its
  Python 3.12.

    .venv/bin/python -m scripts.gpu_pack                       # the champion of the configured registry
    .venv/bin/python -m scripts.gpu_pack --bundle DIR --manifest data/datasets/<as_of>/manifest.json

Then, with a GPU lent: ``run(command="bash scripts/gpu_check.sh", carry=[".gpu"])`` (see README "GPU check").
Exit codes: 0 written; 2 bad arguments or too large to carry; 7 no champion; 11 a file cannot be read or written.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from pipelines.contract import LABEL_COLUMN, TEXT_COLUMN, ExitCode

logger = logging.getLogger("scripts.gpu_pack")

ROOT = Path(__file__).resolve().parents[1]
CARRY_LIMIT_MIB = 64  # the device tool's limit on the working tree plus carried paths
GPU_PYTHON = "3.12"  # the GPU image's python3
GPU_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
# What `python -m benchmarks --stages gpu` imports that the GPU image (torch, transformers, pandas, pyarrow,
# scikit-learn, safetensors, pyyaml, peft, ...) does not have: found by importing the stage's modules in a venv
# holding only that image's packages.
GPU_WHEELS = ("lightgbm", "pydantic", "pydantic_core", "annotated_types", "typing_inspection")


class PackError(RuntimeError):
    def __init__(self, message: str, exit_code: ExitCode):
        super().__init__(message)
        self.exit_code = exit_code


def pinned_versions(constraints: Path = ROOT / "constraints.txt") -> dict[str, str]:
    """``name -> version`` from constraints.txt, names normalised (``pydantic-core`` == ``pydantic_core``)."""
    out = {}
    for line in constraints.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out[name.strip().lower().replace("-", "_")] = version.strip()
    return out


def champion_and_sets(config):
    """(the champion as a predictor, loaded through the registry's bundle cache; its training run's manifest path)."""
    from pipelines import tracking as t
    from pipelines.registry import load_model_version, resolve_champion
    from pipelines.registry.errors import NoChampionError

    try:
        ref = resolve_champion(config)
    except NoChampionError as exc:
        raise PackError(str(exc), ExitCode.REGISTRY) from exc
    manifest = t.get_run(t.setup_tracking(config), ref.run_id).data.tags.get(t.TAG_MANIFEST)
    if not manifest:
        raise PackError(f"{ref.model_uri}: run {ref.run_id} has no {t.TAG_MANIFEST!r} tag", ExitCode.REGISTRY)
    predictor = load_model_version(config, ref.version, device="cpu")
    return predictor, config.resolve_path(manifest, t.TAG_MANIFEST)


def write_half_bundle(predictor, source: str, out: Path) -> Path:
    """``predictor`` (a transformer or a hybrid) saved again as a transformer bundle with fp16 encoder weights."""
    from pipelines.models import save_transformer_bundle

    inner = getattr(predictor, "transformer", predictor)
    if getattr(inner, "kind", None) != "transformer":
        raise PackError(f"{source} holds no transformer (kind {predictor.kind})", ExitCode.CONFIG)
    meta = inner.metadata
    inner.model.encoder.half()
    return save_transformer_bundle(
        out,
        model=inner.model,
        tokenizer=inner.tokenizer,
        scaler=inner.scaler,
        calibrator=inner.calibrator,
        threshold=inner.threshold,
        max_length=inner.max_length,
        encoder_source=meta.get("encoder", {}).get("source", ""),
        fine_tune=meta.get("encoder", {}).get("fine_tune", "full"),
        text_style=meta.get("text", {}).get("style", "verbose"),
        extra={"gpu_pack": f"{source}: encoder weights stored in fp16 for the transfer (they load as fp32)"},
        onnx=False,
    )


def write_frame(manifest: Path, feature_names: list[str], rows: int, out: Path, seed: int = 0) -> int:
    """A seeded sample of the manifest's test split: features, text view, label; no customer ids."""
    from pipelines.datasets import load_training_sets

    test = load_training_sets(str(manifest)).test
    columns = [*feature_names, TEXT_COLUMN, LABEL_COLUMN]
    missing = [c for c in columns if c not in test.columns]
    if missing:
        raise PackError(
            f"{manifest}: the test split lacks the bundle's column(s) {', '.join(missing[:8])}", ExitCode.CONFIG
        )
    sample = test[columns]
    if len(sample) > rows:
        sample = sample.iloc[np.sort(np.random.default_rng(seed).choice(len(sample), rows, replace=False))]
    sample.reset_index(drop=True).to_parquet(out, index=False)
    return len(sample)


def download_wheels(out: Path, names=GPU_WHEELS, python: str = GPU_PYTHON) -> list[Path]:
    """The GPU image's missing packages as wheels for its Python, pinned by constraints.txt."""
    pins = pinned_versions()
    unpinned = [n for n in names if n not in pins]
    if unpinned:
        raise PackError(f"constraints.txt pins no version of {', '.join(unpinned)}", ExitCode.CONFIG)
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(out)]
    cmd += ["--python-version", python, "--implementation", "cp"]
    for platform in GPU_PLATFORMS:
        cmd += ["--platform", platform]
    cmd += [f"{name.replace('_', '-')}=={pins[name]}" for name in names]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise PackError(f"pip download failed: {done.stderr.strip().splitlines()[-1:]}", ExitCode.FILE)
    return sorted(out.glob("*.whl"))


def tracked_bytes() -> int:
    """The working tree that travels with every device call (tracked files)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    return sum((ROOT / f.decode()).stat().st_size for f in files if f and (ROOT / f.decode()).is_file())


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def pack(
    config, out: Path, *, bundle: Path | None, manifest: Path | None, rows: int, python: str | None = GPU_PYTHON
) -> dict:
    """Write ``out`` (replacing it only once complete) and return what it holds."""
    from pipelines.models import load_bundle

    if bundle is None:
        predictor, manifest = champion_and_sets(config)
        source = f"{config.registry.model_name}@champion"
    elif manifest is None:
        raise PackError(
            "--bundle needs --manifest (the training sets whose test rows the check scores)", ExitCode.CONFIG
        )
    else:
        predictor, source = load_bundle(bundle, device="cpu"), str(bundle)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        write_half_bundle(predictor, source, staging / "bundle")
        features = list(getattr(predictor, "transformer", predictor).feature_names)  # the half bundle's own
        n = write_frame(Path(manifest), features, rows, staging / "frame.parquet")
        got = download_wheels(staging / "wheels", python=python) if python else []
        total = folder_bytes(staging) + tracked_bytes()
        if total > CARRY_LIMIT_MIB * 2**20:
            raise PackError(
                f"{total / 2**20:.1f} MiB would travel (tracked files + {out.name}/), over the device limit of "
                f"{CARRY_LIMIT_MIB} MiB: lower --rows or drop wheels the GPU image has",
                ExitCode.CONFIG,
            )
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {
        "bundle": source,
        "manifest": str(manifest),
        "rows": n,
        "wheels": [p.name for p in got],
        "mib": round(total / 2**20, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.gpu_pack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=None, help="churn config (default: CHURN_CONFIG or the defaults)")
    parser.add_argument("--bundle", type=Path, default=None, help="a transformer or hybrid bundle (default: champion)")
    parser.add_argument("--manifest", type=Path, default=None, help="training-set manifest whose test rows to carry")
    parser.add_argument("--rows", type=int, default=2000, help="labelled rows for the bf16 check (default 2,000)")
    parser.add_argument("--out", type=Path, default=ROOT / ".gpu", help="output folder (default .gpu, git-ignored)")
    parser.add_argument(
        "--python-version",
        default=GPU_PYTHON,
        help=f"the wheels' Python (default {GPU_PYTHON}, the GPU image's; another to rehearse the run here)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    from pipelines.config import load_config

    try:
        if args.rows < 100:
            raise PackError(f"--rows {args.rows}: the bf16 check needs at least 100 rows", ExitCode.CONFIG)
        held = pack(
            load_config(args.config),
            args.out,
            bundle=args.bundle,
            manifest=args.manifest,
            rows=args.rows,
            python=args.python_version,
        )
    except PackError as exc:
        print(f"gpu_pack: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except OSError as exc:
        print(f"gpu_pack: {exc}", file=sys.stderr)
        return int(ExitCode.FILE)
    logger.info(
        "wrote %s: bundle of %s, %d labelled rows, wheels %s; %.1f MiB travel with the tree",
        args.out,
        held["bundle"],
        held["rows"],
        ", ".join(held["wheels"]) or "none",
        held["mib"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
