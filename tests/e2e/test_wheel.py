"""The wheel runs anywhere: built from this checkout, installed in a fresh venv with the
constraints, and used from a folder outside the checkout (shipped schemas and mapping tables
found as package data), it validates the official examples, writes a starter deployment with
``gateway init`` that passes ``check-config``, and runs it until SIGTERM.

Needs the package index (pip installs the dependencies into the new venv), as the set-up does.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.paths import EXAMPLES_DIR, REPO

# Every command here has a deadline: a hung install or daemon fails the test, never the run.
INSTALL_SECONDS = 300
COMMAND_SECONDS = 60


def _run(
    *args: str | Path, cwd: Path, timeout: float = COMMAND_SECONDS
) -> subprocess.CompletedProcess[str]:
    # No GATEWAY_* or PYTHONPATH from the test run: the venv must stand on its own.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_") and k != "PYTHONPATH"
    }
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ folder of a fresh venv with the wheel of this checkout installed."""
    root = tmp_path_factory.mktemp("wheel")
    wheels = root / "dist"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", wheels, REPO]
    _ok(_run(*build, cwd=root, timeout=INSTALL_SECONDS))
    (wheel,) = wheels.glob("*.whl")
    # Pure Python by default: one wheel for every platform.
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
    venv = root / "venv"
    _ok(_run(sys.executable, "-m", "venv", venv, cwd=root))
    constraints = REPO / "constraints.txt"
    install = [venv / "bin" / "python", "-m", "pip", "install", "--quiet", "-c", constraints]
    _ok(_run(*install, wheel, cwd=root, timeout=INSTALL_SECONDS))
    return venv / "bin"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A working folder outside the checkout."""
    assert not tmp_path.is_relative_to(REPO)
    return tmp_path


def test_the_installed_gateway_uses_its_packaged_data(installed: Path, outside: Path) -> None:
    script = (
        "import gateway.shipped as s, gateway.core.document as d\n"
        "print(*s.SHIPPED_SCHEMAS, sep='\\n'); print(s.SHIPPED_MAPPINGS); print(d.C_INDEX_STATUS)\n"
    )
    output = _ok(_run(installed / "python", "-c", script, cwd=outside))
    schemas, schemas_2_3, mappings, c_index = (Path(line) for line in output.splitlines())
    packaged = schemas.parents[1]
    assert packaged.name == "_shipped" and not packaged.is_relative_to(REPO), schemas
    assert (schemas / "jw301.xsd").is_file()
    assert schemas_2_3 == packaged / "schemas" / "ijw-2.3" and (schemas_2_3 / "jw303.xsd").is_file()
    assert mappings == packaged / "mappings" and (mappings / "generations.toml").is_file()
    assert str(c_index).startswith("pure Python: the C extension is not built")


def test_validate_the_official_examples_outside_the_checkout(
    installed: Path, outside: Path
) -> None:
    """The same verdicts as the checkout gives (the official JW318 example has an XSD error)."""
    examples = outside / "examples"
    shutil.copytree(EXAMPLES_DIR, examples)
    from_wheel = _run(installed / "gateway", "validate", "examples", cwd=outside)
    # The dev venv's gateway: this checkout, with its top-level schemas/.
    from_checkout = _run(sys.executable, "-m", "gateway", "validate", "examples", cwd=outside)
    assert (from_wheel.returncode, from_wheel.stdout) == (
        from_checkout.returncode,
        from_checkout.stdout,
    )
    count = len(list(examples.glob("*.xml")))
    assert count > 10 and f"{count} file(s) checked" in from_wheel.stdout
    assert sum(line.startswith("ok ") for line in from_wheel.stdout.splitlines()) >= count - 1


def test_init_check_config_and_run_a_fresh_deployment(installed: Path, outside: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    printed = _ok(_run(installed / "gateway", "init", "deploy", "--port", str(port), cwd=outside))
    config = outside / "deploy" / "config.toml"
    tokens = [line.split()[-1] for line in printed.splitlines() if line.startswith("  ")]
    assert len(tokens) == 3
    text = config.read_text(encoding="utf-8")
    assert not any(token in text for token in tokens), "a token was stored in the clear"

    summary = _ok(_run(installed / "gateway", "check-config", "--config", config, cwd=outside))
    assert "configuration is valid" in summary and "parties  3" in summary
    assert str(REPO) not in summary  # schemas from the package, not from this checkout

    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    daemon = subprocess.Popen(
        [installed / "gateway", "run", "--config", "deploy/config.toml"],
        cwd=outside,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + COMMAND_SECONDS
        while True:
            assert daemon.poll() is None, daemon.communicate(timeout=5)[1].decode()
            assert time.monotonic() < deadline, "gateway did not become ready"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.1)  # waiting for another process to start, not for a timer of ours
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=COMMAND_SECONDS)
        assert daemon.returncode == 0, stderr.decode()
        assert b"gateway_stopped" in stderr
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=10)
