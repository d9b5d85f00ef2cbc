"""`python -m sync_scheduler`: run the sync-scheduler until SIGTERM."""

from __future__ import annotations

from directdl.runtime.logging import configure_logging
from directdl.runtime.service import run_until_signalled
from sync_scheduler.bootstrap import NAME, bootstrap
from sync_scheduler.config import SchedulerSettings


def main() -> None:
    settings = SchedulerSettings()
    configure_logging(NAME, settings.log_level)
    run_until_signalled(bootstrap(settings))


if __name__ == "__main__":
    main()
