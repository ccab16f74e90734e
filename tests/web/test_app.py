"""The page's handlers under aiohttp's test client, over a real sandbox: upload, preview, send, verify, undo."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

import aiohttp
import pytest

from batcher.cli.main import main
from batcher.sandbox import app as sandbox
from batcher.web import app as page_app
from tests.conftest import StartSandbox, read_results
from tests.web.conftest import ACCESS_TOKEN, EXPORT_CSV, PageFactory

EVENT = "5f0c8b2e-3d4a-4e7b-9c1d-2a6b8e4f7c90"


async def test_preview_sends_no_put_and_send_applies_the_rows(make_page: PageFactory) -> None:
    page = await make_page()
    job_id = await page.upload(EXPORT_CSV)
    assert (await page.post(f"/job/{job_id}/preview", {"status": "CANCELED"})).status == 303
    job = await page.settle(job_id, "confirm")
    shown = await (await page.client.get(f"/job/{job_id}")).text()
    assert page.puts() == 0
    assert "REGISTERED → CANCELED 38 · already CANCELED 5 (not sent) · PENDING → CANCELED 1" in shown
    assert f">Send {job.preview.puts} requests</button>" in shown if job.preview else False

    assert (await page.post(f"/job/{job_id}/send")).status == 303
    job = await page.settle(job_id, "done")
    assert job.run is not None and job.run.exit_code == 0
    assert page.puts() == 2
    download = await page.client.get(f"/job/{job_id}/file/results")
    assert download.status == 200
    assert 'filename="event_export.results.csv"' in download.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await download.text())))
    assert [row["outcome"] for row in rows].count("succeeded") == 39
    assert rows[0]["Event ID"] == EVENT  # the input's own columns, then the results'


async def test_the_page_and_the_command_line_write_the_same_results(
    make_page: PageFactory,
    tmp_path: Path,
    start_sandbox: StartSandbox,
    sample_registrations: list[sandbox.Registration],
) -> None:
    """One implementation: the page's results file is the one `batcher run` writes for the same file."""
    page = await make_page()
    job_id = await page.upload(EXPORT_CSV)
    await page.post(f"/job/{job_id}/preview", {"status": "CANCELED"})
    await page.settle(job_id, "confirm")
    await page.post(f"/job/{job_id}/send")
    job = await page.settle(job_id, "done")

    other = start_sandbox(sandbox.Scenario(token=ACCESS_TOKEN, rate_limit_per_s=None), sample_registrations)
    typed = tmp_path / "typed.results.csv"
    words = ["run", str(job.input), "--status", "CANCELED", "--yes", "--base-url", other.url, "--allow-insecure"]
    env = {"CTCT_ACCESS_TOKEN": ACCESS_TOKEN, "XDG_STATE_HOME": str(tmp_path / "cli-state")}
    code = await asyncio.to_thread(main, [*words, "--rate", "1000", "--results", str(typed), "--no-progress"], env)
    assert code == 0
    assert typed.read_bytes() == job.results.read_bytes()


async def test_cancel_at_the_preview_sends_nothing(make_page: PageFactory) -> None:
    page = await make_page()
    job_id = await page.upload(EXPORT_CSV)
    await page.post(f"/job/{job_id}/preview", {"status": "CANCELED"})
    await page.settle(job_id, "confirm")
    await page.post(f"/job/{job_id}/cancel")
    job = await page.settle(job_id, "done")
    assert page.puts() == 0
    assert job.run is not None and job.run.declined
    assert "Nothing was sent" in await (await page.client.get(f"/job/{job_id}")).text()


async def test_stop_while_reading_or_waiting_sends_nothing(make_page: PageFactory) -> None:
    page = await make_page()
    job_id = await page.upload(EXPORT_CSV)
    await page.post(f"/job/{job_id}/preview", {"status": "CANCELED"})
    await page.settle(job_id, "confirm")
    assert (await page.post(f"/job/{job_id}/stop")).status == 303
    await page.settle(job_id, "done")
    assert page.puts() == 0


async def test_a_second_preview_while_one_waits_is_refused(make_page: PageFactory) -> None:
    """Two tabs, or a reload that posts again: one task per file; the page shows the one going on."""
    page = await make_page()
    job_id = await page.upload(EXPORT_CSV)
    await page.post(f"/job/{job_id}/preview", {"status": "CANCELED"})
    await page.settle(job_id, "confirm")
    again = await page.post(f"/job/{job_id}/preview", {"status": "CANCELED"})
    assert again.status == 409
    assert "a task is already going on this file" in await again.text()
    await page.post(f"/job/{job_id}/cancel")
    await page.settle(job_id, "done")


async def test_verify_then_undo_with_its_own_preview(make_page: PageFactory) -> None:
    page = await make_page()
    job_id = await page.upload(EXPORT_CSV)
    await page.post(f"/job/{job_id}/preview", {"status": "CANCELED"})
    await page.settle(job_id, "confirm")
    await page.post(f"/job/{job_id}/send")
    await page.settle(job_id, "done")
    await page.post(f"/job/{job_id}/verify")
    job = await page.settle(job_id, "done")
    assert job.verification is not None and job.verification.exit_code == 0
    assert job.verification.counts["yes"] == 44
    assert (await page.client.get(f"/job/{job_id}/file/verify")).status == 200

    puts = page.puts()
    await page.post(f"/job/{job_id}/undo")
    job = await page.settle(job_id, "confirm")
    shown = await (await page.client.get(f"/job/{job_id}")).text()
    assert "CANCELED → REGISTERED 38 · CANCELED → PENDING 1" in shown
    assert ">Undo: send 3 requests</button>" in shown
    assert page.puts() == puts
    await page.post(f"/job/{job_id}/send")
    job = await page.settle(job_id, "done")
    assert job.undo is not None and job.undo.exit_code == 0
    statuses = page.sandbox.state.registrations
    assert sum(status == "CANCELED" for track in statuses.values() for status in track.values()) >= 5


async def test_unclear_columns_are_asked_on_the_page(make_page: PageFactory, tmp_path: Path) -> None:
    source = EXPORT_CSV.read_text(encoding="utf-8").splitlines()
    lines = [source[0] + ",event_id", *(line + "," + line.split(",")[0] for line in source[1:])]
    two = tmp_path / "two.csv"
    two.write_text("\n".join(lines) + "\n", encoding="utf-8")
    page = await make_page()
    job_id = await page.upload(two)
    await page.post(f"/job/{job_id}/preview", {"status": "CANCELED"})
    job = await page.settle(job_id, "done")
    assert job.unclear is not None and job.unclear.fields == ("event_id",)
    shown = await (await page.client.get(f"/job/{job_id}")).text()
    assert '<label for="column_event_id">The column holding event_id</label>' in shown
    assert "choose one with --column event_id=HEADER" in shown  # the command line's words
    await page.post(f"/job/{job_id}/preview", {"status": "CANCELED", "column_event_id": "Event ID"})
    await page.settle(job_id, "confirm")
    await page.post(f"/job/{job_id}/cancel")
    await page.settle(job_id, "done")


async def test_the_canary_sends_the_first_rows_only_and_retry_sends_the_rest(make_page: PageFactory) -> None:
    page = await make_page()
    job_id = await page.upload(EXPORT_CSV)
    await page.post(f"/job/{job_id}/preview", {"status": "CANCELED", "canary": "yes", "canary_rows": "10"})
    await page.settle(job_id, "confirm")
    await page.post(f"/job/{job_id}/send")
    job = await page.settle(job_id, "done")
    assert job.run is not None and job.run.plan is not None and job.run.plan.held_back == 34
    assert 'action="/job/' + job_id + '/retry"' in await (await page.client.get(f"/job/{job_id}")).text()
    await page.post(f"/job/{job_id}/retry")
    await page.settle(job_id, "confirm", "done")
    if job.phase == "confirm":
        await page.post(f"/job/{job_id}/send")
        job = await page.settle(job_id, "done")
    assert [row["outcome"] for row in read_results(job.results)].count("pending") == 0


async def test_export_by_event_id_gives_a_file_to_use(make_page: PageFactory) -> None:
    page = await make_page()
    response = await page.post("/export", {"event_id": EVENT})
    assert response.status == 303, await response.text()
    job_id = response.headers["Location"].rsplit("/", 1)[-1]
    shown = await (await page.client.get(f"/job/{job_id}")).text()
    assert "Preview</button>" in shown
    assert page.job(job_id).input.read_text(encoding="utf-8").count(EVENT) == 36  # its default track


async def test_an_upload_past_the_input_bound_is_refused_and_not_kept(
    make_page: PageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(page_app, "MAX_INPUT_BYTES", 100)
    page = await make_page()
    form = aiohttp.FormData()
    form.add_field("csrf", page.csrf)
    form.add_field("file", EXPORT_CSV.read_bytes(), filename="big.csv")
    response = await page.post("/upload", form)
    assert response.status == 413
    assert "larger than 100 bytes" in await response.text()
    assert list((page.folder / "uploads").iterdir()) == []


async def test_uploads_land_in_private_folders(make_page: PageFactory) -> None:
    page = await make_page()
    job_id = await page.upload(EXPORT_CSV, name="../../etc/passwd")
    job = page.job(job_id)
    assert job.input.parent == page.folder / "uploads" / job_id
    assert job.input.name.endswith("passwd.csv") and "/" not in job.input.name
    for folder in (page.folder, page.folder / "uploads", job.input.parent):
        assert folder.stat().st_mode & 0o777 == 0o700


async def test_the_events_stream_starts_with_the_state_section(make_page: PageFactory) -> None:
    """A reload, or a reconnect of the stream, shows the job where it is."""
    page = await make_page()
    job_id = await page.upload(EXPORT_CSV)
    await page.post(f"/job/{job_id}/preview", {"status": "CANCELED"})
    await page.settle(job_id, "confirm")
    response = await page.client.get(f"/job/{job_id}/events")
    assert response.headers["Content-Type"] == "text/event-stream"
    first = await response.content.readuntil(b"\n\n")
    assert first.startswith(b"event: state\n")
    assert b"Send 2 requests" in first
    response.close()
    await page.post(f"/job/{job_id}/cancel")
    await page.settle(job_id, "done")


async def test_the_stream_tells_a_watching_page_when_the_send_is_done(make_page: PageFactory) -> None:
    """The last change a task tells is its end: a page that only listens (no reload) sees the Done section."""
    page = await make_page()
    job_id = await page.upload(EXPORT_CSV)
    await page.post(f"/job/{job_id}/preview", {"status": "CANCELED"})
    await page.settle(job_id, "confirm")
    response = await page.client.get(f"/job/{job_id}/events")
    await page.post(f"/job/{job_id}/send")
    told = b""
    for _ in range(200):  # each event is one state of the job; the send has only a few
        told = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 30)  # a ceiling, not a measure
        if b"5. Done" in told:
            break
    response.close()
    assert b"5. Done" in told and b"Download results" in told


async def test_a_task_is_no_longer_busy_when_it_tells_its_end(
    make_page: PageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The end's change is rendered at once by the streams: by then the job must show the results, not a task."""
    page = await make_page()
    job_id = await page.upload(EXPORT_CSV)
    job = page.job(job_id)
    told: list[tuple[str, bool]] = []
    tell = job.changed
    monkeypatch.setattr(job, "changed", lambda: (told.append((job.phase, job.busy)), tell()))
    await page.post(f"/job/{job_id}/preview", {"status": "CANCELED"})
    await page.settle(job_id, "confirm")
    await page.post(f"/job/{job_id}/send")
    await page.settle(job_id, "done")
    assert told[-1] == ("done", False)


async def test_a_command_line_run_is_in_the_history_and_undone_from_it(make_page: PageFactory, tmp_path: Path) -> None:
    """An undo a week later starts from the list: the run history of the state folder, the CLI's runs too."""
    page = await make_page()
    state_dir = str(page.app[page_app.JOBS].setup.values["state_dir"])
    results = tmp_path / "typed.results.csv"
    words = ["run", str(EXPORT_CSV), "--status", "CANCELED", "--yes", "--base-url", page.sandbox.url]
    words += [
        "--allow-insecure",
        "--rate",
        "1000",
        "--results",
        str(results),
        "--no-progress",
        "--state-dir",
        state_dir,
    ]
    assert await asyncio.to_thread(main, words, {"CTCT_ACCESS_TOKEN": ACCESS_TOKEN}) == 0
    puts = page.puts()

    shown = await (await page.client.get("/")).text()
    run_id = shown.split('action="/runs/', 1)[1].split("/", 1)[0]
    assert f'aria-label="Undo run {run_id}">Undo…</button>' in shown
    assert "39 succeeded, 5 unchanged" in shown
    download = await page.client.get(f"/runs/{run_id}/file/results")
    assert download.status == 200 and await download.read() == results.read_bytes()

    response = await page.post(f"/runs/{run_id}/undo")
    assert response.status == 303
    job_id = response.headers["Location"].rsplit("/", 1)[-1]
    await page.settle(job_id, "confirm")
    assert "Undo: send 3 requests" in await (await page.client.get(f"/job/{job_id}")).text()
    assert page.puts() == puts
    await page.post(f"/job/{job_id}/send")
    job = await page.settle(job_id, "done")
    assert job.undo is not None and job.undo.exit_code == 0 and page.puts() == puts + 3
    assert "undo" in await (await page.client.get("/")).text()


async def test_stop_while_sending_leaves_the_rest_pending_and_retry_sends_it(make_page: PageFactory) -> None:
    """Stop is Ctrl-C: no new request; the rows not sent stay pending; Retry failed (the --resume) sends them."""
    slow = sandbox.Scenario(token=ACCESS_TOKEN, rate_limit_per_s=None, latency_s=(0.02, 0.02))
    page = await make_page(scenario=slow, batch_size=1, concurrency=1)
    job_id = await page.upload(EXPORT_CSV)
    await page.post(f"/job/{job_id}/preview", {"status": "CANCELED"})
    job = await page.settle(job_id, "confirm")
    await page.post(f"/job/{job_id}/send")
    for _ in range(4_000):  # turns of the loop until the first PUT has come back
        if job.progress.done:
            break
        await asyncio.sleep(0.005)
    assert (await page.post(f"/job/{job_id}/stop")).status == 303
    job = await page.settle(job_id, "done")
    assert job.run is not None and job.run.summary is not None and job.run.summary.interrupted
    pending = [row["outcome"] for row in read_results(job.results)].count("pending")
    assert 0 < pending < 39
    shown = await (await page.client.get(f"/job/{job_id}")).text()
    assert ">Retry failed</button>" in shown and "the run was interrupted" in shown

    await page.post(f"/job/{job_id}/retry")
    job = await page.settle(job_id, "confirm")
    assert job.preview is not None and job.preview.changes == pending
    await page.post(f"/job/{job_id}/send")
    job = await page.settle(job_id, "done")
    assert [row["outcome"] for row in read_results(job.results)].count("succeeded") == 39


async def test_a_run_waiting_on_the_page_holds_its_results_file_against_the_command_line(
    make_page: PageFactory,
) -> None:
    page = await make_page()
    job_id = await page.upload(EXPORT_CSV)
    await page.post(f"/job/{job_id}/preview", {"status": "CANCELED"})
    job = await page.settle(job_id, "confirm")
    words = ["run", str(job.input), "--status", "CANCELED", "--yes", "--base-url", page.sandbox.url]
    words += ["--allow-insecure", "--results", str(job.results), "--no-progress"]
    assert await asyncio.to_thread(main, words, {"CTCT_ACCESS_TOKEN": ACCESS_TOKEN}) == 2
    assert page.puts() == 0
    await page.post(f"/job/{job_id}/cancel")
    await page.settle(job_id, "done")


async def test_a_file_of_an_earlier_session_still_offers_its_results(make_page: PageFactory) -> None:
    page = await make_page()
    job_id = await page.upload(EXPORT_CSV)
    await page.post(f"/job/{job_id}/preview", {"status": "CANCELED"})
    await page.settle(job_id, "confirm")
    await page.post(f"/job/{job_id}/send")
    await page.settle(job_id, "done")
    page.app[page_app.JOBS].by_id.clear()  # as after a restart: the job is read back from its folder
    shown = await (await page.client.get(f"/job/{job_id}")).text()
    assert "An earlier session of this page sent this file" in shown
    assert (await page.client.get(f"/job/{job_id}/file/results")).status == 200
