"""`batcher sandbox` as a person starts it: a process that says the URL it really bound, and stops on a signal."""

from __future__ import annotations

import fnmatch
import re
import signal
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

from batcher.defaults import DEFAULT_REGISTRATIONS, SANDBOX_TOKEN

ROOT = Path(__file__).resolve().parent.parent.parent


def test_port_0_prints_the_port_it_bound_and_answers_there(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "batcher", "sandbox", "--port", "0"]
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.fullmatch(
            r"sandbox: serving on (http://127\.0\.0\.1:(\d+)/v3) \(token: .*\); Ctrl-C stops it\n", line
        )
        assert found is not None, line
        url, port = found.group(1), int(found.group(2))
        assert port > 0
        request = urllib.request.Request(f"{url}/events/x/tracks/y/registrations/z")
        request.add_header("Authorization", f"Bearer {SANDBOX_TOKEN}")
        try:
            status = urllib.request.urlopen(request, timeout=10).status
        except urllib.error.HTTPError as exc:  # the sandbox's own answer (no such registration)
            status = exc.code
        assert status == 404
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert "no registrations loaded" not in err  # the sample registrations, found from another folder


def test_the_sample_registrations_ship_inside_the_package() -> None:
    package = ROOT / "batcher"
    assert DEFAULT_REGISTRATIONS.is_file()
    shipped = DEFAULT_REGISTRATIONS.relative_to(package / "sandbox")  # not ../sample_inputs: a wheel has that
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "batcher.sandbox"
    ]
    assert any(fnmatch.fnmatch(str(shipped), glob) for glob in globs)
