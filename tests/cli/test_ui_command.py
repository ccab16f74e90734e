"""`batcher ui` as a person starts it: one line with the address and its one-time token, the page behind it, and
a clean end on SIGTERM (exit 0)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

ADDRESS = re.compile(r"^batcher ui: open (http://127\.0\.0\.1:(\d+)/\?token=([\w-]{20,}))$")


def test_batcher_ui_prints_its_address_serves_the_page_and_ends_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path)}
    words = [sys.executable, "-m", "batcher", "ui", "--sandbox", "--no-browser", "--state-dir", str(tmp_path / "s")]
    process = subprocess.Popen(words, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        found = ADDRESS.match(line)
        assert found, line
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        with opener.open(found.group(1), timeout=30) as response:  # the token becomes a cookie, then the page
            page = response.read().decode()
            assert response.url == f"http://127.0.0.1:{found.group(2)}/"
        assert "sends to the sandbox at http://127.0.0.1:" in page
        assert found.group(3) not in page
        assert (tmp_path / "s" / "ui").stat().st_mode & 0o777 == 0o700
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Traceback" not in err
