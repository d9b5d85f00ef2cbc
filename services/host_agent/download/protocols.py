"""The one table of the agent's protocols: how each source is opened, and by which fetcher."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from directdl.contracts.template import SourceProtocol, file_name
from host_agent.download.core import DownloadRequest, Fetcher, Opened, Opener, Resume
from host_agent.download.http import HttpFetcher
from host_agent.download.mirrors import open_metalink
from host_agent.download.nfs import NfsFetcher


def direct(new_fetcher: Callable[[Resume], Fetcher]) -> Opener:
    """The Opener of a protocol whose URL is the file itself."""

    def open_file(
        request: DownloadRequest, cancelled: Callable[[], bool], max_attempts: int
    ) -> Opened:
        return Opened(name=file_name(request.url), fetcher=new_fetcher)

    return open_file


def resuming_http(resume: Resume) -> HttpFetcher:
    """Continues a partial file whose validator was stored, and stores each new one."""
    return HttpFetcher(validator=resume.validator, on_validator=resume.remember)


def restarting_nfs(resume: Resume) -> NfsFetcher:
    """nfs-cat cannot start at an offset: a partial file is read again (see nfs.py)."""
    return NfsFetcher()


# A protocol the contract names and this table does not fails the agent at wiring
# (PoolTransfer), not a deploy at download time.
OPENERS: Mapping[SourceProtocol, Opener] = {
    SourceProtocol.HTTP: direct(resuming_http),
    SourceProtocol.HTTPS: direct(resuming_http),
    SourceProtocol.NFS: direct(restarting_nfs),
    SourceProtocol.METALINK: open_metalink,
}


def check_complete(openers: Mapping[SourceProtocol, Opener]) -> None:
    """Raise ValueError naming each protocol of the contract that `openers` cannot open."""
    missing = [protocol.value for protocol in SourceProtocol if protocol not in openers]
    if missing:
        raise ValueError(f"no fetcher for protocol {', '.join(missing)}")
