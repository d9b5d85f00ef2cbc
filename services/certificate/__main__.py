"""`python -m certificate`: migrate, then run the certificate service until SIGTERM."""

from __future__ import annotations

from certificate.bootstrap import NAME, bootstrap
from certificate.config import CertificateSettings
from directdl.runtime.logging import configure_logging
from directdl.runtime.service import run_until_signalled


def main() -> None:
    settings = CertificateSettings()
    configure_logging(NAME, settings.log_level)
    service = bootstrap(settings)
    service.migrate()
    run_until_signalled(service)


if __name__ == "__main__":
    main()
