"""Filters over HTTP on both stores: the parameters on every search route and on the
gallery (browse, sorted), the facets, 422s naming the parameter, and the OpenAPI schema."""

from __future__ import annotations

from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imagefind import Library
from imagefind.web import create_app
from tests import filterkit
from tests.synth import natural_image
from tests.webkit import assert_error

Client = tuple[TestClient, Path, dict[str, int]]


@pytest.fixture
def client(tmp_path: Path, tiny_model_dir: Path, store: str | None) -> Iterator[Client]:
    root = tmp_path / "photos"
    filterkit.write_photos(root)
    with Library.open(tmp_path / "lib", model=str(tiny_model_dir), store=store) as lib:
        lib.index([root])
        ids = filterkit.stamp(lib.store, root)
        with TestClient(create_app(lib)) as c:
            yield c, root, ids


def _ids(body: dict) -> set[int]:
    return {h["id"] for h in body["hits"]}


def test_every_search_route_filters(client: Client) -> None:
    c, root, ids = client
    r = c.get("/api/search", params={"q": "a photo", "k": 20, "in": [str(root / "bb")]})
    assert r.status_code == 200 and _ids(r.json()) == {ids["bb/11.jpg"], ids["bb/12.jpg"]}
    r = c.get(f"/api/images/{ids['a/01.jpg']}/similar", params={"place": "munchen"})
    assert r.status_code == 200 and _ids(r.json()) == set()  # stored as Munich
    r = c.get(f"/api/images/{ids['a/01.jpg']}/similar", params={"place": "bavaria", "k": 20})
    assert _ids(r.json()) == {ids[n] for n in ("b/05.jpg", "b/06.jpg", "b/deep/10.jpg")}
    buf = BytesIO()
    natural_image(96, 72, seed=1).save(buf, "JPEG")
    r = c.post(
        "/api/search/image",
        params={"camera": "canon", "after": "2021", "sort": "date"},
        files={"file": ("q.jpg", buf.getvalue(), "image/jpeg")},
    )
    assert r.status_code == 200
    assert [h["id"] for h in r.json()["hits"]] == [ids["b/deep/09.jpg"], ids["b/deep/10.jpg"]]


def test_browse_filters_sorts_and_counts(client: Client) -> None:
    c, root, ids = client
    r = c.get("/api/images", params={"in": [str(root / "b")], "sort": "-date", "limit": 3})
    body = r.json()
    assert body["total"] == 6
    assert [i["id"] for i in body["items"]] == [
        ids["b/deep/10.jpg"],
        ids["b/deep/09.jpg"],
        ids["b/08.jpg"],
    ]
    r = c.get("/api/images", params={"orientation": "square"})
    assert [i["id"] for i in r.json()["items"]] == [ids["a/04.jpg"]]
    assert c.get("/api/images").json()["total"] == 12
    r = c.get("/api/duplicates", params={"in": [str(root / "bb")], "threshold": 1.0})
    assert r.status_code == 200 and r.json()["groups"] == []


def test_facets(client: Client) -> None:
    c, _, _ = client
    body = c.get("/api/facets").json()
    assert body["total"] == 12 and body["undated"] == 1
    assert [y["year"] for y in body["years"]] == ["2018", "2019", "2020", "2021", "2022"]
    assert {p["city"] for p in body["places"]} == {"Lisbon", "São Paulo", "Munich"}
    assert {o["value"] for o in body["orientations"]} == {"landscape", "portrait", "square"}


@pytest.mark.parametrize(
    ("route", "params", "detail"),
    [
        ("/api/search", {"q": "x", "after": "yesterday-ish"}, "after 'yesterday-ish': not a date"),
        ("/api/images", {"orientation": "diagonal"}, "orientation 'diagonal': unknown orientation"),
        (
            "/api/images/1/similar",
            {"after": "2020", "before": "2019"},
            "before 2019: earlier than after 2020",
        ),
        (
            "/api/search",
            {"q": "x", "sort": "added"},
            "sort 'added': unknown order; use one of score",
        ),
        ("/api/images", {"sort": "score"}, "sort 'score': unknown order; use one of added, date"),
    ],
)
def test_bad_values_are_422_naming_the_parameter(
    client: Client, route: str, params: dict, detail: str
) -> None:
    c, _, _ = client
    body = assert_error(c.get(route, params=params), 422)
    assert body["detail"].startswith(detail) and "\n" not in body["detail"]


def test_openapi_documents_the_parameters_with_examples(client: Client) -> None:
    c, _, _ = client
    paths = c.get("/api/openapi.json").json()["paths"]
    for route in (
        "/api/search",
        "/api/images/{image_id}/similar",
        "/api/search/image",
        "/api/images",
    ):
        op = paths[route].get("get") or paths[route]["post"]
        params = {p["name"]: p for p in op["parameters"]}
        assert {"after", "before", "in", "camera", "place", "format", "orientation", "sort"} <= set(
            params
        ), route
        assert params["after"]["examples"]["example"]["value"] == "2019-06"
    assert "/api/facets" in paths
