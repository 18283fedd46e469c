"""Shared test data locations and the "same records however the stream is split" harness."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

from gateway.providers.base import StreamParser
from gateway.providers.records import Record

REPO_ROOT = Path(__file__).resolve().parents[3]
"""The repository root: the parent of `tests/`."""
LOCAL_FIXTURES = REPO_ROOT / "tests" / "fixtures"
SHARED = LOCAL_FIXTURES / "shared"
"""Vendored copy of the shared fixtures and captures (see its README)."""

ParserFactory = Callable[[], StreamParser]


def _shared(name: str) -> Path:
    path = SHARED / name
    assert path.is_dir(), f"test data missing: {path}"
    return path


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """Recorded provider responses (tests/fixtures/shared/fixtures)."""
    return _shared("fixtures")


@pytest.fixture(scope="session")
def captures_dir() -> Path:
    """Requests real clients sent (tests/fixtures/shared/captures)."""
    return _shared("captures")


@pytest.fixture(scope="session")
def local_fixtures() -> Path:
    return LOCAL_FIXTURES


def chunks(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """`data` split at the given offsets (taken modulo len(data)+1, any order, duplicates ok)."""
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def run(make: ParserFactory, pieces: Sequence[bytes]) -> list[Record]:
    """Feed `pieces` then the end of input to a fresh parser; all records, in order."""
    parser = make()
    records: list[Record] = []
    for piece in pieces:
        if piece:
            records.extend(parser.feed(piece))
    records.extend(parser.feed(b""))
    return records


def feed_every_way(make: ParserFactory, data: bytes, seed: int = 0) -> list[Record]:
    """Records of `data` fed whole; asserts byte-by-byte and random splits give the same."""
    whole = run(make, [data])
    assert run(make, [data[i : i + 1] for i in range(len(data))]) == whole
    rng = random.Random(seed)
    for _ in range(5):
        cuts = [rng.randrange(len(data) + 1) for _ in range(rng.randrange(1, 40))]
        assert run(make, chunks(data, cuts)) == whole
    return whole


@pytest.fixture(scope="session")
def feed_all() -> Callable[[ParserFactory, bytes], list[Record]]:
    """`feed_all(make_parser, data)`: see `feed_every_way`."""
    return feed_every_way


@pytest.fixture(scope="session")
def feed_split() -> Callable[[ParserFactory, bytes, Iterable[int]], list[Record]]:
    """`feed_split(make_parser, data, cuts)`: records of `data` split at `cuts`."""
    return lambda make, data, cuts: run(make, chunks(data, cuts))


def json_documents(keys: Sequence[str], words: Sequence[str]) -> st.SearchStrategy[Any]:
    """JSON values biased towards a wire format's field names and values, for fuzzing."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.sampled_from(list(words))
        | st.text(max_size=12)
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(list(keys)) | st.text(max_size=6), children, max_size=6
            )
        ),
        max_leaves=30,
    )
