"""The package builds as a wheel whose console scripts resolve to the programs the repository's script
files run, and whose declared dependency ranges admit the pinned lock (requirements.txt)."""

import configparser
import importlib
import importlib.util
import pathlib
import re
import shutil
import subprocess
import sys
import zipfile

from packaging.requirements import Requirement

ROOT = pathlib.Path(__file__).resolve().parents[2]
#: Console script -> the repository file that runs the same program.
SHELLS = {"tfrobust-train": "trainers/train.py",
          "tfrobust-export": "export/export.py", "tfrobust-compare": "export/compare.py",
          "tfrobust-evaluate": "trainers/evaluate.py", "tfrobust-train-denoiser": "trainers/train_denoiser.py",
          "tfrobust-compare-denoisers": "export/compare_denoisers.py", "tfrobust-serve": "export/serve.py",
          "tfrobust-reproduce": "trainers/reproduce.py"}


def _build_wheel(tmp_path):
    """Builds the wheel from a copy of the sources (the build writes build/ and *.egg-info next to them).

    Calls setuptools' PEP 517 hook directly: what ``pip wheel --no-deps --no-build-isolation`` calls, without
    pip's start-up and index configuration."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    shutil.copytree(ROOT / "tfrobust", source / "tfrobust", ignore=shutil.ignore_patterns("__pycache__"))
    hook = "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))"
    result = subprocess.run([sys.executable, "-c", hook, str(tmp_path / "dist")], cwd=source, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp_path / "dist" / result.stdout.split()[-1]


def _read(archive, suffix):
    (name,) = [n for n in archive.namelist() if n.endswith(suffix)]
    return archive.read(name).decode("utf-8")


def test_wheel_entry_points_resolve_to_the_programs_the_script_files_run(tmp_path):
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        files = set(archive.namelist())
        entry_points = configparser.ConfigParser()
        entry_points.read_string(_read(archive, ".dist-info/entry_points.txt"))
        metadata = _read(archive, ".dist-info/METADATA")
    scripts = dict(entry_points["console_scripts"])
    assert set(scripts) == set(SHELLS)
    for script, target in scripts.items():
        module_name, _, attribute = target.partition(":")
        assert module_name.replace(".", "/") + ".py" in files, f"{script}: {module_name} is not in the wheel"
        entry = getattr(importlib.import_module(module_name), attribute)
        assert callable(entry)
        # The repository's file is a shell over the same entry point (loaded without running it).
        spec = importlib.util.spec_from_file_location(f"shell_{script.replace('-', '_')}", ROOT / SHELLS[script])
        shell = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(shell)
        assert shell.run is entry, f"{SHELLS[script]} does not run {target}"

    # Dependencies: declared as ranges, with the test and bench extras; the pinned lock satisfies them.
    declared = [Requirement(line.split(":", 1)[1].strip()) for line in metadata.splitlines()
                if line.startswith("Requires-Dist:")]
    runtime = {r.name: r for r in declared if r.marker is None}
    assert {"tensorflow", "keras", "numpy", "absl-py"} <= set(runtime)
    assert all(r.specifier and not any(s.operator == "==" for s in r.specifier) for r in runtime.values())
    extras = {r.name: r for r in declared if r.marker is not None}
    assert extras["pytest"].marker.evaluate({"extra": "test"}) and extras["foolbox"].marker.evaluate({"extra": "bench"})
    serving = extras["uvicorn"].marker
    assert serving.evaluate({"extra": "serving"}) and not serving.evaluate({"extra": "test"})
    # The server's packages are the extra's only, and only tfrobust/serving imports them (export.load of URLs
    # and every SavedModel export's warm-up records need the runtime ones: tensorflow-serving-api, grpcio, requests).
    assert {"tensorflow-serving-api", "grpcio", "requests"} <= set(runtime)
    assert not {"uvicorn", "starlette"} & set(runtime)
    server_only = re.compile(r"^\s*(import|from)\s+(uvicorn|starlette)\b", re.M)
    outside = [str(path) for path in (ROOT / "tfrobust").rglob("*.py")
               if path.parent.name != "serving" and server_only.search(path.read_text(encoding="utf-8"))]
    assert not outside, f"only tfrobust/serving may import the `serving` extra's packages: {outside}"
    # Ray is the `distributed` extra's, imported only by tfrobust.evaluation.distributed (lazily, so the
    # core imports without it); its pin in requirements-distributed.txt fits the extra's range.
    assert "ray" not in runtime and extras["ray"].marker.evaluate({"extra": "distributed"})
    ray_import = re.compile(r"^\s*(import|from)\s+ray\b", re.M)
    importers = [path.name for path in (ROOT / "tfrobust").rglob("*.py") if ray_import.search(path.read_text("utf-8"))]
    assert importers == ["distributed.py"], importers
    (ray_pin,) = [Requirement(line) for line in (ROOT / "requirements-distributed.txt").read_text().splitlines()
                  if line.strip() and not line.startswith("#")]
    assert extras["ray"].specifier.contains(next(iter(ray_pin.specifier)).version)
    pins = [Requirement(line.split("#")[0]) for line in (ROOT / "requirements.txt").read_text().splitlines()
            if line.split("#")[0].strip()]
    for pin in pins:
        if pin.name in runtime:
            (version,) = [s.version for s in pin.specifier]
            assert runtime[pin.name].specifier.contains(version), f"{pin} is outside {runtime[pin.name]}"
    assert set(runtime) <= {pin.name for pin in pins}, "a runtime dependency is missing from requirements.txt"
