"""Metalink documents for tests: v4 (RFC 5854) and v3, as aria2c and our parser read them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape, quoteattr

# Canonical algorithm names (as in metalink.ALGORITHMS) -> how each version spells them.
_V4_TYPES = {
    "MD5": "md5",
    "SHA-1": "sha-1",
    "SHA-224": "sha-224",
    "SHA-256": "sha-256",
    "SHA-384": "sha-384",
    "SHA-512": "sha-512",
}
_V3_TYPES = {name: v4.replace("-", "") for name, v4 in _V4_TYPES.items()}

# (canonical algorithm, piece length in bytes, one hex digest per piece)
Pieces = tuple[str, int, Sequence[str]]


def write_meta4(
    name: str,
    size: int | None,
    hashes: Mapping[str, str],
    urls_with_priority: Sequence[tuple[str, int | None]],
    *,
    pieces: Pieces | None = None,
) -> bytes:
    """A v4 document for one file; a priority of None leaves the attribute out."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<metalink xmlns="urn:ietf:params:xml:ns:metalink">',
        f"  <file name={quoteattr(name)}>",
    ]
    if size is not None:
        lines.append(f"    <size>{size}</size>")
    for algorithm, digest in hashes.items():
        lines.append(f'    <hash type="{_V4_TYPES[algorithm]}">{digest}</hash>')
    if pieces is not None:
        algorithm, length, digests = pieces
        lines.append(f'    <pieces type="{_V4_TYPES[algorithm]}" length="{length}">')
        lines += [f"      <hash>{digest}</hash>" for digest in digests]
        lines.append("    </pieces>")
    for url, priority in urls_with_priority:
        attribute = "" if priority is None else f' priority="{priority}"'
        lines.append(f"    <url{attribute}>{escape(url)}</url>")
    lines += ["  </file>", "</metalink>", ""]
    return "\n".join(lines).encode()


def write_metalink_v3(
    name: str,
    size: int | None,
    hashes: Mapping[str, str],
    urls_with_preference: Sequence[tuple[str, int | None]],
    *,
    pieces: Pieces | None = None,
) -> bytes:
    """A v3 document for one file; each url's type is its scheme, as v3 wants."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<metalink version="3.0" xmlns="http://www.metalinker.org/">',
        "  <files>",
        f"    <file name={quoteattr(name)}>",
    ]
    if size is not None:
        lines.append(f"      <size>{size}</size>")
    if hashes or pieces is not None:
        lines.append("      <verification>")
        for algorithm, digest in hashes.items():
            lines.append(f'        <hash type="{_V3_TYPES[algorithm]}">{digest}</hash>')
        if pieces is not None:
            algorithm, length, digests = pieces
            lines.append(f'        <pieces type="{_V3_TYPES[algorithm]}" length="{length}">')
            lines += [
                f'          <hash piece="{index}">{digest}</hash>'
                for index, digest in enumerate(digests)
            ]
            lines.append("        </pieces>")
        lines.append("      </verification>")
    lines.append("      <resources>")
    for url, preference in urls_with_preference:
        scheme = url.split(":", 1)[0]
        attribute = "" if preference is None else f' preference="{preference}"'
        lines.append(f'        <url type="{scheme}"{attribute}>{escape(url)}</url>')
    lines += ["      </resources>", "    </file>", "  </files>", "</metalink>", ""]
    return "\n".join(lines).encode()
