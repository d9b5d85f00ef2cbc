"""CloudStack's request signature, as ApiServer.verifyRequest computes and checks it."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping

# The bytes java.net.URLEncoder leaves alone; a space becomes "+", every other byte "%XX".
_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-*_")

# String.equalsIgnoreCase compares char by char through Character.toUpperCase/toLowerCase, so
# four non-ASCII letters equal ASCII ones: long s (U+017F) is "s", the Kelvin sign "k", dotted
# capital I (U+0130) and dotless i (U+0131) "i".
# The control names are ASCII: folding these four, then lower-casing, matches it exactly.
_JAVA_FOLD = str.maketrans({"\u017f": "s", "\u212a": "k", "\u0130": "i", "\u0131": "i"})


def _is(name: str, control_name: str) -> bool:
    return name.translate(_JAVA_FOLD).lower() == control_name


def _java_order(names: Iterable[str]) -> list[str]:
    # Collections.sort compares UTF-16 code units: the order of the UTF-16BE bytes. It differs
    # from Python's code point order only between astral characters and U+E000..U+FFFF.
    return sorted(names, key=lambda n: n.encode("utf-16-be", "surrogatepass"))


def _cloudmonkey_order(names: Iterable[str]) -> list[str]:
    # CloudMonkey 5.3.3 (Python 2) sorts by key.lower() on UTF-8 byte strings: ASCII-only
    # lower-casing, byte order. Ties keep the Java order (Python's sort is stable).
    return sorted(_java_order(names), key=lambda n: n.encode("utf-8", "surrogatepass").lower())


def control(params: Mapping[str, str], name: str) -> str | None:
    """The value of a control parameter (apikey, signature, signatureversion, expires) as
    verifyRequest finds it: names equal ignoring case, the last in sorted order wins."""
    wanted = name.lower()
    found: str | None = None
    for key in _java_order(params):
        if _is(key, wanted):
            found = params[key]
    return found


def java_urlencode(value: str) -> str:
    """`java.net.URLEncoder.encode(value, "UTF-8")`: upper-case hex, a space as "+"."""
    # getBytes replaces a lone surrogate with "?", as errors="replace" does.
    raw = value.encode("utf-8", "replace")
    return "".join(chr(b) if b in _SAFE else "+" if b == 0x20 else f"%{b:02X}" for b in raw)


def _string_to_sign(params: Mapping[str, str], names: list[str], keep_tilde: bool) -> str:
    parts = []
    for name in names:
        if _is(name, "signature"):
            continue
        encoded = java_urlencode(params[name]).replace("+", "%20")
        if keep_tilde:
            encoded = encoded.replace("%7E", "~")
        parts.append(f"{name}={encoded}")
    # verifyRequest lower-cases the whole string, names and encoded values alike.
    return "&".join(parts).lower()


def string_to_sign(
    params: Mapping[str, str], keep_tilde: bool = False, *, cloudmonkey_order: bool = False
) -> str:
    """The string verifyRequest signs: every parameter but `signature`, names as they are,
    values re-encoded by URLEncoder, sorted, joined with "&", lower-cased.

    `keep_tilde` leaves "~" unescaped, as cs (Python's quote) and cmk (Go's QueryEscape) sign;
    `cloudmonkey_order` sorts names by their lower-cased form, as CloudMonkey 5.3.3 does.
    """
    order = _cloudmonkey_order(params) if cloudmonkey_order else _java_order(params)
    return _string_to_sign(params, order, keep_tilde)


def signature(string_to_sign: str, secret: str) -> str:
    """Base64 (standard alphabet, padded) of the HMAC-SHA1 of the string, keyed by the secret."""
    digest = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(digest.digest()).decode("ascii")


def verify(params: Mapping[str, str], secret: str) -> bool:
    """Whether the request's `signature` is the secret's signature of its parameters.

    The Java canonical form is accepted, and so are the forms the clients actually sign: "~"
    kept (cs, cmk; real CloudStack refuses them) and CloudMonkey's case-folded name order. Each
    is an HMAC over the same parameters, so accepting them does not weaken the check.
    """
    given = control(params, "signature")
    if given is None:
        return False
    # compare_digest refuses non-ASCII str: compare bytes, so any client text is just wrong.
    wanted = given.encode("utf-8", "surrogatepass")
    orders = [_java_order(params)]
    if (folded := _cloudmonkey_order(params)) != orders[0]:
        orders.append(folded)
    candidates = {_string_to_sign(params, o, t) for o in orders for t in (False, True)}
    matched = False
    for candidate in candidates:
        # No short cut: every candidate costs the same, whichever one matches.
        computed = signature(candidate, secret).encode("ascii")
        matched |= hmac.compare_digest(computed, wanted)
    return matched
