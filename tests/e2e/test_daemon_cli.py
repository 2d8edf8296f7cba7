"""The daemon's command line as a subprocess: check-config, run + SIGTERM, operator commands."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gateway.core import envelope
from gateway.core.route import token_digest
from tests.certificates import client_context, issue, make_ca
from tests.paths import EXAMPLES_DIR, OFFICIAL_XSD_DIR, REPO


def _command() -> list[str]:
    return [sys.executable, "-m", "gateway"]


def _gateway(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return subprocess.run(
        [*_command(), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _config(
    folder: Path,
    port: int = 8480,
    extra: str = "",
    prepare_workers: int = 0,
    diemen: str = "",
) -> Path:
    path = folder / "config.toml"
    path.write_text(
        f"""
[server]
port = {port}
prepare_workers = {prepare_workers}
[paths]
schemas = ["{OFFICIAL_XSD_DIR}"]
[delivery]
interval_seconds = 0.2
inbox_poll_seconds = 0.2
{extra}
[[parties]]
id = "diemen"
role = "gemeente"
identity = "0384"
channel = "folder"
token_sha256 = "{token_digest("token-diemen")}"
{diemen}

[[parties]]
id = "provider-a"
role = "aanbieder"
identity = "42420001"
channel = "mailbox"
token_sha256 = "{token_digest("token-provider-a")}"
""",
        encoding="utf-8",
    )
    return path


def test_check_config_good_and_bad(tmp_path: Path) -> None:
    """check-config: 0 and a summary for the demo and a good file; 2 naming file and key."""
    demo = _gateway("check-config", "--config", str(REPO / "config.toml"), cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert "kompas" in demo.stdout and "not ready until" in demo.stdout

    good = _gateway("check-config", "--config", str(_config(tmp_path)), cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert "diemen" in good.stdout

    bad_path = _config(tmp_path, extra="colour = 'blue'")
    bad = _gateway("check-config", "--config", str(bad_path), cwd=tmp_path)
    assert bad.returncode == 2
    assert str(bad_path) in bad.stderr and "delivery.colour: unknown key" in bad.stderr
    assert "Traceback" not in bad.stderr

    missing = _gateway("check-config", "--config", str(tmp_path / "nope.toml"), cwd=tmp_path)
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_check_config_errors_read_as_the_documentation_shows(tmp_path: Path) -> None:
    """One line naming the file, then one per problem with its key path and reason; no
    pydantic text. A TOML syntax error is printed once, with its line and column."""
    bad_path = _config(tmp_path, extra="colour = 'blue'\nretries = 'many'")
    bad = _gateway("check-config", "--config", str(bad_path), cwd=tmp_path)
    assert bad.returncode == 2
    lines = bad.stderr.splitlines()
    assert lines[0] == f"gateway check-config: {bad_path}: invalid configuration"
    assert "  delivery.colour: unknown key" in lines[1:]
    assert "  delivery.retries: unknown key" in lines[1:]
    assert len(lines) == 3
    assert "pydantic" not in bad.stderr and "validation error" not in bad.stderr

    broken = tmp_path / "broken.toml"
    broken.write_text("[server]\nport = 8480\n[paths\nschemas = []\n", encoding="utf-8")
    done = _gateway("check-config", "--config", str(broken), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"gateway check-config: {broken}:3:7: not valid TOML: "
        "Expected ']' at the end of a table declaration"
    ]


def _request(url: str, data: bytes | None = None, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait_until_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    """Poll /readyz of a freshly started process."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "gateway exited before it was ready"
        try:
            if _request(f"{base}/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)  # waiting for another process to start, not for a timer of ours
    raise AssertionError("gateway did not become ready")


def _start(config: Path, folder: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``gateway run --config config`` in ``folder``, its output in ``folder/gateway.log``."""
    with (folder / "gateway.log").open("wb") as log_file:
        return subprocess.Popen(
            [*_command(), "run", "--config", str(config)],
            cwd=folder,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


def _stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then the exit code (killed when it does not stop within 30 s)."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


@pytest.mark.parametrize("prepare_workers", [0, 1])
def test_run_delivers_and_stops_cleanly_on_sigterm(tmp_path: Path, prepare_workers: int) -> None:
    """gateway run: ready, accepts a message, writes it to the folder outbox, exits 0 on TERM;
    with a prepare worker process too, which stops with the daemon."""
    port = _free_port()
    config = _config(tmp_path, port, prepare_workers=prepare_workers)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    log_path = tmp_path / "gateway.log"
    process = _start(config, tmp_path, env)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_ready(base, process)
        raw = (EXAMPLES_DIR / "JW302.xml").read_bytes()
        status, body = _request(f"{base}/v1/messages", raw, "token-provider-a")
        assert status == 202, body
        message_id = json.loads(body)["id"]
        target = tmp_path / "outbox" / "diemen" / f"{message_id}.xml"
        deadline = time.monotonic() + 20
        while not target.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert target.read_bytes() == raw
        running = _gateway("status", "--check", "--config", str(config), cwd=tmp_path)
        assert running.returncode == 0, running.stderr
        assert f"daemon: answering at {base}" in running.stdout.splitlines()
    finally:
        returncode = _stop(process)
    stderr = log_path.read_text(encoding="utf-8")
    assert returncode == 0, stderr
    assert "gateway_stopped" in stderr
    assert "Traceback" not in stderr
    assert "999900006" not in stderr  # the example's BSN never reaches the log
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    # Start-up objects are frozen out of the collector's reach, in the daemon and its workers
    # (gateway/daemon/memory.py): tens of thousands of them, or the freeze came too early.
    started = [e for e in events if e["event"] == "gateway_started"]
    assert len(started) == 1 and started[0]["frozen_objects"] > 10_000
    worker_starts = [e for e in events if e["event"] == "prepare_worker_started"]
    assert len(worker_starts) == prepare_workers
    assert all(e["frozen_objects"] > 10_000 for e in worker_starts)
    workers = [e["pid"] for e in worker_starts]
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists(), "a prepare worker outlived the daemon"

    shown = _gateway("show", message_id, "--json", "--config", str(config), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["state"] == "delivered"
    assert [e["to"] for e in data["history"]] == ["received", "queued", "sending", "delivered"]
    assert data["header"]["afzender"] == "0384"
    assert "999900006" not in shown.stdout

    stopped = _gateway("status", "--check", "--config", str(config), cwd=tmp_path)
    assert stopped.returncode == 1, stopped.stderr
    assert f"daemon: not answering at {base}" in stopped.stdout.splitlines()
    as_json = _gateway("status", "--json", "--config", str(config), cwd=tmp_path)
    assert as_json.returncode == 0  # without --check a stopped daemon is reported, not an error
    assert json.loads(as_json.stdout)["daemon"] == {"url": base, "answering": False}


def test_operator_commands_hold_release_retry_list(tmp_path: Path) -> None:
    """hold/release persist in the store; outbox list filters; retry refuses a queued message."""
    config = str(_config(tmp_path))
    hold = _gateway("hold", "provider-a", "--config", config, cwd=tmp_path)
    assert hold.returncode == 0, hold.stderr
    listed = _gateway("outbox", "list", "--json", "--config", config, cwd=tmp_path)
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    release = _gateway("release", "provider-a", "--config", config, cwd=tmp_path)
    assert release.returncode == 0 and "released" in release.stdout
    unknown = _gateway("hold", "nobody", "--config", config, cwd=tmp_path)
    assert unknown.returncode == 2 and "no party 'nobody'" in unknown.stderr
    missing = _gateway("retry", "01NOPE", "--config", config, cwd=tmp_path)
    assert missing.returncode == 2 and "no message" in missing.stderr


def test_run_on_a_busy_port_says_so_and_exits_two(tmp_path: Path) -> None:
    """A port already taken gives one clear line naming the address, no traceback, exit 2."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _gateway("run", "--config", str(_config(tmp_path, port)), cwd=tmp_path)
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_node_with_another_pseudonym_key_is_refused_and_the_same_key_starts(
    tmp_path: Path,
) -> None:
    """A second node on the first node's store with a key file of its own: `gateway run` and
    the operator commands refuse it (exit 2, naming its key file, never a key); a node given
    the first node's key (here through the environment) starts."""
    first_folder, other_folder, same_folder = (tmp_path / n for n in ("first", "other", "same"))
    for folder in (first_folder, other_folder, same_folder):
        folder.mkdir()
    first = _config(first_folder)
    created = _gateway("status", "--config", str(first), cwd=first_folder)
    assert created.returncode == 0, created.stderr
    first_key = (first_folder / "data" / "pseudonym.key").read_text(encoding="ascii").strip()
    on_first_store = f'[store]\nurl = "sqlite:///{first_folder / "data" / "gateway.db"}"\n'

    port = _free_port()
    other = _config(other_folder, port, extra=on_first_store)
    other_key_file = other_folder / "data" / "pseudonym.key"
    for command in (("run",), ("status",), ("messages", "--bsn", "999900006"), ("hold", "diemen")):
        refused = _gateway(*command, "--config", str(other), cwd=other_folder)
        assert refused.returncode == 2, (command, refused.stdout, refused.stderr)
        assert f"the key file {other_key_file} ([privacy] pseudonym_key_file)" in refused.stderr
        assert "is not the pseudonym key this store's client keys were made with" in (
            refused.stderr
        )
        assert "Traceback" not in refused.stderr
        other_key = other_key_file.read_text(encoding="ascii").strip()
        assert other_key not in refused.stderr and first_key not in refused.stderr

    port = _free_port()
    same = _config(
        same_folder, port, extra=on_first_store + '[privacy]\npseudonym_key_env = "NODE_KEY"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    wrong = subprocess.run(
        [*_command(), "status", "--config", str(same)],
        cwd=same_folder,
        env=env | {"NODE_KEY": other_key},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert wrong.returncode == 2
    assert "the key in $NODE_KEY ([privacy] pseudonym_key_env)" in wrong.stderr
    assert other_key not in wrong.stderr

    log_path = same_folder / "gateway.log"
    process = _start(same, same_folder, env | {"NODE_KEY": first_key})
    try:
        _wait_until_ready(f"http://127.0.0.1:{port}", process)
    finally:
        returncode = _stop(process)
    assert returncode == 0, log_path.read_text(encoding="utf-8")


def _chain_config(folder: Path, port: int, chain_port: int) -> tuple[Path, ssl.SSLContext]:
    """A configuration with the StUF-GGk endpoint on, and a client context Diemen may use."""
    tls = folder / "tls"
    ca = make_ca(tls)
    presented = issue(ca, tls, "gateway", server=True)
    client = issue(ca, tls, "ggk", oin="00000001003214345000")
    extra = (
        f"[chain]\nenabled = true\nport = {chain_port}\n"
        f'certificate = "{presented.certificate}"\nprivate_key = "{presented.key}"\n'
        f'client_ca = "{ca.certificate}"\n'
    )
    config = _config(folder, port, extra, diemen='chain_oins = ["00000001003214345000"]')
    return config, client_context(ca, client)


def test_run_serves_the_chain_endpoint_when_configured_and_stops_it_cleanly(
    tmp_path: Path,
) -> None:
    """gateway run with [chain] enabled: a Di01 over mutual TLS gets a Bv03; TERM exits 0."""
    port, chain_port = _free_port(), _free_port()
    config, context = _chain_config(tmp_path, port, chain_port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    log_path = tmp_path / "gateway.log"
    process = _start(config, tmp_path, env)
    try:
        _wait_until_ready(f"http://127.0.0.1:{port}", process)
        stuurgegevens = envelope.Stuurgegevens(
            envelope.Berichtcode.DI01,
            envelope.Systeem("0384", "Jeugd Applicatie"),
            envelope.Systeem("42420001", envelope.GGK_APPLICATION),
            envelope.new_referentienummer(),
            "20260501110000000",
            functie="JW301",
        )
        payload = (EXAMPLES_DIR / "JW301.xml").read_bytes()
        body = envelope.soap_message(
            envelope.build_envelope(envelope.Envelope(stuurgegevens, payload))
        )
        connection = http.client.HTTPSConnection("127.0.0.1", chain_port, context=context)
        connection.request("POST", "/ggk0210/OntvangAsynchroon", body, {"SOAPAction": ""})
        response = connection.getresponse()
        answer = response.read()
        connection.close()
        assert response.status == 200, answer
        assert b"Bv03Bericht" in answer
        assert stuurgegevens.referentienummer.encode() in answer
    finally:
        returncode = _stop(process)
    log = log_path.read_text(encoding="utf-8")
    assert returncode == 0, log
    assert "chain_endpoint_started" in log
    assert "gateway_stopped" in log
    assert "Traceback" not in log
    assert "999900006" not in log  # the example's BSN never reaches the log


def test_run_on_a_busy_chain_port_says_so_and_exits_two(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        chain_port = taken.getsockname()[1]
        config, _ = _chain_config(tmp_path, _free_port(), chain_port)
        result = _gateway("run", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{chain_port}" in result.stderr
    assert "[chain] port" in result.stderr
    assert "Traceback" not in result.stderr
