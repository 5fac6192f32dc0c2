"""The tasks face's pure parts: catalog aliases, task ids, the body's mapping to the
upscaler's input, and the task object (statuses, stable result URLs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from genyard.api.tasks import render
from genyard.api.tasks.requests import (
    created_of,
    in_face_terms,
    is_task_id,
    model_input,
    new_task_id,
)
from genyard.domain.catalog import BUNDLED_CATALOG_DIR, Catalog, CatalogError
from genyard.domain.jobs import Job, JobStatus
from genyard.errors import InvalidRequest
from genyard.services.file_links import FileLinks


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load([BUNDLED_CATALOG_DIR])


def test_topaz_video_upscale_is_an_honest_alias_of_the_local_upscaler(catalog: Catalog) -> None:
    alias = catalog.alias("topaz-video-upscale")
    assert alias is not None and alias.model == "xinntao/realesrgan-video"
    assert "Real-ESRGAN" in alias.description and "not Topaz" in alias.description
    assert catalog.get("topaz-video-upscale") is None  # not a model id of its own
    assert [a.name for a in catalog.aliases()] == ["topaz-video-upscale"]


def test_an_alias_of_a_model_not_in_the_catalog_is_not_offered(tmp_path: Path) -> None:
    (tmp_path / "aliases.toml").write_text(
        '[ghost]\nmodel = "nobody/nothing"\ndescription = "Runs nothing."\n'
    )
    catalog = Catalog.load([BUNDLED_CATALOG_DIR, tmp_path])
    assert catalog.alias("ghost") is None
    assert catalog.alias("topaz-video-upscale") is not None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[a]\nmodel = "x/y"\n', "description is required"),
        ('[a]\nmodel = "xy"\ndescription = "d"\n', "model must be a model id"),
        ('[a]\nmodel = "x/y"\ndescription = "d"\nprice = 1\n', "unknown field(s) price"),
        ('a = "x/y"\n', "must be a table"),
    ],
)
def test_malformed_aliases_name_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "aliases.toml").write_text(text)
    with pytest.raises(CatalogError, match=re.escape(problem)):
        Catalog.load([tmp_path])


def test_task_ids() -> None:
    task_id = new_task_id(1757169743.9)
    assert re.fullmatch(r"task-unified-1757169743-[a-z0-9]{8}", task_id)
    assert is_task_id(task_id) and created_of(task_id) == 1757169743
    assert new_task_id() != new_task_id()
    for bad in ("pred_abc", "task-unified-x-7cvnl5zw", "task-unified-1-7CVNL5ZW", "task-unified-1"):
        assert not is_task_id(bad)


def test_model_params_become_the_upscalers_input() -> None:
    video = "https://example.com/a.mp4"
    assert model_input(video, None) == {"video": video}
    assert model_input(video, {"scale": 4}) == {"video": video, "scale": 4}
    assert model_input(video, {"upscale_factor": 3}) == {"video": video, "scale": 3}
    with pytest.raises(InvalidRequest, match="differs from scale"):
        model_input(video, {"upscale_factor": 3, "scale": 2})
    with pytest.raises(InvalidRequest, match="video_urls"):
        model_input(video, {"video": "https://example.com/b.mp4"})


def test_submit_errors_are_renamed_to_the_faces_fields() -> None:
    error = InvalidRequest(
        "input.scale: 5 is not one of [2, 3, 4]; input.video: could not fetch",
        {
            "errors": [
                {"field": "input.scale", "message": "5 is not one of [2, 3, 4]"},
                {"field": "input.video", "message": "could not fetch"},
            ]
        },
    )
    renamed = in_face_terms(error)
    assert [e["field"] for e in renamed.details["errors"]] == [
        "model_params.scale",
        "video_urls[0]",
    ]
    assert renamed.message.startswith("model_params.scale: 5 is not one of")


def job(status: JobStatus, **fields: object) -> Job:
    return Job(
        id="pred_x",
        account_id="acct",
        user_id="user",
        model="xinntao/realesrgan-video",
        input={"video": "https://example.com/a.mp4"},
        status=status,
        created_at=1000.0,
        task_id="task-unified-1000-abcdefgh",
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture
def links(catalog: Catalog) -> FileLinks:
    return FileLinks("http://genyard.test", "secret", 3600, catalog)


def test_statuses_in_the_faces_words(catalog: Catalog, links: FileLinks) -> None:
    entry = catalog.get("xinntao/realesrgan-video")
    words = {
        JobStatus.PENDING: "pending",
        JobStatus.PROCESSING: "processing",
        JobStatus.SUCCEEDED: "completed",
        JobStatus.FAILED: "failed",
        JobStatus.CANCELED: "failed",
    }
    for status, word in words.items():
        task = render.task(job(status, completed_at=1010.0), entry, links, now=1020.0)
        assert task["status"] == word
        assert task["task_info"]["can_cancel"] is not status.is_terminal()
    canceled = job(
        JobStatus.CANCELED, completed_at=1010.0, error_code="canceled", error_message="by you"
    )
    assert render.task(canceled, entry, links, now=1020.0)["error"] == {
        "code": "canceled",
        "message": "by you",
    }


def test_an_ended_tasks_result_urls_do_not_change_within_a_window(
    catalog: Catalog, links: FileLinks
) -> None:
    entry = catalog.get("xinntao/realesrgan-video")
    output_url = links.canonical(f"{links.owners.new_id('acct')}/out-x2.mp4")
    done = job(
        JobStatus.SUCCEEDED,
        started_at=1001.0,
        completed_at=1010.5,
        output={"video": output_url, "width": 64, "height": 64, "duration": 1.0},
        usage={"seconds": 1.0},
    )
    first = render.task(done, entry, links, now=1011.0)
    assert render.task(done, entry, links, now=1011.0 + 3000) == first
    assert first["task_info"] == {"can_cancel": False, "estimated_time": 10, "video_duration": 1.0}
    [url] = first["results"]
    assert "signature=" in url
    expires = int(re.search(r"expires=(\d+)", url).group(1))  # type: ignore[union-attr]
    assert expires == 1010.5 + 2 * 3600 + 0.5  # rounded up to a whole second
    later = render.task(done, entry, links, now=1010.5 + 3600 * 5 + 1)
    later_expiry = int(re.search(r"expires=(\d+)", later["results"][0]).group(1))  # type: ignore[union-attr]
    assert later_expiry - (1010.5 + 3600 * 5 + 1) >= 3600  # still a full window left
