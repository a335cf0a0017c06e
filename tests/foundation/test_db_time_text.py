"""`db_time` writes every moment exactly as `str()` of the naive moment does (the stored text of
timestamps: 'YYYY-MM-DD HH:MM:SS' with '.ffffff' only when the microseconds are not zero), also
when it renders from its kept second: random moments in any order, runs of moments within one
second, seconds' edges, microsecond 0, aware moments, and the ends of the calendar."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

from codelace_box.db.timestamps import db_time, utcnow

_SPAN = (datetime.max - datetime.min).total_seconds()


def _random_moment(rng: random.Random) -> datetime:
    moment = datetime.min + timedelta(seconds=rng.randrange(int(_SPAN)))
    return moment.replace(microsecond=rng.choice((0, rng.randrange(1_000_000))))


def _expected(moment: datetime) -> str:
    return str(moment.replace(tzinfo=None))


def test_random_moments_anywhere_in_the_calendar() -> None:
    rng = random.Random(19)
    for _ in range(20_000):
        moment = _random_moment(rng)
        assert db_time(moment) == _expected(moment) == moment.isoformat(" ")
        for micro in (rng.randrange(1_000_000), 0, rng.randrange(1_000)):  # its second, kept
            again = moment.replace(microsecond=micro)
            assert db_time(again) == _expected(again)


def test_runs_within_a_second_and_across_its_edges() -> None:
    rng = random.Random(28)
    start = datetime(2026, 12, 6, 5, 59, 58)
    for _ in range(200):
        base = start + timedelta(seconds=rng.randrange(-100_000, 100_000))
        steps = sorted(rng.randrange(-1_500_000, 2_500_000) for _ in range(30))
        for step in (0, 1, 999_999, 1_000_000, -1, *steps):  # the edges, then a run
            moment = base + timedelta(microseconds=step)
            assert db_time(moment) == _expected(moment)
    now = utcnow()
    for step in range(2_000):  # what the hot path sees: now, now, a little later, ...
        moment = now + timedelta(microseconds=step * 997)
        assert db_time(moment) == _expected(moment)


def test_microsecond_zero_writes_no_fraction() -> None:
    second = datetime(2026, 12, 6, 6, 0, 0)
    assert db_time(second + timedelta(microseconds=5)) == "2026-12-06 06:00:00.000005"
    assert db_time(second) == "2026-12-06 06:00:00"  # the same second, kept: no fraction
    assert db_time(second + timedelta(microseconds=100_000)) == "2026-12-06 06:00:00.100000"
    assert db_time(second - timedelta(microseconds=1)) == "2026-12-06 05:59:59.999999"


def test_aware_moments_are_written_as_their_wall_clock_without_offset() -> None:
    rng = random.Random(6)
    zones = (UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8)))
    for _ in range(2_000):
        naive = _random_moment(rng)
        for zone in zones:
            aware = naive.replace(tzinfo=zone)
            assert db_time(aware) == _expected(aware) == db_time(naive)


def test_the_ends_of_the_calendar() -> None:
    for moment in (
        datetime.min,
        datetime.max,
        datetime.max.replace(microsecond=0),
        datetime(1, 1, 1, 0, 0, 0, 1),
        datetime(999, 12, 31, 23, 59, 59, 10),
        datetime(9999, 12, 31, 23, 59, 59, 999_998),
    ):
        assert db_time(moment) == _expected(moment)
        assert db_time(moment) == _expected(moment)  # again, from what it kept
