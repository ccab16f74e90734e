"""The plan's figures (issue 19, cases 3 and 4): the likely requests (list pages at the page size, plus PUTs), the
bound named only where it differs much, today's quota judged on the likely figure, people by email counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from batcher.cli import main as cli
from batcher.flows.render import quota_line
from batcher.flows.summary import QuotaView
from batcher.models import RowGroup
from batcher.remote.estimate import estimate, likely_track_reads
from tests.conftest import EVENT
from tests.remote.test_sender import groups_of

INTERVAL = 1 / (4 * 0.98)


def tracks(*sizes: int) -> list[RowGroup]:
    return groups_of(*sizes, track="trk")


def puts(groups: list[RowGroup], batch_size: int = 100) -> int:
    return sum(-(-len(group.registration_ids) // batch_size) for group in groups)


@pytest.mark.parametrize(("rows", "reads"), [(0, 0), (1, 1), (2, 1), (50, 1), (51, 2), (1000, 20)])
def test_a_track_is_likely_read_in_pages_of_50(rows: int, reads: int) -> None:
    assert likely_track_reads(rows) == reads


def test_3001_rows_in_3_tracks_likely_take_about_90_requests_not_3000() -> None:
    groups = tracks(1000, 1000, 1001)
    guess = estimate(groups, puts(groups), None, batch_size=100, reads=True)
    assert (guess.reads, guess.puts, guess.likely) == (61, 31, 92)  # the night's run took 89; the plan said 3031
    assert guess.bound == 3004 + 31 and guess.bound_differs
    assert guess.seconds(INTERVAL) < 25  # the plan said 12 min 53 s; the run took 22 s


def test_todays_quota_is_judged_on_the_likely_figure_with_the_bound_named(tmp_path: Path) -> None:
    groups = tracks(50_000, 50_000, 50_000, 50_000)  # 200,000 rows
    guess = estimate(groups, puts(groups), None, batch_size=100, reads=True)
    assert guess.likely == 4000 + 2000  # the run needs about 6,000; the plan said 14 h and "does NOT cover it"
    line = quota_line(guess, QuotaView(10_000, 10_000, tmp_path))
    assert "about 6,000 requests needed (at most 202,004)" in line
    assert line.endswith("covers it, unless the tracks hold far more registrations than this file names")
    short = quota_line(guess, QuotaView(10_000, 5_000, tmp_path))
    assert short.endswith("does NOT cover it: the run would stop part-way")


def test_no_bound_is_named_where_it_is_close_to_the_likely_figure() -> None:
    groups = tracks(1, 1, 1)
    guess = estimate(groups, puts(groups), None, batch_size=100, reads=True)
    assert (guess.likely, guess.bound, guess.bound_differs) == (6, 6, False)


def test_the_plan_of_an_email_only_file_shows_its_events_and_the_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "people.csv"
    path.write_text("event_id,email\n" + "".join(f"{EVENT},guest{n}@example.com\n" for n in range(120)))
    assert cli.main(["plan", str(path), "--status", "CANCELED", "--state-dir", str(tmp_path / "s")], environ={}) == 0
    out = capsys.readouterr().out
    assert f"{EVENT}  (default)   CANCELED         120         2  by email" in out  # before: no table at all
    assert "this run: 120 registrations in 2 requests" in out  # before: "0 registrations in 0 requests"
    assert "reads first: about 4 read requests (list pages of 50 records); at most 122 if" in out
    assert "daily quota: about 6 requests needed (at most 124)" in out
