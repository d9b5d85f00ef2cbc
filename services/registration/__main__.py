"""`python -m registration`: migrate, then run the registration service until SIGTERM."""

from __future__ import annotations

from directdl.runtime.logging import configure_logging
from directdl.runtime.service import run_until_signalled
from registration.bootstrap import NAME, bootstrap
from registration.config import RegistrationSettings


def main() -> None:
    settings = RegistrationSettings()
    configure_logging(NAME, settings.log_level)
    service = bootstrap(settings)
    service.migrate()
    run_until_signalled(service)


if __name__ == "__main__":
    main()
