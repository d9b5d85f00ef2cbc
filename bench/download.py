"""Download throughput: curl | openssl dgst, sha256sum, aria2c and the agent, one table."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from directdl.contracts.download import DownloadTemplate
from directdl.contracts.template import SourceProtocol, TemplateFormat
from directdl_testing.nginx import Nginx
from host_agent.transfer import PoolTransfer

MIB = 1 << 20
TARGET = 0.9  # the agent must reach this share of the single-pass limit
NAME = "template.raw"
TOOLS = {
    "curl": "apt-get install curl",
    "aria2c": "apt-get install aria2",
    "sha256sum": "coreutils",
    "openssl": "apt-get install openssl",
}

# A method downloads `url` into the empty directory `out` and raises unless the bytes hash to
# `expected`; only this call is timed.
Method = Callable[[str, Path, str], None]


def _shell(script: str, url: str, out: Path, expected: str) -> None:
    """Run `script` in bash with $1 = url, $2 = out; its last line must start with the digest."""
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", script, "bench", url, str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = done.stdout.split()
    if done.returncode != 0 or not lines or lines[0] != expected:
        raise RuntimeError(f"{script!r} failed ({done.returncode}): {done.stdout}{done.stderr}")


def curl_openssl(url: str, out: Path, expected: str) -> None:
    # -r: "digest *stdin" rather than "SHA2-256(stdin)= digest", so the digest comes first.
    _shell('curl -sS --fail "$1" | openssl dgst -sha256 -r', url, out, expected)


def curl_pipe(url: str, out: Path, expected: str) -> None:
    _shell('curl -sS --fail "$1" | sha256sum', url, out, expected)


def curl_tee(url: str, out: Path, expected: str) -> None:
    _shell('curl -sS --fail "$1" | tee "$2/f" | sha256sum', url, out, expected)


def curl_two_pass(url: str, out: Path, expected: str) -> None:
    _shell('curl -sS --fail -o "$2/f" "$1" && sha256sum "$2/f"', url, out, expected)


def aria2c(*options: str) -> Method:
    def run(url: str, out: Path, expected: str) -> None:
        command = ["aria2c", "-q", "--no-conf", "--summary-interval=0", "-d", str(out), "-o", "f"]
        command += [f"--checksum=sha-256={expected}", *options, url]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:  # 32: checksum error
            raise RuntimeError(f"aria2c exited {done.returncode}: {done.stdout}{done.stderr}")

    return run


def directdl(url: str, out: Path, expected: str) -> None:
    """The agent's whole transfer (fetch, hash, inspect, fsync, rename), minus the bus."""
    cmd = DownloadTemplate(
        job_id=str(uuid.uuid4()),
        deploy_id=str(uuid.uuid4()),
        template_id=str(uuid.uuid4()),
        url=url,
        protocol=SourceProtocol.HTTP,
        format=TemplateFormat.RAW,
        checksum="{SHA-256}" + expected,
    )
    PoolTransfer(out)(cmd, progress=lambda done, total: None, cancelled=lambda: False)


LIMIT = "curl | openssl dgst -sha256"
METHODS: dict[str, Method] = {
    LIMIT: curl_openssl,
    "curl | sha256sum": curl_pipe,
    "curl | tee file | sha256sum": curl_tee,
    "curl -o file && sha256sum file": curl_two_pass,
    "aria2c -x1 -s1 --file-allocation=none": aria2c("-x1", "-s1", "--file-allocation=none"),
    "aria2c (defaults)": aria2c(),
    "directdl PoolTransfer": directdl,
}
NOTES = (
    "curl | openssl dgst -sha256 writes nothing and hashes as hashlib does (OpenSSL, SHA",
    "  instructions where the CPU has them): the single-pass limit every row is held to.",
    "curl | sha256sum is held back by coreutils' software SHA-256: not the limit.",
    "curl | tee adds only the write (page cache, no fsync): the cost of landing the file.",
    "curl -o && sha256sum reads its second pass from the page cache (it cannot be dropped",
    "  here); on a real pool with a cold cache CloudStack's two-pass way is slower than shown.",
    "aria2c hashes for --checksum in a second pass after the download (also from the cache);",
    "  its defaults are -x1 -s5 --file-allocation=prealloc.",
    "directdl also fsyncs the file and the directory before its atomic rename; no other row does.",
    "Each run starts after os.sync() and a --settle pause, so all meet the same memory state:",
    "  in a VM with free page reporting, page cache freed by the last run goes back to the host",
    "  and refilling it costs several times more than reusing warm pages.",
)


def make_source(path: Path, size: int) -> str:
    """Write `size` incompressible bytes without holding them in memory; return their sha256."""
    base, digest = os.urandom(MIB), hashlib.sha256()
    with path.open("wb") as file:
        for index in range(-(-size // MIB)):
            turn = (index * 7919) % MIB  # each MiB a different rotation, stamped with its index
            block = index.to_bytes(8, "little") + (base[turn:] + base[:turn])[8:]
            block = block[: size - file.tell()]
            digest.update(block)
            file.write(block)
        file.flush()
        os.fsync(file.fileno())  # so no writeback of the source competes with the runs
    path.chmod(0o644)
    return digest.hexdigest()


def measure(
    methods: dict[str, Method], url: str, expected: str, runs: int, where: str | None, settle: float
) -> dict[str, list[float]]:
    """Seconds per method and run; methods take turns so drift hits them all alike."""
    times: dict[str, list[float]] = {name: [] for name in methods}
    for run in range(1, runs + 1):
        for name, method in methods.items():
            out = Path(tempfile.mkdtemp(prefix="directdl-bench-", dir=where))
            try:
                os.sync()  # start every run with no dirty pages from the previous one
                # and the same memory state: a VM hands freed page cache back to its host (free
                # page reporting, after ~2 s); refaulting it made writes here up to 10x slower.
                time.sleep(settle)
                start = time.perf_counter()
                method(url, out, expected)
                times[name].append(time.perf_counter() - start)
            finally:
                shutil.rmtree(out, ignore_errors=True)
            print(f"  run {run}/{runs} {name:<40} {times[name][-1]:6.2f} s", file=sys.stderr)
    return times


def report(times: dict[str, list[float]], size: int, runs: int) -> float:
    """Print the table; return the agent's ratio to the limit."""
    mib = size / MIB
    rate = {name: mib / statistics.median(t) for name, t in times.items()}
    print(f"\nfile: {mib:g} MiB ({size} bytes) over loopback from nginx; median of {runs} runs")
    print(f"{'method':<40} {'median s':>9} {'MiB/s':>8} {'min-max MiB/s':>15} {'vs limit':>9}")
    for name, seconds in times.items():
        spread = f"{mib / max(seconds):.0f}-{mib / min(seconds):.0f}"
        print(
            f"{name:<40} {statistics.median(seconds):>9.2f} {rate[name]:>8.0f} "
            f"{spread:>15} {rate[name] / rate[LIMIT]:>8.2f}x"
        )
    print("\nnotes:")
    for line in NOTES:
        print(f"  {line}")
    ratio = rate["directdl PoolTransfer"] / rate[LIMIT]
    verdict = "met" if ratio >= TARGET else "NOT met"
    print(f"\ntarget: directdl >= {TARGET:.2f}x of {LIMIT}: {verdict} ({ratio:.2f}x)")
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs per method (default 3)")
    parser.add_argument("--size-mib", type=int, default=1024, help="file size (default 1024)")
    parser.add_argument("--dir", help="where downloads land (default: tempfile's directory)")
    parser.add_argument("--settle", type=float, default=5.0, help="pause before each run, s")
    parser.add_argument("--strict", action="store_true", help="exit 1 if the target is missed")
    args = parser.parse_args(argv)
    missing = [f"{tool} ({fix})" for tool, fix in TOOLS.items() if shutil.which(tool) is None]
    if missing:
        parser.error("missing: " + ", ".join(missing))
    size = args.size_mib * MIB
    with Nginx() as nginx:
        nginx.root.mkdir(mode=0o755, parents=True, exist_ok=True)
        source = nginx.root / NAME
        try:
            print(f"writing {args.size_mib} MiB to serve ...", file=sys.stderr)
            expected = make_source(source, size)
            times = measure(
                METHODS, f"{nginx.http_url}/{NAME}", expected, args.runs, args.dir, args.settle
            )
        finally:
            source.unlink(missing_ok=True)
    ratio = report(times, size, args.runs)
    return 1 if args.strict and ratio < TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
