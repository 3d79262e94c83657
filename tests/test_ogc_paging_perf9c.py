"""OGC API – Features pages by keyset: the next links carry the page's last code (`after`), and following them
walks every feature exactly once, in code order, as explicit offsets (still honoured) and one big page give
them, with or without a filter; a page after a code starts right after it."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from factories_exports import C1
from test_ogc import client, ogc_settings  # noqa: F401  (the module's city and its app)


def _walk(client, url: str) -> tuple[list[str], list[dict]]:  # noqa: F811  (the fixture)
    """Follow the next links from `url`; return the feature ids in order and the query of every next link."""
    ids, nexts = [], []
    while url:
        body = client.get(url).get_json()
        ids += [f["id"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
        if url:
            parts = urlsplit(url)
            nexts.append(parse_qs(parts.query))
            url = f"{parts.path}?{parts.query}"
    return ids, nexts


@pytest.mark.parametrize(
    "collection, query",
    [("base-cells", ""), ("buildings", ""), ("incidents", ""), ("buildings", f"&community={C1}"), ("admin-units", "")],
)
def test_next_links_walk_every_feature_once_as_offsets_do(client, collection, query):  # noqa: F811
    everything = client.get(f"/ogc/collections/{collection}/items?limit=10000{query}").get_json()
    expected = [f["id"] for f in everything["features"]]
    assert expected == sorted(expected) and len(expected) == everything["numberMatched"] > 2
    walked, nexts = _walk(client, f"/ogc/collections/{collection}/items?limit=2{query}")
    assert walked == expected
    # Every next link is a keyset link: the last code of the page before, and the page's offset for its number.
    assert nexts and all(n["after"] == [expected[2 * k + 1]] for k, n in enumerate(nexts))
    assert all(n["offset"] == [str(2 * (k + 1))] for k, n in enumerate(nexts))
    # Explicit offsets (no after) give the same pages.
    by_offset = []
    for offset in range(0, len(expected), 2):
        page = client.get(f"/ogc/collections/{collection}/items?limit=2&offset={offset}{query}").get_json()
        by_offset += [f["id"] for f in page["features"]]
        assert page["numberMatched"] == len(expected)
    assert by_offset == expected


def test_a_page_after_a_code_starts_right_after_it(client):  # noqa: F811
    codes = [f["id"] for f in client.get("/ogc/collections/base-cells/items?limit=100").get_json()["features"]]
    page = client.get(f"/ogc/collections/base-cells/items?limit=3&after={codes[4]}&offset=5").get_json()
    assert [f["id"] for f in page["features"]] == codes[5:8]
    assert page["numberMatched"] == len(codes)
    prev = next(link["href"] for link in page["links"] if link["rel"] == "prev")
    assert "offset=2" in prev and "after" not in prev
    # A code between two codes, or past the last one.
    between = client.get(f"/ogc/collections/base-cells/items?limit=2&after={codes[4]}0").get_json()
    assert [f["id"] for f in between["features"]] == codes[5:7]
    past = client.get(f"/ogc/collections/base-cells/items?after={codes[-1]}").get_json()
    assert past["features"] == [] and "next" not in {link["rel"] for link in past["links"]}
