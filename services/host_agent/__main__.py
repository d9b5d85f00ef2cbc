"""`python -m host_agent`: migrate, hold unfinished jobs, then run one host agent until SIGTERM."""

from __future__ import annotations

from directdl.runtime.logging import configure_logging
from directdl.runtime.service import run_until_signalled
from host_agent.bootstrap import bootstrap, prepare
from host_agent.config import HostAgentSettings


def main() -> None:
    settings = HostAgentSettings()
    configure_logging(settings.service_name, settings.log_level)
    service = bootstrap(settings)
    service.migrate()
    prepare(service, settings)
    run_until_signalled(service)


if __name__ == "__main__":
    main()
