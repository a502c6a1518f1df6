"""The web app and JSON API, in process: every endpoint and the page (errors and guards are in
test_web_security.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import Response
from fastapi.testclient import TestClient

from imagefind.library import Library
from imagefind.web import create_app
from tests.webkit import HTML, add, assert_error, jpeg, upload
from tests.webkit import client_fixture as client_fixture  # fixture: client
from tests.webkit import lib_fixture as lib_fixture  # fixture: lib

# -- happy paths ---------------------------------------------------------------------------


def test_health_stats_and_openapi(client: TestClient, tiny_model_dir: Path) -> None:
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["count"] == 0 and health["model_error"] is None
    stats = client.get("/api/stats").json()
    assert stats["count"] == 0 and stats["model"] == health["model"]
    doc = client.get("/api/openapi.json").json()
    paths = set(doc["paths"])
    assert paths >= {
        "/api/images",
        "/api/images/{image_id}",
        "/api/images/{image_id}/file",
        "/api/images/{image_id}/thumbnail",
        "/api/images/{image_id}/similar",
        "/api/search",
        "/api/search/image",
        "/api/duplicates",
        "/api/stats",
        "/api/health",
    }
    assert "multipart/form-data" in doc["paths"]["/api/images"]["post"]["requestBody"]["content"]
    assert "ErrorOut" in doc["components"]["schemas"]
    assert client.get("/api/docs").status_code == 200


def test_upload_list_get_and_files(client: TestClient) -> None:
    data = jpeg(1)
    r = upload(client, ("a.jpg", data, "image/jpeg"), ("b.jpg", jpeg(2), "image/jpeg"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert [a["name"] for a in body["added"]] == ["a.jpg", "b.jpg"]
    assert body["duplicates"] == [] and body["errors"] == []
    first, second = (a["id"] for a in body["added"])

    page = client.get("/api/images", params={"offset": 0, "limit": 1}).json()
    assert (
        page["total"] == 2 and page["limit"] == 1 and [i["id"] for i in page["items"]] == [second]
    )
    assert client.get("/api/images", params={"offset": 1}).json()["items"][0]["id"] == first
    assert (
        client.get(f"/api/images/{first}").json()["sha256"] == body["added"][0]["image"]["sha256"]
    )

    original = client.get(f"/api/images/{first}/file")
    assert original.status_code == 200 and original.content == data
    assert original.headers["content-type"] == "image/jpeg"
    assert original.headers["content-length"] == str(len(data))
    assert original.headers["content-disposition"] == f'inline; filename="{first}.jpg"'
    assert original.headers["x-content-type-options"] == "nosniff"
    thumb = client.get(f"/api/images/{first}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    assert thumb.content[:4] == b"RIFF"


def test_upload_same_file_twice_is_a_duplicate(client: TestClient) -> None:
    data = jpeg(3)
    assert upload(client, ("x.jpg", data, "image/jpeg")).status_code == 201
    r = upload(client, ("copy.jpg", data, "image/jpeg"))
    assert r.status_code == 200
    body = r.json()
    assert body["added"] == [] and body["duplicates"][0]["duplicate"] is True
    assert client.get("/api/stats").json()["count"] == 1


def test_upload_reports_bad_files_beside_good_ones(client: TestClient) -> None:
    r = upload(
        client,
        ("good.jpg", jpeg(4), "image/jpeg"),
        ("bad.png", HTML, "image/png"),
        ("image.png", jpeg(5), "image/png"),
        ("image.png", jpeg(6), "image/png"),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert len(body["added"]) == 3  # two pastes with one name both count
    assert [e["name"] for e in body["errors"]] == ["bad.png"]
    assert "not a supported image" in body["errors"][0]["error"]


def test_upload_answers_for_each_file_by_position_not_by_message(client: TestClient) -> None:
    """Errors used to be matched to files by the start of their message: 'x: y.png' failing
    read as a failure of 'x'."""
    r = upload(
        client,
        ("x", HTML, "image/png"),
        ("b.jpg", jpeg(11), "image/jpeg"),
        ("x: y.png", b"", "image/png"),
        ("a.jpg", jpeg(12), "image/jpeg"),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert [e["name"] for e in body["errors"]] == ["x", "x: y.png"]
    assert body["errors"][1]["error"] == "x: y.png: not a supported image (empty file)"
    assert [a["name"] for a in body["added"]] == ["b.jpg", "a.jpg"]
    failed = upload(client, ("x", HTML, "image/png"), ("x: y.png", b"", "image/png"))
    body = assert_error(failed, 415)
    assert body["error"] == "unsupported_media_type"
    assert [e["name"] for e in body["errors"]] == ["x", "x: y.png"]


def test_text_search_and_query_arithmetic(client: TestClient) -> None:
    ids = [add(client, s) for s in range(4)]
    r = client.get("/api/search", params={"q": "a photo of a beach", "k": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kind"] == "text" and body["query"] == "a photo of a beach"
    scores = [h["score"] for h in body["hits"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    assert all(-1 <= s <= 1 for s in scores)
    r = client.get("/api/search", params={"q": f"beach + sunset - #{ids[0]}", "k": 10})
    assert r.status_code == 200 and ids[0] not in [h["id"] for h in r.json()["hits"]]
    high = client.get("/api/search", params={"q": "beach", "threshold": 1.0}).json()
    assert high["hits"] == []


def test_text_search_never_reads_server_files(client: TestClient, tmp_path: Path) -> None:
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(jpeg(9))
    add(client, 1)
    r = client.get("/api/search", params={"q": str(secret)})
    assert r.status_code == 200  # read as text, never as the file
    assert r.json()["hits"][0]["image"]["sha256"] != ""


def test_similar_excludes_the_query_image(client: TestClient) -> None:
    ids = [add(client, s) for s in range(4)]
    body = client.get(f"/api/images/{ids[1]}/similar", params={"k": 10}).json()
    assert body["kind"] == "image" and body["query"] == f"#{ids[1]}"
    got = [h["id"] for h in body["hits"]]
    assert ids[1] not in got and sorted(got) == sorted(set(ids) - {ids[1]})


def test_image_search_by_upload(client: TestClient) -> None:
    ids = [add(client, s) for s in range(3)]
    r = client.post(
        "/api/search/image", params={"k": 2}, files={"file": ("q.jpg", jpeg(0, quality=70))}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kind"] == "image" and body["query"] == "q.jpg" and len(body["hits"]) == 2
    assert body["hits"][0]["id"] == ids[0]  # a re-encode of image 0 finds image 0 first
    assert client.get("/api/stats").json()["count"] == 3  # a query is not added


def test_delete_then_404(client: TestClient) -> None:
    keep, gone = add(client, 1), add(client, 2)
    r = client.delete(f"/api/images/{gone}")
    assert r.status_code == 200 and r.json()["id"] == gone
    for url in (f"/api/images/{gone}", f"/api/images/{gone}/file", f"/api/images/{gone}/thumbnail"):
        assert_error(client.get(url), 404)
    assert_error(client.delete(f"/api/images/{gone}"), 404)
    hits = client.get("/api/search", params={"q": "anything"}).json()["hits"]
    assert [h["id"] for h in hits] == [keep]


def test_an_indexed_original_keeps_its_name(
    client: TestClient, lib: Library, tmp_path: Path
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "été.jpg").write_bytes(jpeg(8))
    lib.index([folder])
    (image,) = client.get("/api/images").json()["items"]
    r = client.get(f"/api/images/{image['id']}/file")
    assert r.status_code == 200 and r.content == jpeg(8)
    assert r.headers["content-disposition"] == "inline; filename*=utf-8''%C3%A9t%C3%A9.jpg"


def test_a_delete_during_a_file_response_does_not_break_it(
    client: TestClient, lib: Library
) -> None:
    """Found by ``benchmarks.load``: a thumbnail fetch racing a delete of the same image broke
    the connection mid-response (the file went between the route's answer and its sending).
    Files are opened before the route answers, so a later delete cannot take them away."""
    from imagefind.web.api import image_file, image_thumbnail

    image_id = add(client, 5)
    sha = lib.get(image_id).sha256
    state = client.app.state.imagefind  # type: ignore[attr-defined]
    answered = [image_thumbnail(image_id, state), image_file(image_id, state)]
    assert client.delete(f"/api/images/{image_id}").status_code == 200
    assert not lib.files.thumb_path(sha).exists() and lib.files.find_upload(sha) is None
    for response, magic in zip(answered, (b"RIFF", b"\xff\xd8"), strict=True):
        status, body = asyncio.run(_sent(response))
        assert status == 200 and body.startswith(magic)


async def _sent(response: Response) -> tuple[int, bytes]:
    """What an ASGI server would send for ``response``: its status and body."""
    messages: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        messages.append(message)

    scope = {"type": "http", "method": "GET", "headers": [], "asgi": {"spec_version": "2.4"}}
    await response(scope, receive, send)  # type: ignore[arg-type]
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return messages[0]["status"], body


def test_duplicates_groups(client: TestClient, lib: Library, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    data = jpeg(7)
    (folder / "one.jpg").write_bytes(data)
    (folder / "two.jpg").write_bytes(data)
    (folder / "other.jpg").write_bytes(jpeg(8))
    lib.index([folder])
    body = client.get("/api/duplicates").json()
    exact = [g for g in body["groups"] if g["kind"] == "exact"]
    assert len(exact) == 1
    assert sorted(Path(i["path"]).name for i in exact[0]["images"]) == ["one.jpg", "two.jpg"]
    assert_error(client.get("/api/duplicates", params={"threshold": 2}), 422)


def test_changes_from_another_process_show_up(
    client: TestClient, lib: Library, tiny_model_dir: Path
) -> None:
    add(client, 1)
    assert client.get("/api/search", params={"q": "x"}).json()["hits"]  # index built
    # `imagefind index` in another process: another Library on the same folder.
    with Library.open(lib.path, model=str(tiny_model_dir)) as other:
        new_id = other.add(jpeg(2), name="elsewhere.jpg").id
    page = client.get("/api/images").json()
    assert page["total"] == 2 and page["items"][0]["id"] == new_id
    hits = client.get("/api/search", params={"q": "x", "k": 10}).json()["hits"]
    assert new_id in [h["id"] for h in hits]


# -- the page ------------------------------------------------------------------------------


def test_page_shows_model_count_and_empty_state(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    model = client.get("/api/health").json()["model"]
    assert model and model in r.text
    assert 'data-testid="count" id="count" data-count="0"' in r.text
    assert "No images yet" in r.text and "imagefind index ~/Photos" in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "http://" not in r.text and "https://" not in r.text  # nothing from a CDN
    for asset in ("/static/app.js", "/static/app.css"):
        assert client.get(asset).status_code == 200
    add(client, 1)
    assert 'data-count="1"' in client.get("/").text


def test_missing_model_page_and_503(tmp_path: Path) -> None:
    broken = tmp_path / "no-model"
    broken.mkdir()
    with (
        Library.open(tmp_path / "lib", model=str(broken)) as library,
        TestClient(create_app(library)) as c,
    ):
        page = c.get("/")
        assert page.status_code == 200 and 'data-testid="model-missing"' in page.text
        assert "imagefind models download" in page.text
        assert c.get("/api/health").json()["status"] == "degraded"
        assert_error(c.get("/api/search", params={"q": "cat"}), 503)
        assert_error(upload(c, ("a.jpg", jpeg(1), "image/jpeg")), 503)
        assert c.get("/api/images").json()["total"] == 0  # browsing still works
