"""One full sync run over many Up hosts on a SQLite file: plan, requests into the outbox, commit."""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete

from directdl.bus.processing import Processor
from directdl.runtime.db import make_engine, session_factory
from directdl.runtime.logging import configure_logging
from directdl.runtime.migrate import upgrade
from sync_scheduler.adapters.orm import CertificateRow, HostRow, RunRow, ZoneRow, store
from sync_scheduler.bootstrap import MIGRATIONS
from sync_scheduler.domain.plan import digest, plan
from sync_scheduler.runs import run
from sync_scheduler.uow import SchedulerUnitOfWork

ZONES = 10
# Long enough that every host stays Up for the whole benchmark.
HEARTBEAT_SECONDS = 3600.0


def fingerprint(name: str) -> str:
    return hashlib.sha256(name.encode()).digest().hex(":").upper()


def fill(url: str, hosts: int, certificates: int, missing: int) -> None:
    """Zones, their certificates, and Up hosts holding them all but `missing` hosts lacking one."""
    entries = {
        f"zone-{z}": [[f"cert-{i}", fingerprint(f"zone-{z}/{i}")] for i in range(certificates)]
        for z in range(ZONES)
    }
    now = datetime.now(UTC)
    host_rows = []
    for h in range(hosts):
        zone = f"zone-{h % ZONES}"
        trusted = entries[zone][1:] if h < missing else entries[zone]
        host_rows.append(
            {
                "host_id": f"host-{h:06d}",
                "zone_id": zone,
                "state": "Up",
                "interval_seconds": HEARTBEAT_SECONDS,
                "last_seen": now,
                "trusted": trusted,
                "trusted_digest": digest((a, f) for a, f in trusted),
            }
        )
    cert_rows = [
        {"id": f"{zone}/{alias}", "zone_id": zone, "alias": alias}
        | {"fingerprint_sha256": fp, "revoked": False}
        for zone, pairs in entries.items()
        for alias, fp in pairs
    ]
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            ZoneRow.__table__.insert(), [{"zone_id": z, "enabled": True} for z in entries]
        )
        connection.execute(CertificateRow.__table__.insert(), cert_rows)
        connection.execute(HostRow.__table__.insert(), host_rows)
    engine.dispose()


def measure(
    directory: Path, hosts: int, certificates: int, missing: int, runs: int
) -> dict[str, float]:
    url = f"sqlite:///{directory / f'sync-{certificates}.db'}"
    upgrade(MIGRATIONS, url)
    fill(url, hosts, certificates, missing)
    engine = make_engine(url)
    sessions = session_factory(engine)
    processor = Processor({}, lambda: SchedulerUnitOfWork(sessions), store, "directdl")
    durations, loads, plans = [], [], []
    for _ in range(runs):
        clock = time.perf_counter()
        with SchedulerUnitOfWork(sessions) as uow:
            report = run(uow, "bench")
            processor.flush_outgoing(uow)  # the requests become outbox rows, as in a handler
            uow.commit()
        durations.append(time.perf_counter() - clock)
        with sessions() as session:  # the next run starts from the same state
            session.execute(delete(store.outbox))
            session.execute(delete(RunRow))
            session.commit()
        with SchedulerUnitOfWork(sessions) as uow:
            clock = time.perf_counter()
            up, certs = uow.projections.up_hosts(datetime.now(UTC)), uow.projections.certificates()
            zones = uow.projections.enabled_zones()
            loads.append(time.perf_counter() - clock)
            clock = time.perf_counter()
            decided = plan(up, certs, zones)
            plans.append(time.perf_counter() - clock)
        assert len(decided.provision) == report.pushed == missing, (report, missing)
    engine.dispose()
    return {
        "hosts_checked": report.hosts_checked,
        "pushed": report.pushed,
        "run_ms": statistics.median(durations) * 1000,
        "load_ms": statistics.median(loads) * 1000,
        "plan_ms": statistics.median(plans) * 1000,
        "db_mib": (directory / f"sync-{certificates}.db").stat().st_size / (1 << 20),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--certificates", type=int, default=50, help="per zone")
    parser.add_argument("--missing", type=float, default=0.01, help="share of hosts lacking one")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    configure_logging("bench", "WARNING")  # not one sync.run line per run
    missing = round(args.hosts * args.missing)
    print(f"hosts {args.hosts} in {ZONES} zones, missing one certificate: {missing} hosts")
    print(
        f"{'certificates/zone':>17} {'checked':>8} {'pushed':>7} {'run ms':>8} "
        f"{'load ms':>8} {'plan ms':>8} {'db MiB':>7}"
    )
    results = {}
    with tempfile.TemporaryDirectory(prefix="sync-bench-") as tmp:
        for certificates in (args.certificates, args.certificates * 10):
            print(f"building {certificates} certificates/zone ...", file=sys.stderr)
            r = results[certificates] = measure(
                Path(tmp), args.hosts, certificates, missing, args.runs
            )
            print(
                f"{certificates:>17} {r['hosts_checked']:>8.0f} {r['pushed']:>7.0f} "
                f"{r['run_ms']:>8.1f} {r['load_ms']:>8.1f} {r['plan_ms']:>8.1f} {r['db_mib']:>7.1f}"
            )
    small, large = results[args.certificates], results[args.certificates * 10]
    print(f"\nmedian of {args.runs} runs; run = load + plan (reads differing hosts) + outbox")
    print(
        f"10x the certificates: run {large['run_ms'] / small['run_ms']:.2f}x, "
        f"plan {large['plan_ms'] / small['plan_ms']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
