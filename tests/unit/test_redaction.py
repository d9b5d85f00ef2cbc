"""Redacting URLs in free text: credentials hidden, and in time linear in the text's length."""

from __future__ import annotations

import pytest

from directdl.redaction import redact_urls_in

pytestmark = pytest.mark.unit


def test_user_info_and_query_are_hidden() -> None:
    text = "fetching https://user:pw@h.example.org/t.qcow2?sig=abc failed"
    assert redact_urls_in(text) == "fetching https://***@h.example.org/t.qcow2?*** failed"


def test_a_url_with_a_long_scheme_is_still_redacted() -> None:
    assert redact_urls_in("a" * 100 + "://u:pw@h/t?q").endswith("://***@h/t?***")


# A scheme pattern without a bound took 18 s on 90 kB of letters: about half an hour on this.
@pytest.mark.timeout(10)
def test_a_long_run_of_letters_without_a_url_is_quick() -> None:
    text = "red" * 300_000
    assert redact_urls_in(text) == text
