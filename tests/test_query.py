from __future__ import annotations

import numpy as np
import pytest

from imagefind.errors import ImagefindError, QueryError
from imagefind.query import (
    MAX_PARTS,
    MAX_QUERY_LENGTH,
    QueryPart,
    combine,
    parse_image,
    parse_query,
)


def fake_images(*paths: str):
    """An is_image_path that knows exactly these paths, so tests need no files."""
    known = set(paths)
    return lambda part: part in known


def text(value: str, weight: float = 1.0) -> QueryPart:
    return QueryPart(weight, "text", value)


def image(value: str, weight: float = 1.0) -> QueryPart:
    return QueryPart(weight, "image", value)


def id_(value: int, weight: float = 1.0) -> QueryPart:
    return QueryPart(weight, "id", value)


IMAGES = fake_images("./photos/dog.jpg", "dog.png", "my photos/a - b.jpg", "#7.jpg")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # single parts
        ("beach", [text("beach")]),
        ("  beach  ", [text("beach")]),
        ("a dog on a beach", [text("a dog on a beach")]),
        # operators
        ("beach + sunset", [text("beach"), text("sunset")]),
        ("beach + sunset - people", [text("beach"), text("sunset"), text("people", -1.0)]),
        ("beach  +   sunset", [text("beach"), text("sunset")]),
        ("beach\t-\tpeople", [text("beach"), text("people", -1.0)]),
        ("a + b + c + d", [text("a"), text("b"), text("c"), text("d")]),
        # hyphens and signs that are not operators
        ("t-shirt", [text("t-shirt")]),
        ("sci-fi poster", [text("sci-fi poster")]),
        ("red t-shirt - sci-fi", [text("red t-shirt"), text("sci-fi", -1.0)]),
        ("-5 degrees", [text("-5 degrees")]),
        ("c++ code", [text("c++ code")]),
        ("cat -dog", [text("cat -dog")]),
        ("cat- dog", [text("cat- dog")]),
        ("cat +dog", [text("cat +dog")]),
        ("cat ++ dog", [text("cat ++ dog")]),
        ("cat - -dog", [text("cat"), text("-dog", -1.0)]),
        ("don't panic", [text("don't panic")]),
        # a leading operator signs the first part
        ("- people", [text("people", -1.0)]),
        ("+ people", [text("people")]),
        ("  - people + beach", [text("people", -1.0), text("beach")]),
        ("- 2:people", [text("people", -2.0)]),
        # weights
        ("2:cat", [text("cat", 2.0)]),
        ("0.5:cat", [text("cat", 0.5)]),
        (
            "beach + 2:sunset - 0.5:people",
            [text("beach"), text("sunset", 2.0), text("people", -0.5)],
        ),
        ("- 2:x", [text("x", -2.0)]),
        ("cat - 3:dog", [text("cat"), text("dog", -3.0)]),
        ("10:a red car", [text("a red car", 10.0)]),
        ("12:30 sunset", [text("12:30 sunset")]),
        ("2: cat", [text("2: cat")]),
        ("ratio 2:1", [text("ratio 2:1")]),
        (".5:cat", [text(".5:cat")]),
        ("2.:cat", [text("2.:cat")]),
        ("note: cat", [text("note: cat")]),
        # quotes
        ('"a red car"', [text("a red car")]),
        ("'a red car'", [text("a red car")]),
        (
            '"a red car" + 2:sunset - 0.5:people',
            [text("a red car"), text("sunset", 2.0), text("people", -0.5)],
        ),
        ('"salt + pepper - sugar"', [text("salt + pepper - sugar")]),
        ('cat - "salt + pepper"', [text("cat"), text("salt + pepper", -1.0)]),
        ('2:"a - b"', [text("a - b", 2.0)]),
        ('"don\'t + stop"', [text("don't + stop")]),
        ("'say \"hi\" - now'", [text('say "hi" - now')]),
        ('"#42"', [text("#42")]),
        ('"  padded  "', [text("  padded  ")]),
        # ids
        ("#42", [id_(42)]),
        ("sunset + #42", [text("sunset"), id_(42)]),
        ("sunset - 2:#7", [text("sunset"), id_(7, -2.0)]),
        ("#007", [id_(7)]),
        ("#0", [id_(0)]),
        ("#abc", [text("#abc")]),
        ("#42 sunset", [text("#42 sunset")]),
        ("#-1", [text("#-1")]),
        # image paths (the library's check decides)
        ("cat - ./photos/dog.jpg", [text("cat"), image("./photos/dog.jpg", -1.0)]),
        ("dog.png", [image("dog.png")]),
        ("2:dog.png + beach", [image("dog.png", 2.0), text("beach")]),
        ("cat.png", [text("cat.png")]),
        ('"my photos/a - b.jpg" - cat', [image("my photos/a - b.jpg"), text("cat", -1.0)]),
        ("#7.jpg", [image("#7.jpg")]),
    ],
)
def test_parse_query(query: str, expected: list[QueryPart]) -> None:
    assert parse_query(query, is_image_path=IMAGES) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "query is empty"),
        ("   \t ", "query is empty"),
        ("cat + ", "empty query part after '+'"),
        ("cat +", "empty query part after '+'"),
        ("cat -", "empty query part after '-'"),
        ("cat + + dog", "empty query part after '+'"),
        ("cat - + dog", "empty query part after '-'"),
        ("+", "empty query part after '+'"),
        ("- ", "empty query part after '-'"),
        ('""', "empty query part at the start"),
        ("cat + ''", "empty query part after '+'"),
        ("0:cat", "weight 0 in '0:cat'"),
        ("cat - 0.0:dog", "weight 0 in '0.0:dog'"),
        ('"a red car', 'unclosed quote " at position 1'),
        ("cat + 'a red car", "unclosed quote ' at position 7"),
        ("'90s music", "unclosed quote"),
        ('"a red" car', "unexpected text after the closing quote"),
        ('"a" "b"', "unexpected text after the closing quote"),
        ('"a"+b', "unexpected text after the closing quote"),
        ("#9223372036854775808", "out of range"),
        ("x" * (MAX_QUERY_LENGTH + 1), f"at most {MAX_QUERY_LENGTH}"),
        ("cat + " * 400, "too long"),
    ],
)
def test_parse_query_errors(query: str, message: str) -> None:
    with pytest.raises(QueryError) as excinfo:
        parse_query(query, is_image_path=IMAGES)
    assert message in str(excinfo.value)
    assert isinstance(excinfo.value, ImagefindError)


def test_parse_query_accepts_the_longest_query() -> None:
    assert parse_query("x" * MAX_QUERY_LENGTH) == [text("x" * MAX_QUERY_LENGTH)]


def test_parse_query_largest_id() -> None:
    assert parse_query("#9223372036854775807") == [id_(2**63 - 1)]


def test_is_image_path_sees_stripped_unquoted_parts() -> None:
    seen: list[str] = []

    def spy(part: str) -> bool:
        seen.append(part)
        return False

    parse_query('  cat  +  2:"a dog "  - #3', is_image_path=spy)
    assert seen == ["cat", "a dog "]  # ids are never asked about


@pytest.mark.parametrize("suffix", [".jpg", ".JPEG", ".png", ".webp", ".heic", ".avif", ".tiff"])
def test_default_image_check_takes_existing_image_files(tmp_path, monkeypatch, suffix) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / f"dog{suffix}").write_bytes(b"not checked here")
    assert parse_query(f"cat - dog{suffix}") == [text("cat"), image(f"dog{suffix}", -1.0)]


@pytest.mark.parametrize(
    ("make", "part"),
    [
        (None, "missing.jpg"),  # no such file
        ("notes.txt", "notes.txt"),  # a file, but not an image suffix
        ("dir.jpg/", "dir.jpg"),  # a directory named like an image
    ],
)
def test_default_image_check_rejects_others(tmp_path, monkeypatch, make, part) -> None:
    monkeypatch.chdir(tmp_path)
    if make and make.endswith("/"):
        (tmp_path / make).mkdir()
    elif make:
        (tmp_path / make).write_text("x")
    assert parse_query(part) == [text(part)]


def test_query_part_is_frozen() -> None:
    part = text("cat")
    with pytest.raises(AttributeError):
        part.weight = 2.0  # type: ignore[misc]


# --- combine ----------------------------------------------------------------------------


def unit(d: int, i: int) -> np.ndarray:
    v = np.zeros(d, dtype=np.float32)
    v[i] = 1.0
    return v


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.mark.parametrize("scale", [1.0, 0.01, 250.0])
def test_combine_single_vector_is_its_direction(scale: float) -> None:
    v = np.array([[3.0, 4.0]], dtype=np.float32) * scale
    np.testing.assert_allclose(combine(v, [1.0]), [0.6, 0.8], rtol=1e-6)


@pytest.mark.parametrize("weight", [0.5, 1.0, 7.0])
def test_combine_positive_weight_of_one_part_does_not_matter(weight: float) -> None:
    np.testing.assert_allclose(combine(np.array([[1.0, 1.0]]), [weight]), [2**-0.5] * 2, rtol=1e-6)


def test_combine_negative_single_part_points_opposite() -> None:
    np.testing.assert_allclose(combine(np.array([[0.0, 2.0]]), [-1.0]), [0.0, -1.0])


def test_combine_output_is_unit_float32_vector(rng) -> None:
    vecs = rng.normal(size=(5, 64))
    out = combine(vecs, [1.0, -0.5, 2.0, 1.0, -1.0])
    assert out.dtype == np.float32
    assert out.shape == (64,)
    assert np.linalg.norm(out) == pytest.approx(1.0, abs=1e-6)


def test_combine_subtraction_points_away_from_the_subtracted() -> None:
    e1, e2 = unit(8, 0), unit(8, 1)
    out = combine(np.stack([e1, e2]), [1.0, -1.0])
    assert out @ e2 < 0 < out @ e1
    np.testing.assert_allclose(out, (e1 - e2) / np.sqrt(2), atol=1e-7)


def test_combine_subtraction_lowers_similarity_to_the_subtracted(rng) -> None:
    a, b = rng.normal(size=(2, 32))
    b_unit = b / np.linalg.norm(b)
    alone = combine(a[None], [1.0])
    minus = combine(np.stack([a, b]), [1.0, -1.0])
    assert minus @ b_unit < alone @ b_unit


@pytest.mark.parametrize(("w1", "w2"), [(1.0, 1.0), (2.0, 1.0), (1.0, 3.0), (0.5, 0.25)])
def test_combine_weights_scale_contributions(w1: float, w2: float) -> None:
    out = combine(np.stack([unit(4, 0), unit(4, 1)]), [w1, w2])
    assert out[1] / out[0] == pytest.approx(w2 / w1)


def test_combine_normalises_rows_before_weighting() -> None:
    # A part's raw magnitude must not outweigh the weight it was given.
    out = combine(np.stack([unit(2, 0) * 100, unit(2, 1) * 0.01]), [1.0, 1.0])
    np.testing.assert_allclose(out, [2**-0.5, 2**-0.5], rtol=1e-6)


def test_combine_is_scale_invariant_in_weights(rng) -> None:
    vecs = rng.normal(size=(3, 16))
    np.testing.assert_allclose(
        combine(vecs, [1.0, -2.0, 0.5]), combine(vecs, [10.0, -20.0, 5.0]), atol=1e-6
    )


@pytest.mark.parametrize(
    ("vectors", "weights"),
    [
        ([[1.0, 0.0], [1.0, 0.0]], [1.0, -1.0]),  # cat - cat
        ([[2.0, 0.0], [5.0, 0.0]], [1.0, -1.0]),  # same direction, other scales
        ([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [1.0, 1.0, -(2**0.5)]),
    ],
)
def test_combine_cancelling_parts_raise(vectors, weights) -> None:
    with pytest.raises(QueryError, match="cancel"):
        combine(np.array(vectors), weights)


def test_combine_zero_vector_raises() -> None:
    with pytest.raises(QueryError, match="all-zero vector"):
        combine(np.array([[1.0, 0.0], [0.0, 0.0]]), [1.0, 1.0])


@pytest.mark.parametrize(
    ("vectors", "weights"),
    [
        (np.zeros((0, 4)), []),
        (np.ones(4), [1.0]),
        (np.ones((2, 4)), [1.0]),
        (np.ones((2, 4)), [1.0, 1.0, 1.0]),
        (np.array([[np.nan, 1.0]]), [1.0]),
        (np.ones((1, 2)), [float("inf")]),
    ],
)
def test_combine_rejects_malformed_input(vectors, weights) -> None:
    with pytest.raises(ValueError):
        combine(vectors, weights)


def test_parse_then_combine() -> None:
    # How the library uses the two: one vector per part, weights from the parts.
    parts = parse_query("beach + 2:sunset - people")
    vectors = {"beach": unit(3, 0), "sunset": unit(3, 1), "people": unit(3, 2)}
    out = combine(np.stack([vectors[str(p.value)] for p in parts]), [p.weight for p in parts])
    np.testing.assert_allclose(out, np.array([1.0, 2.0, -1.0]) / np.sqrt(6), rtol=1e-6)


def test_too_many_parts_is_refused() -> None:
    assert len(parse_query(" + ".join(["cat"] * MAX_PARTS))) == MAX_PARTS
    with pytest.raises(QueryError, match="parts"):
        parse_query(" + ".join(["cat"] * (MAX_PARTS + 1)))


@pytest.mark.parametrize(
    ("arg", "expected"),
    [("#3", 3), ("3", "3"), ("./3", "./3"), ("photo.jpg", "photo.jpg"), ("#0042", 42)],
)
def test_parse_image_reads_ids_only_with_a_hash(arg: str, expected: int | str) -> None:
    assert parse_image(arg) == expected


@pytest.mark.parametrize(
    ("arg", "message"),
    [("#abc", "'#abc' is not an image id"), ("#", "./#"), (f"#{2**63}", "out of range")],
)
def test_parse_image_refuses_a_hash_without_an_id(arg: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_image(arg)
