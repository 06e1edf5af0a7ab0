"""The console's templates and static files ship in the wheel: built from this repository,
installed into a fresh virtualenv, ``syncd console`` from there serves its pages."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import requests

from .conftest import free_port, wait_until_listening

REPO = Path(__file__).resolve().parents[2]


def test_syncd_console_installed_from_the_wheel_serves_its_pages(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q"]
        + ["-w", str(wheels), str(REPO)],
        check=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("syncd-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # the dependencies come from this environment; syncd itself only from the wheel
    (Path(purelib) / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
        + [str(wheel)],
        check=True,
        timeout=300,
    )
    where = subprocess.run(
        [str(python), "-c", "import syncd.console; print(syncd.console.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout.strip()
    assert where.startswith(purelib), where

    (tmp_path / "photos").mkdir()
    config = tmp_path / "config.toml"
    config.write_text(
        '[ledger]\npath = "./state/ledger.db"\n'
        '[[library]]\nname = "photos"\nroot = "./photos"\ngallery = "same_hq"\n',
        encoding="utf-8",
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    server = subprocess.Popen(
        [str(venv / "bin" / "syncd"), "console", "-c", str(config)]
        + ["--listen", f"127.0.0.1:{port}"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_listening(server, port)
        page = requests.get(f"{url}/", headers={"Accept": "text/html"}, timeout=5)
        assert page.status_code == 200
        assert "<h1>Overview</h1>" in page.text
        assert "photos" in page.text
        for name, kind in (
            ("console.css", "text/css"),
            ("overview.js", "text/javascript"),
            ("search.js", "text/javascript"),
            ("no-preview.svg", "image/svg+xml"),
        ):
            answer = requests.get(f"{url}/static/{name}", timeout=5)
            assert answer.status_code == 200, name
            assert answer.headers["Content-Type"].startswith(kind), name
        search = requests.get(f"{url}/search", headers={"Accept": "text/html"}, timeout=5)
        assert 'id="search-form"' in search.text
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=30)
        finally:
            if server.poll() is None:
                server.kill()
    assert code == 0
