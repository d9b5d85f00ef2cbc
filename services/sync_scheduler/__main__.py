"""`python -m sync_scheduler`: migrate, then run the sync-scheduler until SIGTERM."""

from __future__ import annotations

from directdl.runtime.logging import configure_logging
from directdl.runtime.service import run_until_signalled
from sync_scheduler.bootstrap import NAME, bootstrap
from sync_scheduler.config import SchedulerSettings


def main() -> None:
    settings = SchedulerSettings()
    configure_logging(NAME, settings.log_level)
    service = bootstrap(settings)
    service.migrate()
    run_until_signalled(service)


if __name__ == "__main__":
    main()
