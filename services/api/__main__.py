"""`python -m api`: migrate, then run the CloudStack API gateway until SIGTERM."""

from __future__ import annotations

from pydantic import ValidationError

from api.bootstrap import NAME, bootstrap
from api.config import ApiSettings
from directdl.runtime.logging import configure_logging
from directdl.runtime.service import run_until_signalled


def main() -> None:
    try:
        settings = ApiSettings()
    except ValidationError as err:  # one line, not a traceback: API_SECRETS_KEY is unset
        problems = "; ".join(
            f"API_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in err.errors()
        )
        raise SystemExit(f"api: {problems}") from err
    configure_logging(NAME, settings.log_level)
    service = bootstrap(settings)
    service.migrate()
    run_until_signalled(service)


if __name__ == "__main__":
    main()
