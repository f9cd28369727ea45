"""dropshot pagination: limit, page_token, sort_by, and next_page on every non-empty page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.sim.conftest import SimFactory
from tests.sim.helpers import P, assert_error, client, create_disk


def _pages(c: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every page until the first empty one (how a correct client stops)."""
    pages: list[dict[str, Any]] = []
    query = dict(params)
    while True:
        r = c.get(path, params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        pages.append(page)
        if not page["items"]:
            return pages
        assert page["next_page"], "a non-empty page carries next_page"
        query = {"page_token": page["next_page"], "limit": params.get("limit", 100)}


@pytest.fixture
def many(make_sim: SimFactory) -> Iterator[httpx.Client]:
    """A client of a simulator holding exactly seven disks."""
    sim = make_sim(instances=0)
    with client(sim) as c:
        for i in range(7):
            create_disk(c, f"disk-{i}")
        yield c


def test_pages_cover_everything_once(many: httpx.Client) -> None:
    pages = _pages(many, "/v1/disks", project="default", limit=3)
    assert [len(p["items"]) for p in pages] == [3, 3, 1, 0]
    assert pages[-1]["next_page"] is None
    names = [d["name"] for p in pages for d in p["items"]]
    assert names == [f"disk-{i}" for i in range(7)]
    # a short last page still carries next_page
    assert pages[2]["next_page"]


def test_sort_orders(many: httpx.Client) -> None:
    pages = _pages(many, "/v1/disks", project="default", limit=2, sort_by="name_descending")
    names = [d["name"] for p in pages for d in p["items"]]
    assert names == [f"disk-{i}" for i in reversed(range(7))]
    pages = _pages(many, "/v1/disks", project="default", limit=4, sort_by="id_ascending")
    ids = [d["id"] for p in pages for d in p["items"]]
    assert ids == sorted(ids) and len(ids) == 7


def test_limit_defaults_and_clamping(many: httpx.Client) -> None:
    page = many.get("/v1/disks", params=P).json()
    assert len(page["items"]) == 7 and page["next_page"]
    page = many.get("/v1/disks", params={**P, "limit": 100000}).json()
    assert len(page["items"]) == 7


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "x"},
        {"limit": str(2**32)},
        {"sort_by": "size"},
        {"page_token": "not-a-token"},
    ],
)
def test_bad_list_parameters_are_400(api: httpx.Client, params: dict[str, str]) -> None:
    assert_error(api.get("/v1/disks", params={**P, **params}), 400, None, "")


def test_project_is_required_on_the_first_page(api: httpx.Client) -> None:
    assert_error(api.get("/v1/disks"), 400, None, "project")
    assert_error(api.get("/v1/instances"), 400, None, "project")
    assert_error(api.get("/v1/snapshots"), 400, None, "project")


def test_instance_disks_and_images_paginate(api: httpx.Client) -> None:
    pages = _pages(api, "/v1/instances/instance-0/disks", project="default", limit=1)
    assert [len(p["items"]) for p in pages] == [1, 0]
    pages = _pages(api, "/v1/images", project="default")
    assert pages == [{"items": [], "next_page": None}]
    pages = _pages(api, "/v1/instances", project="default", limit=1)
    assert [len(p["items"]) for p in pages] == [1, 1, 0]
