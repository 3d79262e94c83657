"""OGC API – Features (Part 1 Core, GeoJSON; Part 2 CRS by reference) under /ogc.

Hand-written and thin over `gridkit.io.export_features` (pygeoapi would bring its own config,
providers and HTML, and knows nothing of gridkit's role rules). Read-only and public: personal
fields are never served. Errors are OGC exception documents {"code", "description"}.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from flask import Blueprint, Response, jsonify, request, url_for

from gridkit.errors import GridkitError, NotFound, ValidationError
from gridkit.io import export_features as provider
from web.database import db_session
from web.i18n import current_language, t
from web.params import INT_MAX

bp = Blueprint("ogc", __name__, url_prefix="/ogc")

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
]
ITEM_PARAMS = {"f", "lang", "bbox", "bbox-crs", "limit", "offset", "after", "datetime", "crs"}
# A page's place in a next link: `after` (the last code of the page before: keyset paging, an index read
# however deep) and `offset`, which then only numbers the page (for its prev link).
GEOJSON = "application/geo+json"


def _json(data, status: int = 200, mimetype: str = "application/json", headers=None) -> Response:
    response = jsonify(data)
    response.status_code = status
    response.mimetype = mimetype
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _link(href: str, rel: str, type_: str = "application/json", title: str | None = None) -> dict:
    link = {"href": href, "rel": rel, "type": type_}
    if title:
        link["title"] = title
    return link


def _url(endpoint: str, **values) -> str:
    return url_for(endpoint, _external=True, **values)


@bp.errorhandler(GridkitError)
def _error(exc: GridkitError):
    return _json({"code": exc.code, "description": exc.render(current_language())}, exc.status)


@bp.get("/")
@bp.get("")
def landing():
    """The landing page: links to the API definition, conformance and collections."""
    return _json(
        {
            "title": t("ogc.title"),
            "description": t("ogc.description"),
            "links": [
                _link(_url("ogc.landing"), "self"),
                _link(_url("ogc.api"), "service-desc", "application/vnd.oai.openapi+json;version=3.0"),
                _link(_url("ogc.conformance"), "conformance"),
                _link(_url("ogc.collections_list"), "data"),
            ],
        }
    )


@bp.get("/conformance")
def conformance():
    """The conformance classes implemented."""
    return _json({"conformsTo": CONFORMANCE})


@bp.get("/api")
def api():
    """A minimal OpenAPI 3.0 description of the paths."""
    item_params = [
        {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
        for n in sorted(ITEM_PARAMS - {"f", "lang"})
    ]
    return _json(
        {
            "openapi": "3.0.2",
            "info": {"title": "gridkit OGC API – Features", "version": "1.0.0"},
            "paths": {
                "/": {"get": {"responses": {"200": {"description": "landing page"}}}},
                "/conformance": {"get": {"responses": {"200": {"description": "conformance"}}}},
                "/collections": {"get": {"responses": {"200": {"description": "collections"}}}},
                "/collections/{collectionId}": {"get": {"responses": {"200": {"description": "collection"}}}},
                "/collections/{collectionId}/items": {
                    "get": {"parameters": item_params, "responses": {"200": {"description": "items"}}}
                },
                "/collections/{collectionId}/items/{featureId}": {
                    "get": {"responses": {"200": {"description": "feature"}}}
                },
            },
        },
        mimetype="application/vnd.oai.openapi+json;version=3.0",
    )


def _collection_doc(c: provider.Collection) -> dict:
    session = db_session()
    box = provider.extent(session, c)
    doc = {
        "id": c.id,
        "title": c.title,
        "itemType": "feature",
        "links": [
            _link(_url("ogc.collection_doc", collection_id=c.id), "self"),
            _link(_url("ogc.items_page", collection_id=c.id), "items", GEOJSON),
        ],
        "crs": provider.crs_uris(provider.offered_epsg(session)),
        "storageCrs": provider.EPSG_URI.format(provider.SRID),
    }
    if box:
        doc["extent"] = {"spatial": {"bbox": [box], "crs": provider.CRS84}}
    return doc


@bp.get("/collections")
def collections_list():
    """Every collection with its extent and CRSs."""
    docs = [_collection_doc(c) for c in provider.collections(db_session())]
    return _json(
        {
            "links": [_link(_url("ogc.collections_list"), "self")],
            "collections": docs,
            "crs": provider.crs_uris(provider.offered_epsg(db_session())),
        }
    )


@bp.get("/collections/<collection_id>")
def collection_doc(collection_id: str):
    """One collection."""
    return _json(_collection_doc(provider.collection(db_session(), collection_id)))


def _int(name: str, default: int, low: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError("ogc.bad_number", name=name, value=raw) from None
    # Up to PostgreSQL's integer range: a larger offset was refused by the database (bigint out of range).
    if not low <= value <= INT_MAX:
        raise ValidationError("ogc.bad_number", name=name, value=raw[:40])
    return value


def _bbox():
    raw = request.args.get("bbox")
    if not raw:
        return None
    try:
        values = [float(v) for v in raw.split(",")]
    except ValueError:
        raise ValidationError("ogc.bad_bbox", bbox=raw) from None
    if len(values) == 6:  # 3D box: the heights are ignored
        values = [values[0], values[1], values[3], values[4]]
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ValidationError("ogc.bad_bbox", bbox=raw)
    return values


@bp.get("/collections/<collection_id>/items")
def items_page(collection_id: str):
    """A page of features: bbox, bbox-crs, datetime, property filters, limit, offset, crs."""
    session = db_session()
    c = provider.collection(session, collection_id)
    names = {n for n, _ in provider.public_fields(c)}
    unknown = sorted(set(request.args) - ITEM_PARAMS - names)
    if unknown:
        raise ValidationError(
            "ogc.unknown_parameter", names=", ".join(unknown), allowed=", ".join(sorted(ITEM_PARAMS | names))
        )
    limit = min(_int("limit", provider.DEFAULT_LIMIT, 1), provider.MAX_LIMIT)
    offset = _int("offset", 0, 0)
    after = request.args.get("after") or None
    crs = request.args.get("crs")
    features, matched = provider.items(
        session,
        c,
        bbox=_bbox(),
        bbox_crs=request.args.get("bbox-crs"),
        datetime_=request.args.get("datetime"),
        filters={k: v for k, v in request.args.items() if k in names},
        limit=limit,
        offset=0 if after is not None else offset,
        crs=crs,
        after=after,
    )
    base = {k: v for k, v in request.args.items() if k not in ("offset", "limit", "after")}
    here = {"after": after} if after is not None else {}
    links = [
        _link(_url("ogc.items_page", collection_id=c.id, limit=limit, offset=offset, **here, **base), "self", GEOJSON),
        _link(_url("ogc.collection_doc", collection_id=c.id), "collection"),
    ]
    if len(features) == limit and offset + limit < matched:
        last = {"after": features[-1]["id"]}
        links.append(
            _link(
                _url("ogc.items_page", collection_id=c.id, limit=limit, offset=offset + limit, **last, **base),
                "next",
                GEOJSON,
            )
        )
    if offset > 0:
        links.append(
            _link(
                _url("ogc.items_page", collection_id=c.id, limit=limit, offset=max(0, offset - limit), **base),
                "prev",
                GEOJSON,
            )
        )
    body = {
        "type": "FeatureCollection",
        "features": features,
        "links": links,
        "numberMatched": matched,
        "numberReturned": len(features),
        "timeStamp": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    }
    return _json(body, mimetype=GEOJSON, headers={"Content-Crs": f"<{crs or provider.CRS84}>"})


@bp.get("/collections/<collection_id>/items/<feature_id>")
def item(collection_id: str, feature_id: str):
    """One feature by its code."""
    session = db_session()
    c = provider.collection(session, collection_id)
    crs = request.args.get("crs")
    features, _ = provider.items(session, c, feature_id=feature_id, limit=1, crs=crs)
    if not features:
        raise NotFound("ogc.unknown_feature", feature=feature_id, collection=collection_id)
    feature = dict(
        features[0],
        links=[
            _link(_url("ogc.item", collection_id=c.id, feature_id=feature_id), "self", GEOJSON),
            _link(_url("ogc.collection_doc", collection_id=c.id), "collection"),
        ],
    )
    return _json(feature, mimetype=GEOJSON, headers={"Content-Crs": f"<{crs or provider.CRS84}>"})
