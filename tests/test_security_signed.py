"""Signed values (trioweb.security): Tornado's wire format, both versions,
tampering, expiry, key rotation -- and interoperability with Tornado itself,
which is installed in the test environment for this purpose."""

from __future__ import annotations

import random
import string
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trioweb.security import (
    create_signed_value,
    decode_signed_value,
    decode_xsrf_token,
    encode_xsrf_token,
    get_signature_key_version,
)

tornado_web = pytest.importorskip("tornado.web", reason="tornado is a test extra")

# Tornado's published vector: these inputs, these outputs (its test suite
# and every Tornado release agree on them).
SECRET = "It's a secret to everybody"
NOW = 1300000000
V1 = b"dmFsdWU=|1300000000|31c934969f53e48164c50768b40cbd7e2daaaa4f"
V2 = (
    b"2|1:0|10:1300000000|3:key|8:dmFsdWU=|"
    b"3d4e60b996ff9c5d5788e333a0cba6f238a22c6c0f94788870e1a9ecd482e152"
)


def clock(now: float = NOW) -> float:
    return now


def fixed(now: float) -> Callable[[], float]:
    return lambda: now


def days(n: float) -> float:
    return NOW + n * 86400


# -- the published vector ---------------------------------------------------------


@pytest.mark.parametrize(("version", "expected"), [(1, V1), (2, V2)])
def test_published_vector_both_ways(version: int, expected: bytes) -> None:
    signed = create_signed_value(SECRET, "key", "value", version, clock=clock)
    assert signed == expected
    assert decode_signed_value(SECRET, "key", expected, clock=clock) == b"value"
    # And Tornado agrees, in both directions.
    assert (
        tornado_web.create_signed_value(
            SECRET, "key", "value", version=version, clock=clock
        )
        == signed
    )
    assert tornado_web.decode_signed_value(SECRET, "key", signed, clock=clock) == (
        b"value"
    )


def test_str_and_bytes_inputs_are_the_same_value() -> None:
    assert create_signed_value(SECRET.encode(), "key", b"value", clock=clock) == V2
    assert decode_signed_value(SECRET, "key", V2.decode(), clock=clock) == b"value"


# -- live Tornado, both ways, random values -----------------------------------------


def random_text(rng: random.Random) -> str:
    alphabet = string.printable + "é☕\U0001f512"
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 60)))


@pytest.mark.parametrize("version", [1, 2])
def test_random_values_interoperate_with_tornado(version: int) -> None:
    rng = random.Random(12)
    for _ in range(200):
        secret = random_text(rng) or "k"
        name = "".join(rng.choice(string.ascii_letters) for _ in range(8))
        value = random_text(rng).encode() + rng.randbytes(rng.randrange(0, 8))
        now = rng.randrange(10**9, 2 * 10**9)
        mine = create_signed_value(secret, name, value, version, clock=fixed(now))
        theirs = tornado_web.create_signed_value(
            secret, name, value, version=version, clock=fixed(now)
        )
        assert mine == theirs
        later = now + rng.randrange(0, 30 * 86400)
        assert (
            tornado_web.decode_signed_value(secret, name, mine, clock=fixed(later))
            == value
        )
        assert decode_signed_value(secret, name, theirs, clock=fixed(later)) == value


def test_key_versions_interoperate_with_tornado() -> None:
    keys = {0: "old key", 1: "new key", 7: "another"}
    for key_version in keys:
        mine = create_signed_value(keys, "sid", "u1", key_version=key_version)
        theirs = tornado_web.create_signed_value(
            keys, "sid", "u1", key_version=key_version
        )
        assert tornado_web.get_signature_key_version(mine) == key_version
        assert get_signature_key_version(theirs) == key_version
        assert tornado_web.decode_signed_value(keys, "sid", mine) == b"u1"
        assert decode_signed_value(keys, "sid", theirs) == b"u1"


# -- tampering ----------------------------------------------------------------------


def fields_of(value: bytes) -> list[bytes]:
    return value.split(b"|")


@pytest.mark.parametrize("index", range(6))
def test_v2_tampering_with_any_field_gives_none(index: int) -> None:
    parts = fields_of(V2)
    replacements = {
        0: b"3",  # another version
        1: b"1:1",  # another key version
        2: b"10:1300000001",  # a later timestamp
        3: b"3:kez",  # another name, same length
        4: b"8:dmFsdWF=",  # another value, same length
        5: parts[5][:-1] + (b"0" if parts[5][-1:] != b"0" else b"1"),
    }
    parts[index] = replacements[index]
    assert decode_signed_value(SECRET, "key", b"|".join(parts), clock=clock) is None


@pytest.mark.parametrize("index", range(3))
def test_v1_tampering_with_any_field_gives_none(index: int) -> None:
    parts = fields_of(V1)
    replacements = {
        0: b"dmFsdWF=",
        1: b"1300000001",
        2: parts[2][:-1] + b"0",
    }
    parts[index] = replacements[index]
    assert decode_signed_value(SECRET, "key", b"|".join(parts), clock=clock) is None


def test_v1_digits_moved_into_the_timestamp_are_refused() -> None:
    # v1 signs value+timestamp without a separator: "...=" + "0123" and
    # "...=0" + "123" have the same signature. The leading zero betrays it.
    value = create_signed_value(SECRET, "key", "x", 1, clock=lambda: 123)
    encoded, timestamp, signature = value.split(b"|")
    assert decode_signed_value(SECRET, "key", value, clock=lambda: 200) == b"x"
    shifted = b"|".join([encoded[:-1], encoded[-1:] + timestamp, signature])
    assert decode_signed_value(SECRET, "key", shifted, clock=lambda: 200) is None


def test_v1_timestamp_far_in_the_future_is_refused() -> None:
    value = create_signed_value(SECRET, "key", "x", 1, clock=lambda: days(40))
    assert decode_signed_value(SECRET, "key", value, clock=clock) is None
    value = create_signed_value(SECRET, "key", "x", 1, clock=lambda: days(30))
    assert decode_signed_value(SECRET, "key", value, clock=clock) == b"x"


@pytest.mark.parametrize("version", [1, 2])
def test_name_swap_gives_none(version: int) -> None:
    value = create_signed_value(SECRET, "session", "admin", version, clock=clock)
    assert decode_signed_value(SECRET, "session", value, clock=clock) == b"admin"
    assert decode_signed_value(SECRET, "other", value, clock=clock) is None


def test_wrong_secret_gives_none() -> None:
    assert decode_signed_value("another secret", "key", V2, clock=clock) is None
    assert decode_signed_value("another secret", "key", V1, clock=clock) is None


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        b"2|",
        b"2|1:0",
        b"2|1:0|10:1300000000|3:key|8:dmFsdWU=",
        b"2|x:0|10:1300000000|3:key|8:dmFsdWU=|sig",
        b"2|1:0|10:1300000000|99:key|8:dmFsdWU=|sig",
        b"2|-1:0|10:1300000000|3:key|8:dmFsdWU=|sig",
        b"999|whatever",
        b"a|b",
        b"|||",
        "\ud800",
        b"\xff\xfe",
    ],
)
def test_malformed_values_give_none(value: str | bytes | None) -> None:
    assert decode_signed_value(SECRET, "key", value, clock=clock) is None
    assert get_signature_key_version(value) is None


@pytest.mark.parametrize(
    "value",
    [
        b"2|" + b"1" * 5000 + b":x",
        b"2|1:0|5000:" + b"9" * 5000 + b"|3:key|8:dmFsdWU=|sig",
        b"2|5000:" + b"9" * 5000 + b"|10:1300000000|3:key|8:dmFsdWU=|sig",
    ],
)
def test_digit_runs_past_int_limit_give_none(value: bytes) -> None:
    # int() raises ValueError past 4300 digits: the fields are bounded first.
    assert decode_signed_value(SECRET, "key", value, clock=clock) is None
    assert get_signature_key_version(value) is None


# -- expiry and versions ------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
def test_expiry(version: int) -> None:
    value = create_signed_value(SECRET, "key", "v", version, clock=clock)

    def decode_at(day: float, **kwargs: float) -> bytes | None:
        return decode_signed_value(
            SECRET, "key", value, clock=lambda: days(day), **kwargs
        )

    assert decode_at(31) == b"v"
    assert decode_at(31.01) is None
    assert decode_at(1.5, max_age_days=1) is None
    assert decode_at(0.5, max_age_days=1) == b"v"


def test_min_version() -> None:
    assert (
        decode_signed_value(SECRET, "key", V1, clock=clock, min_version=1) == b"value"
    )
    assert decode_signed_value(SECRET, "key", V1, clock=clock, min_version=2) is None
    assert (
        decode_signed_value(SECRET, "key", V2, clock=clock, min_version=2) == b"value"
    )
    with pytest.raises(ValueError, match="min_version"):
        decode_signed_value(SECRET, "key", V2, min_version=3)


def test_unknown_version_to_create_raises() -> None:
    with pytest.raises(ValueError, match="use 1 or 2"):
        create_signed_value(SECRET, "key", "v", version=3)


# -- key rotation -------------------------------------------------------------------


def test_rotation_old_key_valid_while_present_invalid_once_removed() -> None:
    keys = {1: "first key", 2: "second key"}
    old = create_signed_value(keys, "sid", "ann", key_version=1, clock=clock)
    new = create_signed_value(keys, "sid", "ann", key_version=2, clock=clock)
    assert get_signature_key_version(old) == 1
    assert get_signature_key_version(new) == 2
    assert decode_signed_value(keys, "sid", old, clock=clock) == b"ann"
    assert decode_signed_value(keys, "sid", new, clock=clock) == b"ann"
    # Key 1 retired: what it signed no longer verifies; key 2's still does.
    retired = {2: "second key"}
    assert decode_signed_value(retired, "sid", old, clock=clock) is None
    assert decode_signed_value(retired, "sid", new, clock=clock) == b"ann"
    # A key version cannot be rewritten to pick another key.
    forged = new.replace(b"|1:2|", b"|1:1|", 1)
    assert decode_signed_value(keys, "sid", forged, clock=clock) is None


def test_rotation_needs_a_key_version_that_exists() -> None:
    keys = {1: "first key"}
    with pytest.raises(ValueError, match="pass key_version"):
        create_signed_value(keys, "sid", "ann")
    with pytest.raises(ValueError, match="not a key"):
        create_signed_value(keys, "sid", "ann", key_version=2)
    with pytest.raises(ValueError, match="version 1"):
        create_signed_value(keys, "sid", "ann", version=1, key_version=1)
    # A v1 value cannot be checked against a dict of keys.
    assert decode_signed_value(keys, "key", V1, clock=clock) is None


# -- never raises on what a client sends ---------------------------------------------


@given(value=st.one_of(st.text(), st.binary()), name=st.text())
def test_decode_never_raises(value: str | bytes, name: str) -> None:
    decode_signed_value(SECRET, name, value, clock=clock)
    decode_signed_value({0: "a", 1: b"b"}, name, value, clock=clock)
    get_signature_key_version(value)


@given(
    prefix=st.sampled_from(["2|", "2|1:0|", "2|1:0|10:1300000000|3:key|", "1|", ""]),
    rest=st.text(alphabet="0123456789:|=abAB+/-", max_size=80),
)
def test_decode_never_raises_on_near_misses(prefix: str, rest: str) -> None:
    # Random text rarely looks like a signed value; these nearly do.
    result = decode_signed_value(SECRET, "key", prefix + rest, clock=clock)
    assert result is None or isinstance(result, bytes)
    key_version = get_signature_key_version(prefix + rest)
    assert key_version is None or isinstance(key_version, int)


@given(text=st.one_of(st.text(), st.binary()))
def test_decode_xsrf_token_never_raises(text: str | bytes) -> None:
    token = decode_xsrf_token(text)
    assert token is None or isinstance(token.token, bytes)


@given(token=st.binary(min_size=1, max_size=32), mask=st.binary(min_size=4, max_size=4))
def test_xsrf_tokens_round_trip_in_both_versions(token: bytes, mask: bytes) -> None:
    v2 = decode_xsrf_token(encode_xsrf_token(token, NOW, version=2, mask=mask))
    v1 = decode_xsrf_token(encode_xsrf_token(token, NOW, version=1))
    assert v2 is not None and v1 is not None
    assert (v2.version, v2.token, v2.timestamp) == (2, token, NOW)
    assert (v1.version, v1.token) == (1, token)
