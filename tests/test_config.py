"""ServerConfig's validation: every limit and every wait finite."""

from __future__ import annotations

import math

import pytest

from trioweb.server.config import ServerConfig


@pytest.mark.parametrize(
    "field", ["header_timeout", "body_timeout", "write_timeout", "graceful_timeout"]
)
@pytest.mark.parametrize("value", [math.inf, math.nan, -1.0])
def test_a_timeout_must_be_finite(field: str, value: float) -> None:
    # An infinite timeout is a wait without a deadline: refused, as NaN is.
    with pytest.raises(ValueError, match=field):
        ServerConfig(**{field: value})


def test_the_body_deadline_may_be_a_fraction_of_a_second() -> None:
    assert ServerConfig(body_deadline=0.5).body_deadline == 0.5
    assert ServerConfig().body_deadline is None
    for bad in (0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="body_deadline"):
            ServerConfig(body_deadline=bad)


def test_limits_keep_their_minimum() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        ServerConfig(max_connections=0)
    assert ServerConfig(max_body_size=0, min_body_rate=0).min_body_rate == 0
