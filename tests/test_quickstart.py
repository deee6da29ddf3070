"""docs/quickstart.md, run as written: every ```sh block of the page, in order.

The page has three terminals: the service (``webhooks serve --dev``), the
receiver (``webhooks listen``) and a shell for the curl commands, whose
variables (``$KEY``, ``$EP``, ``$MSG``, ``$DLV``) carry from one block to the
next. The service and the receiver run as processes; the other blocks go to
one bash session, which stops at the first failing command (``set -e`` and
``pipefail``), failing the test.

What a reader copies by hand is substituted mechanically: ``whk_…`` by the
key of the service's banner, ``whsec_…`` by the last secret the shell
printed, and the ports 8000 and 9000 by free ones. The steps the page gives
in prose (stop the receiver, start it again) are done here between blocks.

The block marked ``<!-- not run by tests/test_quickstart.py … -->`` installs
the package into a new virtualenv: that needs the network and minutes, and
the package under test is installed already. The commands run from this
interpreter's ``bin`` directory, where that install put ``webhooks``.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.processes import free_port, read_banner
from tests.helpers.waiting import wait_for_value

PAGE = Path(__file__).parents[1] / "docs" / "quickstart.md"
README = Path(__file__).parents[1] / "README.md"
SKIP_MARK = "<!-- not run by tests/test_quickstart.py"
BIN = Path(sys.executable).parent

# Shows each request's status (on stderr) and makes an HTTP error fail the
# command, so that `set -e` stops the session on it.
CURL_WATCH = """
set -e -o pipefail
curl() { command curl --fail-with-body -w '%{stderr}\\ncurl-status %{http_code}\\n' "$@"; }
"""


def shell_blocks(markdown: str, *, all_of_them: bool = False) -> list[str]:
    """The page's ```sh blocks in order, except those marked not to run
    (unless ``all_of_them``)."""
    blocks: list[str] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        if lines[index] != "```sh":
            index += 1
            continue
        end = lines.index("```", index + 1)
        if all_of_them or not lines[index - 1].startswith(SKIP_MARK):
            blocks.append("\n".join(lines[index + 1 : end]))
        index = end + 1
    return blocks


class Terminal:
    """One bash session, fed a block at a time, as a reader pastes them."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.transcript = ""
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._proc = subprocess.Popen(
            ["bash", "--norc", "--noprofile"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.run(CURL_WATCH)

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def run(self, block: str) -> tuple[str, list[int]]:
        """Run ``block``; its output and the HTTP statuses of its curl calls."""
        script = self.cwd / f"block-{uuid.uuid4().hex}.sh"
        script.write_text(block + "\n")
        done = f"block-done-{uuid.uuid4().hex}"
        assert self._proc.stdin is not None
        self._proc.stdin.write(f"source {script}\necho {done}\n")
        self._proc.stdin.flush()
        output: list[str] = []
        while (line := self._lines.get(timeout=120)) != f"{done}\n":
            if line is None:
                raise AssertionError(
                    f"this block failed:\n{block}\n--- its output:\n{''.join(output)}"
                )
            output.append(line)
        text = "".join(output)
        self.transcript += text
        return text, [int(code) for code in re.findall(r"^curl-status (\d+)$", text, re.M)]

    def value(self, name: str) -> str:
        """The value of a shell variable."""
        return self.run(f'echo "${name}"')[0].strip()

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait(30)


class Program:
    """A block that runs until stopped (the service, the receiver), in its
    own process group, as in a terminal of its own."""

    def __init__(self, block: str, cwd: Path, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self._log = (cwd / f"stderr-{uuid.uuid4().hex}.txt").open("w")
        self.proc = subprocess.Popen(
            ["bash", "-c", block],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            start_new_session=True,
        )

    def follow(self) -> None:
        """Collect what it prints from now on, in a thread."""

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))

        threading.Thread(target=read, daemon=True).start()

    def wait_for_lines(self, text: str, count: int = 1) -> None:
        """Until ``count`` printed lines contain ``text``."""
        wait_for_value(
            lambda: sum(text in line for line in self.lines),
            lambda seen: seen >= count,
        )

    def stop(self) -> None:
        """Ctrl-C, and wait for it to end."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


@pytest.fixture
def walk(tmp_path: Path) -> Iterator[Walk]:
    walk = Walk(tmp_path)
    yield walk
    walk.close()


class Walk:
    """The reader's three terminals, in an empty directory."""

    def __init__(self, directory: Path) -> None:
        assert (BIN / "webhooks").exists(), f"install the package first: no {BIN / 'webhooks'}"
        self.directory = directory
        self.api_port, self.receiver_port = free_port(), free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKS_")}
        self.env["PATH"] = f"{BIN}{os.pathsep}{self.env.get('PATH', '')}"
        self.key = ""
        self.programs: list[Program] = []
        self.shell = Terminal(directory, self.env)

    def substitute(self, block: str) -> str:
        """The block as the reader would paste it, with their key, secret and ports."""
        secrets = re.findall(r'"secret": "(whsec_[^"]+)"', self.shell.transcript)
        block = block.replace("whk_…", self.key)
        if secrets:
            block = block.replace("whsec_…", secrets[-1])
        block = re.sub(r"\b8000\b", str(self.api_port), block)
        return re.sub(r"\b9000\b", str(self.receiver_port), block)

    def start(self, block: str) -> Program:
        program = Program(self.substitute(block), self.directory, self.env)
        self.programs.append(program)
        return program

    def listen(self, block: str) -> Program:
        receiver = self.start(block)
        assert receiver.proc.stdout is not None
        first = receiver.proc.stdout.readline()
        assert first.startswith(f"Listening on http://127.0.0.1:{self.receiver_port}"), first
        receiver.follow()
        return receiver

    def run(self, block: str) -> tuple[str, list[int]]:
        return self.shell.run(self.substitute(block))

    def api(self, path: str) -> Any:
        """What the API says now, read by the test itself."""
        answer = httpx.get(
            f"http://127.0.0.1:{self.api_port}/v1{path}",
            headers={"Authorization": f"Bearer {self.key}"},
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    def close(self) -> None:
        for program in self.programs:
            program.stop()
        self.shell.close()


def test_the_readme_installs_and_starts_the_service_as_the_quick_start_does() -> None:
    # The quick start goes on from the README's first command.
    install, serve = shell_blocks(PAGE.read_text(), all_of_them=True)[:2]
    assert shell_blocks(README.read_text())[0] == f"{install} && {serve}"


@pytest.mark.slow
def test_every_shell_block_of_the_quick_start_works_as_written(walk: Walk) -> None:
    (
        serve,
        setup,
        register,
        listen,
        send,
        log,
        send_again,
        waiting,
        retry,
        rotate,
        listen_with_new_secret,
        test_send,
    ) = shell_blocks(PAGE.read_text())

    # The service, in the first terminal, on a port of its own.
    assert serve == "webhooks serve --dev"
    service = walk.start(f"{serve} --port {walk.api_port}")
    assert service.proc.stdout is not None
    banner = read_banner(service.proc.stdout)
    assert "DEVELOPMENT MODE (--dev)" in banner[0]
    walk.key = re.findall(r"whk_\S+", banner[-1])[0]

    # The second terminal: key, API, helpers; then the endpoint.
    assert walk.run(setup)[1] == []
    assert walk.run(register)[1] == [201]
    endpoint = walk.shell.value("EP")
    assert endpoint.startswith("ep_")

    # The receiver, in the third terminal, with the secret of the answer.
    receiver = walk.listen(listen)

    # Send: delivered, verified, and the log says so.
    assert walk.run(send)[1] == [202]
    receiver.wait_for_lines("  signature: valid")
    message = walk.shell.value("MSG")
    wait_for_value(
        lambda: walk.api(f"/deliveries?message_id={message}")["data"][0]["status"],
        lambda status: status == "succeeded",
    )
    output, statuses = walk.run(log)
    assert statuses == [200, 200]
    assert '"status": "succeeded"' in output and '"status_code": 200' in output

    # A failure: the receiver stopped, the attempt fails; once the delivery
    # has failed twice (the second attempt comes 5 s after the first) its
    # next one is minutes away, so the retry below is what delivers it.
    receiver.stop()
    assert receiver.proc.returncode == 0  # Ctrl-C is its normal end
    assert walk.run(send_again)[1] == [202, 200]
    delivery = walk.shell.value("DLV")
    attempts = wait_for_value(
        lambda: walk.api(f"/deliveries/{delivery}/attempts")["data"],
        lambda rows: len(rows) == 2,
    )
    assert all(row["error"].startswith("connection_error") for row in attempts)
    output, statuses = walk.run(waiting)
    assert statuses == [200, 200]
    assert delivery in output and '"error": "connection_error' in output

    receiver = walk.listen(listen)
    output, statuses = walk.run(retry)
    assert statuses == [202]
    receiver.wait_for_lines("  signature: valid")
    wait_for_value(
        lambda: walk.api(f"/deliveries/{delivery}")["status"],
        lambda status: status == "succeeded",
    )
    last = max(walk.api(f"/deliveries/{delivery}/attempts")["data"], key=lambda a: a["number"])
    assert last["trigger"] == "manual" and last["response"]["status_code"] == 200

    # Rotate; the receiver, restarted with the new secret, verifies the test send.
    old_secret = re.findall(r'"secret": "(whsec_[^"]+)"', walk.shell.transcript)[-1]
    assert walk.run(rotate)[1] == [200]
    assert walk.substitute("whsec_…") != old_secret
    receiver.stop()
    receiver = walk.listen(listen_with_new_secret)
    output, statuses = walk.run(test_send)
    assert statuses == [200]
    assert '"succeeded": true' in output
    receiver.wait_for_lines("  signature: valid")

    # What the last section points at answers.
    for page in ("/ui/login", "/docs"):
        assert httpx.get(f"http://127.0.0.1:{walk.api_port}{page}").status_code == 200
