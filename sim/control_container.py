"""Runs the real SSM documents' shell scripts in bash, as the control container would.

Each script runs in its own subshell per host with `apiclient` answered by that simulated host
over a loopback socket (see control_container.sh). The host's virtual clock advances by the time
each call takes, so a command's duration comes from what it actually did.

Two things keep a 10,000-host fleet affordable without changing what any host sees: the hosts of a
command are split over a few bash processes that run side by side (a script only touches its own
host), and the real jq runs once per distinct invocation: jq 1.6 spends ~15 ms of CPU linking its
builtins at every start, and its output depends only on its arguments and standard input.
"""

from __future__ import annotations

import os
import re
import shlex
import socketserver
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PRELUDE = Path(__file__).with_name("control_container.sh")
# Programs of the simulated container (a workload health command), first on its PATH.
PROGRAMS = Path(__file__).with_name("bin")
PARAMETER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
# Bash processes per command: the scripts spend their time in jq and in the host model, on all cores.
LANES = max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class ScriptResult:
    rc: int
    stdout: str
    stderr: str


# (instance id, argv) -> (rc, stdout, stderr)
CallHandler = Callable[[str, list[str]], tuple[int, str, str]]


class JqRunner:
    """The real jq, run once for each distinct (arguments, standard input) and answered from memory after.
    Only pure programs come here: the prelude's `jq` runs any that could read the clock, the environment
    or a file itself."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, ...], tuple[int, str, str]] = {}
        self._lock = threading.Lock()
        self.runs = 0

    def __call__(self, stdin: str, args: list[str]) -> tuple[int, str, str]:
        key = (stdin, *args)
        with self._lock:
            known = self._answers.get(key)
        if known is not None:
            return known
        answer = self._run(stdin, args)
        with self._lock:
            self._answers[key] = answer
        return answer

    def _run(self, stdin: str, args: list[str]) -> tuple[int, str, str]:
        self.runs += 1
        done = subprocess.run(
            ["jq", *args],
            input=stdin.encode(),
            capture_output=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
            check=False,
        )
        return done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        count = int(self._field())
        host, *argv = [self._field() for _ in range(count)]
        if argv[0] == "jq":
            rc, out, err = self.server.jq(argv[1], argv[2:])  # type: ignore[attr-defined]
        else:
            rc, out, err = self.server.on_call(host, argv)  # type: ignore[attr-defined]
        out_bytes, err_bytes = out.encode(), err.encode()
        self.wfile.write(f"{rc} {len(out_bytes)} {len(err_bytes)}\n".encode() + out_bytes + err_bytes)

    def _field(self) -> str:
        data = bytearray()
        while (byte := self.rfile.read(1)) not in (b"\0", b""):
            data += byte
        return data.decode()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class ControlContainer:
    """A loopback endpoint for the simulated hosts' API and a bash runner for documents."""

    def __init__(self, on_call: CallHandler) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.on_call = on_call  # type: ignore[attr-defined]
        self.jq = JqRunner()
        self._server.jq = self.jq  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def run(self, commands: list[str], parameters: dict[str, str], hosts: list[str]) -> dict[str, ScriptResult]:
        """Run a document's commands on each host; each lane runs its hosts one after another."""
        script = render(commands, parameters)
        with tempfile.TemporaryDirectory(prefix="updraft-sim-") as work:
            folder = Path(work)
            (folder / "script.sh").write_text(script)
            env = {
                "PATH": f"{PROGRAMS}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                "UPDRAFT_SIM_PRELUDE": str(PRELUDE),
                "LC_ALL": "C",
                "W": work,
                "UPDRAFT_SIM_PORT": str(self.port),
            }
            lanes = [list(enumerate(hosts))[lane::LANES] for lane in range(min(LANES, len(hosts)))]
            drivers = []
            for number, lane in enumerate(lanes):
                driver = folder / f"driver-{number}.sh"
                driver.write_text(_driver(lane))
                drivers.append(subprocess.Popen(["bash", "--posix", str(driver)], env=env, stdout=subprocess.PIPE))
            for process in drivers:
                process.communicate()  # returns once the lane's detached jobs closed their stdout too
                if process.returncode:
                    raise subprocess.CalledProcessError(process.returncode, process.args)
            return {host: _result(folder, index) for index, host in enumerate(hosts)}


def _driver(lane: list[tuple[int, str]]) -> str:
    lines = [PRELUDE.read_text(), "exec 9>&1  # detached jobs hold this open until they finish"]
    for index, host in lane:
        lines.append(
            # Exported: programs the script starts answer for the same host.
            f"export UPDRAFT_SIM_HOST={shlex.quote(host)} && "
            f'( . "$W/script.sh" ) >"$W/{index}.out" 2>"$W/{index}.err" </dev/null; echo $? >"$W/{index}.rc"'
        )
    return "\n".join(lines) + "\n"


def _result(folder: Path, index: int) -> ScriptResult:
    return ScriptResult(
        rc=int((folder / f"{index}.rc").read_text().strip() or 1),
        stdout=(folder / f"{index}.out").read_text(errors="replace"),
        stderr=(folder / f"{index}.err").read_text(errors="replace"),
    )


def render(commands: list[str], parameters: dict[str, str]) -> str:
    """Substitute `{{ Name }}` parameters the way SSM does: textually, before the shell sees them."""

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in parameters:
            raise KeyError(f"document parameter {name} has no value")
        return parameters[name]

    return "\n".join(PARAMETER.sub(value, line) for line in commands) + "\n"
