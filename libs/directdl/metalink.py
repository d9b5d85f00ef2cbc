"""Metalink v4 (RFC 5854) and v3 documents: one file, its size, hashes and HTTP(S) mirrors."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element
from xml.parsers import expat

import structlog
from defusedxml import DefusedXmlException, ElementTree

from directdl.contracts.checksum import ALGORITHMS, find_algorithm

log = structlog.get_logger(__name__)

# The one cap on a metalink document: registration reads no more, nor do the hosts.
MAX_BYTES = 1 << 20
V4 = "urn:ietf:params:xml:ns:metalink"
V3 = "http://www.metalinker.org/"
# RFC 5854 4.2.16.2: priorities run from 1 (first) to 999999; a URL without one comes last.
LOWEST_PRIORITY = 999999
SCHEMES = ("http", "https")

# Strongest first: strongest_hash() walks this order.
_STRONGEST_FIRST = tuple(reversed(ALGORITHMS))
_HEX = re.compile(r"[0-9a-f]+")
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Metalink:
    """What a metalink says about its one file. `mirrors` is in the order to try them."""

    name: str
    size: int | None
    hashes: dict[str, str]
    mirrors: list[str]

    def strongest_hash(self) -> tuple[str, str] | None:
        """(algorithm, lower hex) of the strongest whole-file hash; piece hashes never count."""
        for algorithm in _STRONGEST_FIRST:
            if algorithm in self.hashes:
                return algorithm, self.hashes[algorithm]
        return None


class MetalinkError(ValueError):
    """The document can't be used: the message says why, and names the metalink."""


class _Bad(Exception):
    """Why the document is refused; turned into BAD_METALINK with the metalink's name."""


def parse_metalink(data: bytes, source: str | None = None) -> Metalink:
    """Parse untrusted metalink bytes; `source` (its URL) names it in errors.

    Raises MetalinkError for anything this project cannot download from.
    """
    try:
        root = _parse_xml(data)
        if root.tag == f"{{{V4}}}metalink":
            return _read(root, _v4_file(root), _v4_hashes, _v4_mirrors)
        if root.tag == f"{{{V3}}}metalink":
            return _read(root, _v3_file(root), _v3_hashes, _v3_mirrors)
        raise _Bad(f"root element {root.tag} is neither metalink v4 nor v3")
    except _Bad as err:
        raise MetalinkError(f"{err}, in metalink {source or '(unnamed)'}") from err


def _parse_xml(data: bytes) -> Element:
    """defusedxml with DTDs forbidden: a DOCTYPE, in any encoding, aborts the parse, so no
    entity (a billion laughs, an external file) is ever defined."""
    if len(data) > MAX_BYTES:
        raise _Bad(f"document of {len(data)} bytes is larger than {MAX_BYTES}")
    try:
        return ElementTree.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as err:
        raise _Bad("DOCTYPE and ENTITY declarations are not allowed") from err
    except ElementTree.ParseError as err:
        why = f"not well-formed XML ({expat.ErrorString(err.code)} at line {err.position[0]})"
        raise _Bad(why) from err


def _read(
    root: Element,
    file: Element,
    hashes_of: Callable[[Element, str], list[tuple[str, str]]],
    mirrors_of: Callable[[Element, str], list[str]],
) -> Metalink:
    name = (file.get("name") or "").strip()
    if not name:
        raise _Bad("<file> has no name")
    if name.startswith("/") or ".." in name.split("/"):
        raise _Bad(f"file name {name!r} is absolute or climbs out with '..'")
    ns = root.tag[: root.tag.index("}") + 1]
    hashes: dict[str, str] = {}
    for kind, value in hashes_of(file, ns):
        _add_hash(hashes, kind, value)
    mirrors = _keep_http(mirrors_of(file, ns))
    if not mirrors:
        raise _Bad(f"no http or https mirror for {name}")
    return Metalink(name=name, size=_size(file, ns), hashes=hashes, mirrors=mirrors)


def _v4_file(root: Element) -> Element:
    return _one_file(root.findall(f"{{{V4}}}file"))


def _v3_file(root: Element) -> Element:
    return _one_file(root.findall(f"{{{V3}}}files/{{{V3}}}file"))


def _one_file(files: list[Element]) -> Element:
    if len(files) != 1:
        raise _Bad(f"{len(files)} <file> elements where exactly one is supported")
    return files[0]


def _v4_hashes(file: Element, ns: str) -> list[tuple[str, str]]:
    # Only direct children: <pieces><hash> are per-piece hashes, not the file's.
    return [(h.get("type", ""), h.text or "") for h in file.findall(f"{ns}hash")]


def _v3_hashes(file: Element, ns: str) -> list[tuple[str, str]]:
    return [(h.get("type", ""), h.text or "") for h in file.findall(f"{ns}verification/{ns}hash")]


def _v4_mirrors(file: Element, ns: str) -> list[str]:
    ranked = [(_rank(u, "priority", LOWEST_PRIORITY, 1), u) for u in file.findall(f"{ns}url")]
    # sorted() is stable: equal priorities keep the document's order.
    return [(u.text or "").strip() for _, u in sorted(ranked, key=lambda pair: pair[0])]


def _v3_mirrors(file: Element, ns: str) -> list[str]:
    ranked = []
    for url in file.findall(f"{ns}resources/{ns}url"):
        kind = url.get("type", "").strip().lower()
        text = (url.text or "").strip()
        if kind and kind not in SCHEMES:
            log.debug("metalink.mirror_dropped", url=text, type=kind)
            continue
        # Higher preference first: negate it so one ascending, stable sort does for both.
        ranked.append((-_rank(url, "preference", 0, 0), text))
    return [text for _, text in sorted(ranked, key=lambda pair: pair[0])]


def _rank(url: Element, attribute: str, default: int, lowest: int) -> int:
    raw = url.get(attribute)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        value = -1
    if not lowest <= value <= LOWEST_PRIORITY:
        raise _Bad(f"url {attribute} {raw!r} is not a number from {lowest} to {LOWEST_PRIORITY}")
    return value


def _keep_http(urls: list[str]) -> list[str]:
    kept = []
    for url in urls:
        if urlsplit(url).scheme.lower() in SCHEMES and urlsplit(url).hostname:
            kept.append(url)
        else:
            log.debug("metalink.mirror_dropped", url=url, reason="only http and https are fetched")
    return kept


def _add_hash(hashes: dict[str, str], kind: str, value: str) -> None:
    # v4 uses the IANA textual names (sha-256), v3 the bare ones (sha256).
    algorithm = find_algorithm(kind.strip())
    if algorithm is None:
        return  # an algorithm we do not check (sha3-256, ...): others may still be there
    digest = value.strip().lower()
    if len(digest) != algorithm.hex_digits or not _HEX.fullmatch(digest):
        why = f"is not {algorithm.hex_digits} hex digits"
        raise _Bad(f"{algorithm.name} hash {value.strip()!r} {why}")
    if hashes.setdefault(algorithm.name, digest) != digest:
        raise _Bad(f"two different {algorithm.name} hashes")


def _size(file: Element, ns: str) -> int | None:
    element = file.find(f"{ns}size")
    if element is None:
        return None
    text = (element.text or "").strip()
    if not _DIGITS.fullmatch(text):
        raise _Bad(f"size {text!r} is not a number of bytes")
    return int(text)
