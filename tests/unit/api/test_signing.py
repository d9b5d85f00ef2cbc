"""CloudStack's request signature: JVM golden vectors and what cs, cmk and CloudMonkey sign."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from urllib.parse import quote, quote_plus

import pytest

from api.cloudstack.signing import control, java_urlencode, signature, string_to_sign, verify

pytestmark = pytest.mark.unit

# The key pair of the golden vectors (the CloudStack API notes, 1.2), which OpenJDK 17 computed.
SECRET = "VDaACYb0LV9eNjTetIOElcVQkvJck_J_QljX_FcHRj87ZKiy0z0ty0ZsYBkoXkY9b7eq1EhwJaw7FF3akA3KBQ"
API_KEY = "plgWJfZK4gyS3mOMTVmjUVg-X-jlWlnfaUJ9GAbBbf9EdM-kAYMmAiLqzzq1ElZLYq_u38zCm0bewzGUdP66mg"
PEM = "-----BEGIN CERTIFICATE-----\nMIIB+/=\n-----END CERTIFICATE-----\n"


def _hmac(text: str, secret: str = SECRET) -> str:
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def cs_sign(data: dict[str, str], secret: str = SECRET) -> str:
    """cs 5.2.0's client.py: quote(value, safe="*"), which never escapes "~"."""
    text = "&".join(f"{k}={quote(v, safe='*')}" for k, v in sorted(data.items()))
    return _hmac(text.lower(), secret)


def cmk_sign(data: dict[str, str], secret: str = SECRET) -> str:
    """cmk's network.go: sort.Strings, url.QueryEscape, "+" as %20 and "%2A" as "*"."""
    escaped = {k: quote_plus(v).replace("+", "%20").replace("%2A", "*") for k, v in data.items()}
    return _hmac("&".join(f"{k}={escaped[k]}" for k in sorted(escaped)).lower(), secret)


def cloudmonkey_sign(data: dict[str, str], secret: str = SECRET) -> str:
    """CloudMonkey 5.3.3's requester.py: names sorted by key.lower(); Python 2's quote_plus
    escaped "~", which Python 3's keeps."""
    names = sorted(data, key=str.lower)
    values = {k: quote_plus(v, safe="*").replace("~", "%7E").lower() for k, v in data.items()}
    text = "&".join(f"{k.lower()}={values[k].replace('+', '%20')}" for k in names)
    return _hmac(text, secret)


Signer = Callable[[dict[str, str]], str]


def signed(data: dict[str, str], sign: Signer = cs_sign) -> dict[str, str]:
    return {**data, "signature": sign(data)}


def request(**extra: str) -> dict[str, str]:
    return {"apiKey": API_KEY, "response": "json", **extra}


# --- golden vectors ------------------------------------------------------------------------------


def test_the_developer_guide_vector_string_to_sign_and_signature() -> None:
    params = request(command="listUsers")
    sts = string_to_sign(params)
    assert sts == f"apikey={API_KEY.lower()}&command=listusers&response=json"
    assert signature(sts, SECRET) == "TTpdDq/7j/J58XCRHomKoQXEQds="
    assert verify({**params, "signature": "TTpdDq/7j/J58XCRHomKoQXEQds="}, SECRET)


def test_the_certificate_upload_vector() -> None:
    params = request(
        command="uploadTemplateDirectDownloadCertificate",
        certificate=PEM,
        hypervisor="KVM",
        name="sample-ca",
        zoneid="zone-1",
        signatureVersion="3",
        expires="2030-01-01T00:00:00+0000",
    )
    sts = string_to_sign(params)
    assert sts.endswith(
        "&certificate=-----begin%20certificate-----%0amiib%2b%2f%3d%0a-----end%20certificate-----"
        "%0a&command=uploadtemplatedirectdownloadcertificate&expires=2030-01-01t00%3a00%3a00%2b0000"
        "&hypervisor=kvm&name=sample-ca&response=json&signatureversion=3&zoneid=zone-1"
    )
    assert signature(sts, SECRET) == "NsQ6L91TieGJgcXl1sjGEDufoFc="
    assert verify({**params, "signature": "NsQ6L91TieGJgcXl1sjGEDufoFc="}, SECRET)


def test_the_tilde_star_and_details_vector() -> None:
    params = request(command="registerTemplate", name="tilde~ and *star*")
    params["details[0].HTTP_HEADER:Authorization"] = "Bearer t0k3n"
    sts = string_to_sign(params)
    assert sts.endswith(
        "&command=registertemplate&details[0].http_header:authorization=bearer%20t0k3n"
        "&name=tilde%7e%20and%20*star*&response=json"
    )
    assert signature(sts, SECRET) == "xdMnVxg9XHrI3XcPUuIVDaXVeKY="
    assert verify({**params, "signature": "xdMnVxg9XHrI3XcPUuIVDaXVeKY="}, SECRET)


# --- the parts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("a b", "a+b"),
        ("~", "%7E"),
        ("*.-_", "*.-_"),
        ("+/=:&%", "%2B%2F%3D%3A%26%25"),
        ("é", "%C3%A9"),
        ("\n", "%0A"),
        ("AZaz09", "AZaz09"),
    ],
)
def test_java_urlencode_is_urlencoder(value: str, encoded: str) -> None:
    assert java_urlencode(value) == encoded


def test_names_sort_as_java_strings_and_are_not_encoded() -> None:
    # Upper case first; then UTF-16 code units: an astral character (a surrogate pair, D83D)
    # comes before U+FB01, unlike in code point order.
    params = {"b": "1", "B": "2", "\ufb01": "3", "\U0001f600": "4", "a[0].x:y": "5"}
    assert string_to_sign(params) == "b=2&a[0].x:y=5&b=1&\U0001f600=4&\ufb01=3"


def test_only_the_signature_is_left_out_whatever_its_case() -> None:
    params = {"command": "x", "SIGNATURE": "s", "filter": "id", "signatureVersion": "3"}
    assert string_to_sign(params) == "command=x&filter=id&signatureversion=3"


@pytest.mark.parametrize("name", ["apikey", "APIKEY", "apiKey", "ap\u0130key", "api\u212aey"])
def test_control_names_match_as_equals_ignore_case(name: str) -> None:
    assert control({name: "k", "command": "x"}, "apikey") == "k"


def test_control_takes_the_last_match_in_sorted_order_and_none_when_absent() -> None:
    assert control({"signature": "lower", "Signature": "upper"}, "signature") == "lower"
    assert control({"\u017fignature": "long s"}, "signature") == "long s"
    assert control({"command": "x"}, "expires") is None
    assert control({"expires2": "x"}, "expires") is None


# --- what the clients sign -----------------------------------------------------------------------

VALUES = [
    "plain",
    "http://host/~user/t.qcow2",
    "two words",
    "a+b/c=d",
    "caf\u00e9",
    "*star*",
    PEM,
    "{SHA-256}abc:&%",
]


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("sign", [cs_sign, cmk_sign, cloudmonkey_sign])
def test_what_each_client_signs_verifies(value: str, sign: Signer) -> None:
    params = request(command="registerTemplate", url=value, signatureversion="3")
    assert verify(signed(params, sign), SECRET)


def test_a_tilde_as_cs_signs_it_needs_the_tilde_form() -> None:
    params = request(command="registerTemplate", url="http://host/~user/t.qcow2")
    given = cs_sign(params)
    assert signature(string_to_sign(params), SECRET) != given
    assert signature(string_to_sign(params, keep_tilde=True), SECRET) == given


def test_cloudmonkey_order_matters_only_for_names_differing_in_case() -> None:
    params = request(command="listZones", Zeta="1", alpha="2")
    given = cloudmonkey_sign(params)
    assert signature(string_to_sign(params), SECRET) != given
    assert signature(string_to_sign(params, cloudmonkey_order=True), SECRET) == given
    assert verify({**params, "signature": given}, SECRET)


def _changes(params: dict[str, str]) -> list[dict[str, str]]:
    dropped = dict(params)
    del dropped["zoneid"]
    return [
        {**params, "zoneid": "zone-2"},
        dropped,
        {**params, "filter": "id"},
        {**params, "signature": params["signature"].swapcase()},
    ]


@pytest.mark.parametrize("change", range(4))
def test_a_changed_dropped_or_added_parameter_fails(change: int) -> None:
    params = signed(request(command="listTemplates", zoneid="zone-1", templatefilter="all"))
    assert verify(params, SECRET)
    assert not verify(_changes(params)[change], SECRET)


def test_a_wrong_secret_fails() -> None:
    params = signed(request(command="listZones"))
    assert not verify(params, SECRET[:-1] + "R")


@pytest.mark.parametrize("given", [None, "", "caf\u00e9", "TTpdDq/7j/J58XCRHomKoQXEQds"])
def test_a_missing_or_malformed_signature_fails_without_raising(given: str | None) -> None:
    params = request(command="listUsers")
    if given is not None:
        params["signature"] = given
    assert not verify(params, SECRET)


def test_the_signature_parameter_name_may_be_in_any_case() -> None:
    params = request(command="listUsers")
    assert verify({**params, "Signature": "TTpdDq/7j/J58XCRHomKoQXEQds="}, SECRET)
