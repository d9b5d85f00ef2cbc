"""`python -m api`: migrate, then run the CloudStack API gateway until SIGTERM."""

from __future__ import annotations

from api.bootstrap import NAME, bootstrap
from api.config import ApiSettings
from directdl.runtime.logging import configure_logging
from directdl.runtime.service import run_until_signalled


def main() -> None:
    settings = ApiSettings()
    configure_logging(NAME, settings.log_level)
    service = bootstrap(settings)
    service.migrate()
    run_until_signalled(service)


if __name__ == "__main__":
    main()
