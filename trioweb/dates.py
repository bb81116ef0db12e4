"""HTTP dates (RFC 9110 5.6.7): formatted and parsed. Pure: no I/O, no trio.

:func:`http_date` runs for every response, so it caches the formatted
second.
"""

from __future__ import annotations

import calendar
import datetime
import email.utils
import math
import re
import time

__all__ = ["format_timestamp", "http_date", "parse_http_date"]


# Spelled out rather than taken from strftime("%a"), which follows the locale.
_WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_NAMES = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
_MONTH_NUMBERS = {month: number for number, month in enumerate(_MONTH_NAMES, 1)}


def _format_epoch(seconds: int) -> str:
    tm = time.gmtime(seconds)
    return (
        f"{_WEEKDAY_NAMES[tm.tm_wday]}, {tm.tm_mday:02d} "
        f"{_MONTH_NAMES[tm.tm_mon - 1]} {tm.tm_year:04d} "
        f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} GMT"
    )


def format_timestamp(
    ts: int | float | tuple[int, ...] | time.struct_time | datetime.datetime,
) -> str:
    """Format a time the way HTTP dates are written (RFC 9110's
    IMF-fixdate), always in GMT.

    >>> format_timestamp(1359312200)
    'Sun, 27 Jan 2013 18:43:20 GMT'

    *ts* may be a Unix timestamp (fractions of a second are dropped), a
    UTC time tuple as :func:`time.gmtime` returns, or a
    :class:`~datetime.datetime`: an aware one is converted to UTC, a naive
    one is taken to be UTC already.
    """
    if isinstance(ts, int | float):
        seconds = math.floor(ts)
    elif isinstance(ts, tuple):  # time.struct_time is a tuple too
        seconds = calendar.timegm(ts)
    elif isinstance(ts, datetime.datetime):
        seconds = calendar.timegm(ts.utctimetuple())
    else:
        raise TypeError(
            "format_timestamp() needs a Unix timestamp, a time tuple or a"
            f" datetime, got {type(ts).__name__}"
        )
    return _format_epoch(seconds)


# (second, formatted) of the last http_date() call. Responses within the
# same second share the bytes; a tuple is replaced in one step, so readers
# in other threads always see a matching pair.
_date_cache: tuple[int, bytes] = (-1, b"")


def http_date(now: float | None = None) -> bytes:
    """The ``Date`` header value for *now* (default: the current time).

    >>> http_date(1359312200.75)
    b'Sun, 27 Jan 2013 18:43:20 GMT'

    Every response carries one, so the result is cached and only
    re-formatted when the second changes.
    """
    global _date_cache
    if now is None:
        now = time.time()
    second = math.floor(now)
    cached = _date_cache
    if cached[0] == second:
        return cached[1]
    value = _format_epoch(second).encode("ascii")
    _date_cache = (second, value)
    return value


# IMF-fixdate, the only form a sender may use today; parsed without the
# general email date parser, which handles the obsolete forms below.
_IMF_FIXDATE_RE = re.compile(
    r"[A-Z][a-z]{2}, ([0-9]{2}) ([A-Z][a-z]{2}) ([0-9]{4}) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT"
)


def parse_http_date(value: str) -> datetime.datetime | None:
    """Parse an HTTP date (``If-Modified-Since``, ``Last-Modified``...)
    into an aware UTC :class:`~datetime.datetime`.

    Accepts the three forms RFC 9110 says a recipient must: IMF-fixdate
    (``Sun, 06 Nov 1994 08:49:37 GMT``), the obsolete RFC 850 form
    (``Sunday, 06-Nov-94 08:49:37 GMT``) and asctime
    (``Sun Nov  6 08:49:37 1994``). Returns ``None`` for anything that is
    not a valid date, because a bad date in a request header is to be
    ignored, not to fail the request.
    """
    value = value.strip()
    match = _IMF_FIXDATE_RE.fullmatch(value)
    try:
        if match is not None:
            day, month_name, year, hour, minute, second = match.groups()
            month = _MONTH_NUMBERS.get(month_name)
            if month is None:
                return None
            return datetime.datetime(
                int(year),
                month,
                int(day),
                int(hour),
                int(minute),
                int(second),
                tzinfo=datetime.UTC,
            )
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        result = datetime.datetime(*parsed[:6], tzinfo=datetime.UTC)
        offset = parsed[9]
        if offset:
            result -= datetime.timedelta(seconds=offset)
        return result
    except (ValueError, TypeError, OverflowError, IndexError):
        # Out-of-range fields (31 Feb, hour 25), or the email parser
        # tripping over something it half-recognized.
        return None
