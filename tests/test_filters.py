"""Filters: reading user input (the forms, the one-line errors), place folding, date
order; and the library's filtered search, similar, browse and duplicates on both stores,
each checked against what passes by the known circumstance of a small real library."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from imagefind import Library
from imagefind.filters import FilterError, Filters, by_date, fold, parse_sort, place_matches
from tests import filterkit

# --- reading input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "before", "start", "end"),
    [
        ("2019", "2019", "2019-01-01T00:00:00", "2020-01-01T00:00:00"),
        ("2019-06", "2019-08", "2019-06-01T00:00:00", "2019-09-01T00:00:00"),
        ("2019-02-28", "2019-02-28", "2019-02-28T00:00:00", "2019-03-01T00:00:00"),
        ("2019-12-31 23:59", "2019-12-31T23:59", "2019-12-31T23:59:00", "2020-01-01T00:00:00"),
        (
            " 2019-06-01T10:00:30 ",
            "2019-06-01T10:00:30",
            "2019-06-01T10:00:30",
            "2019-06-01T10:00:31",
        ),
        (None, "9999", None, None),
        ("", "", None, None),
    ],
)
def test_dates_take_every_precision_both_ends_inclusive(
    after: str | None, before: str | None, start: str | None, end: str | None
) -> None:
    parsed = Filters.parse(after=after, before=before)
    assert (parsed.after, parsed.before) == (start, end)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"after": "yesterday-ish"}, "after 'yesterday-ish': not a date; use YYYY, YYYY-MM"),
        ({"before": "2019-02-30"}, "before '2019-02-30': not a date"),
        ({"after": "0000"}, "after '0000': not a date"),
        ({"after": "2019-06-01+02:00"}, "not a date"),
        ({"after": "2019-06", "before": "2019-05"}, "before 2019-05: earlier than after 2019-06"),
        (
            {"orientation": "diagonal"},
            "orientation 'diagonal': unknown orientation; use one of landscape, portrait, square",
        ),
    ],
)
def test_bad_input_is_one_line_naming_the_option(given: dict[str, str], message: str) -> None:
    with pytest.raises(FilterError) as caught:
        Filters.parse(**given, option=lambda name: f"--{name}")
    text = str(caught.value)
    assert message.replace("after", "--after").replace("before", "--before").replace(
        "orientation '", "--orientation '"
    ) in text or message in text.replace("--", "")
    assert "\n" not in text


def test_other_fields_are_tidied() -> None:
    parsed = Filters.parse(
        folders=["~/x", "/a/b/", " "], camera=" canon ", format=".jpg", orientation="Portrait"
    )
    assert parsed.folders == (str(Path("~/x").expanduser()), "/a/b")
    assert (parsed.camera, parsed.format, parsed.orientation) == ("canon", "JPEG", "portrait")
    assert not Filters() and not Filters.parse(camera="  ") and parsed


def test_places_fold_case_accents_and_spaces() -> None:
    assert fold("  São   PAULO ") == "sao paulo" == fold("Sao Paulo")
    known = [("São Paulo", "São Paulo", "Brazil", "BR"), ("Munich", "Bavaria", "Germany", "DE")]
    assert place_matches("sao paulo", known) == {"city": ["São Paulo"], "region": ["São Paulo"]}
    assert place_matches("de", known) == {"country_code": ["DE"]}
    assert place_matches("GERMANY", known) == {"country": ["Germany"]}
    assert place_matches("Atlantis", known) == {}


def test_sort_orders_and_date_order() -> None:
    assert parse_sort(None) == "score" and parse_sort("-date") == "-date"
    with pytest.raises(FilterError, match=r"^--sort 'newest': unknown order; use one of score"):
        parse_sort("newest", "--sort")
    items = [("a", "2019"), ("b", None), ("c", "2018"), ("d", "2020")]
    assert [i for i, _ in by_date(items, lambda x: x[1], "date")] == ["c", "a", "d", "b"]
    assert [i for i, _ in by_date(items, lambda x: x[1], "-date")] == ["d", "a", "c", "b"]
    assert by_date(items, lambda x: x[1], "score") == items


# --- the library, on both stores ------------------------------------------------------------


@pytest.fixture
def lib(
    tmp_path: Path, tiny_model_dir: Path, store: str | None
) -> Iterator[tuple[Library, Path, dict[str, int]]]:
    root = tmp_path / "photos"
    filterkit.write_photos(root)
    with Library.open(tmp_path / "lib", model=str(tiny_model_dir), store=store) as library:
        library.index([root])
        ids = filterkit.stamp(library.store, root)
        yield library, root, ids


def _expected(lib: Library, query: np.ndarray, passing: set[int], k: int) -> list[int]:
    """Brute force over the passing images."""
    ids, vectors = lib.store.vectors(sorted(passing))
    order = np.argsort(-(vectors @ query), kind="stable")[:k]
    return ids[order].tolist()


CASES = [
    ({"after": "2019-06", "before": "2019-08"}, {"b/05.jpg", "b/06.jpg"}),
    (
        {"after": "2019-09-01"},
        {"b/07.jpg", "b/08.jpg", "b/deep/09.jpg", "b/deep/10.jpg", "bb/11.jpg", "bb/12.jpg"},
    ),
    (
        {"folders": ["b"]},
        {"b/05.jpg", "b/06.jpg", "b/07.jpg", "b/08.jpg", "b/deep/09.jpg", "b/deep/10.jpg"},
    ),
    (
        {"folders": ["a", "b/deep"]},
        {"a/01.jpg", "a/02.jpg", "a/03.jpg", "a/04.jpg", "b/deep/09.jpg", "b/deep/10.jpg"},
    ),
    ({"camera": "canon"}, {"a/01.jpg", "a/02.jpg", "b/deep/09.jpg", "b/deep/10.jpg"}),
    ({"place": "sao paulo"}, {"a/03.jpg", "b/07.jpg", "bb/11.jpg", "bb/12.jpg"}),
    ({"place": "PT"}, {"a/01.jpg", "a/02.jpg", "b/deep/09.jpg"}),
    ({"place": "bavaria", "orientation": "portrait"}, {"b/06.jpg"}),
    ({"orientation": "square"}, {"a/04.jpg"}),
    ({"format": "jpg", "camera": "nikon", "before": "2019"}, {"a/03.jpg", "b/05.jpg"}),
    ({"place": "Atlantis"}, set()),
]


@pytest.mark.parametrize(("given", "names"), CASES)
def test_search_keeps_the_best_among_what_passes(
    lib: tuple[Library, Path, dict[str, int]], given: dict, names: set[str]
) -> None:
    library, root, ids = lib
    if "folders" in given:
        given = {**given, "folders": [root / f for f in given["folders"]]}
    filters = Filters.parse(**given)
    passing = {ids[n] for n in names}
    assert library.count(filters) == len(passing)
    hits = library.search("a photo", k=3, filters=filters)
    query = library.searcher.text_vector("a photo")
    assert [h.id for h in hits] == _expected(library, query, passing, 3)
    browsed = library.images(0, 50, filters=filters)
    assert {i.id for i in browsed} == passing


def test_sort_by_date_orders_the_same_k_best(lib: tuple[Library, Path, dict[str, int]]) -> None:
    library, _root, ids = lib
    best = library.search("a photo", k=5)
    by_newest = library.search("a photo", k=5, sort="-date")
    assert {h.id for h in by_newest} == {h.id for h in best}
    taken = {ids[p]: t for p, _, t, *_ in filterkit.PHOTOS}
    dated = [taken[h.id] for h in by_newest if taken[h.id]]
    assert dated == sorted(dated, reverse=True)
    assert all(taken[h.id] is None for h in by_newest[len(dated) :])  # undated last
    with pytest.raises(FilterError, match="sort 'newest': unknown order"):
        library.search("a photo", sort="newest")
    with pytest.raises(FilterError, match="order 'score': unknown order; use one of added"):
        library.images(order="score")
    oldest = [h.id for h in library.images(0, 3, order="date")]
    assert oldest == [ids["a/01.jpg"], ids["a/02.jpg"], ids["a/03.jpg"]]


def test_similar_and_duplicates_take_filters(lib: tuple[Library, Path, dict[str, int]]) -> None:
    library, root, ids = lib
    filters = Filters.parse(folders=[root / "bb"])
    hits = library.similar(ids["a/01.jpg"], k=5, filters=filters)
    assert {h.id for h in hits} == {ids["bb/11.jpg"], ids["bb/12.jpg"]}
    (root / "bb" / "copy.jpg").write_bytes((root / "a" / "01.jpg").read_bytes())
    library.index([root])
    exact_only = 1.5  # no cosine reaches it: only same-bytes groups
    copy = library.store.by_path(str(root / "bb" / "copy.jpg"))
    assert copy is not None
    pair = {ids["a/01.jpg"], copy.id}
    assert [{i.id for i in g.images} for g in library.duplicates(exact_only)] == [pair]
    both = Filters.parse(folders=[root / "a", root / "bb"])
    assert [{i.id for i in g.images} for g in library.duplicates(exact_only, filters=both)] == [
        pair
    ]
    assert library.duplicates(exact_only, filters=Filters.parse(folders=[root / "a"])) == []


def test_facets_offer_what_the_library_holds(lib: tuple[Library, Path, dict[str, int]]) -> None:
    library, root, _ = lib
    facets = library.facets()
    assert facets.total == 12 and facets.undated == 1
    assert [(y.year, y.count) for y in facets.years] == [
        ("2018", 2),
        ("2019", 4),
        ("2020", 1),
        ("2021", 2),
        ("2022", 2),
    ]
    assert [m.value for m in facets.years[1].months] == ["2019-01", "2019-06", "2019-08", "2019-09"]
    assert {c.value: c.count for c in facets.cameras}["NIKON D750"] == 4
    assert {f.value for f in facets.folders} == {
        str(root / d) for d in ("a", "b", "b/deep", "bb")
    } or facets.folders == []  # folder is the metadata reader's to fill
