"""`capflow serve`: a page to search, filter and watch the dataset, and its JSON API.

FastAPI on uvicorn; the table and the embedding model are opened once, when the app is
made. Loopback by default; on any other address a token is required, and then every
request carries it (`Authorization: Bearer T`, a `token` query parameter, or the cookie
the page sets). Every asset is served from `flows/static/`: no CDN. Model output reaches
the page as JSON and is put into it as text, never as markup.
"""

import hmac
from pathlib import Path
from typing import Any

STATIC = Path(__file__).parent / "static"
HIT_EXTRA = ["clip_id", "thumbnail_uri", "preview_uri", "clip_uri", "duration_s", "motion_score",
             "key", "text_area"]  # fmt: skip
LOOPBACK = ("127.0.0.1", "localhost", "::1")


RANGES = (("aesthetic", "aesthetic_score"), ("motion", "motion_score"), ("duration", "duration_s"))


class Filters:
    """The page's filters as one SQL predicate over the clips table (duplicates out)."""

    @staticmethod
    def where(params: dict[str, Any], columns: set[str]) -> str | None:
        from storage.lance_store import sql_str

        clauses = ["duplicate_of IS NULL"] if "duplicate_of" in columns else []
        for name, column in RANGES:
            for bound, op in (("min", ">="), ("max", "<=")):
                value = params.get(f"{bound}_{name}")
                if value not in (None, "") and column in columns:
                    clauses.append(f"{column} {op} {float(value)!r}")
        if params.get("prefix"):
            pattern = str(params["prefix"]).replace("%", "").replace("_", "\\_") + "%"
            clauses.append(f"key LIKE {sql_str(pattern)}")
        if params.get("caption_model"):
            clauses.append(f"caption_model = {sql_str(str(params['caption_model']))}")
        if params.get("since"):
            clauses.append(f"created_at >= timestamp {sql_str(str(params['since']))}")
        return " AND ".join(clauses) or None


def _media_path(uri: str | None) -> Path | None:
    if uri and uri.startswith("file://"):
        return Path(uri.removeprefix("file://"))
    return None


def create_app(config: Any, token: str | None = None) -> Any:
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
    from fastapi.staticfiles import StaticFiles

    from flows.dataset import clip_record, dataset_status
    from storage import schema
    from storage.lance_store import LanceStore, sql_str
    from tasks.embed import load_embedder

    store = LanceStore(config.lance_uri, config.lance_storage_options())
    embedder = load_embedder(config.embed.model, config.embed.device, config.embed.batch_size)
    # No /docs or /redoc: FastAPI's pages load Swagger UI and ReDoc from a CDN. The schema
    # itself is at /openapi.json.
    app = FastAPI(title="capflow", description="Search, filter and watch a capflow dataset.",
                  docs_url=None, redoc_url=None)  # fmt: skip

    @app.middleware("http")
    async def require_token(request: Request, call_next: Any) -> Any:
        if token:
            given = (
                request.headers.get("authorization", "").removeprefix("Bearer ").strip()
                or request.query_params.get("token", "")
                or request.cookies.get("capflow_token", "")
            )
            if not hmac.compare_digest(given.encode(), token.encode()):
                return JSONResponse({"detail": "a token is required"}, status_code=401)
        response = await call_next(request)
        if token and request.query_params.get("token"):
            response.set_cookie("capflow_token", token, httponly=True, samesite="strict")
        return response

    def columns() -> set[str]:
        table = store.open_table(schema.CLIPS)
        return set() if table is None else set(table.schema.names)

    @app.get("/api/search")
    def search(request: Request, q: str = "", mode: str = "vector", like: str = "",
               k: int = 20, offset: int = 0) -> dict[str, Any]:  # fmt: skip
        """Clips by text (vector, full-text or hybrid) or like a clip (its stored
        embedding), filtered (min_/max_aesthetic, _motion, _duration; prefix,
        caption_model, since), a page of `k` from `offset`."""
        if not 1 <= k <= 200 or offset < 0:
            raise HTTPException(400, "k is 1..200 and offset at least 0")
        have_columns = columns()  # one look at the schema per request
        where = Filters.where(dict(request.query_params), have_columns)
        want = k + offset
        extra = HIT_EXTRA  # one query: the hit's media and scores come with it
        if like:
            row = store.rows(schema.CLIPS, f"clip_id = {sql_str(like)}", ["text_embedding"])
            if not row:
                raise HTTPException(404, f"no clip {like}")
            hits = store.search(list(row[0]["text_embedding"]), want + 1, where, columns=extra)
            hits = [h for h in hits if h.clip_id != like]
        elif not q:  # browse: a page of the filtered clips, in the table's order
            table = store.open_table(schema.CLIPS)
            if table is None:
                return {"hits": []}
            have = [c for c in ("clip_id", "key", "start_s", "end_s", "caption", "source",
                                "aesthetic_score", *HIT_EXTRA) if c in have_columns]  # fmt: skip
            query = table.search()
            if where:
                query = query.where(where)
            rows = query.select(list(dict.fromkeys(have))).offset(offset).limit(k).to_list()
            return {"hits": [_public(r) for r in rows]}
        elif mode == "fts":
            hits = store.search(None, want, where, text=q, columns=extra)
        else:
            [vector] = embedder.embed([q])
            text = q if mode == "hybrid" else None
            hits = store.search(vector.tolist(), want, where, text=text, columns=extra)
        return {"hits": [_public(h.to_dict()) for h in hits[offset:want]]}

    @app.get("/api/clips/{clip_id}")
    def clip(clip_id: str) -> dict[str, Any]:
        """One clip: its record, keyframe times, differential captions, caption versions."""
        record = clip_record(store, clip_id)
        if record is None:
            raise HTTPException(404, f"no clip {clip_id}")
        return _public(record)

    @app.get("/api/stats")
    def stats() -> dict[str, Any]:
        """Counts by state and source, quarantine reasons, and score histograms."""
        import numpy as np

        status = dataset_status(store)
        table_columns = set(status["columns"])
        have = [c for c in ("aesthetic_score", "motion_score", "duration_s", "key")
                if c in table_columns]  # fmt: skip
        kept = "duplicate_of IS NULL" if "duplicate_of" in table_columns else None
        rows = store.rows(schema.CLIPS, kept, have)
        hist = {}
        for column, edges in (("aesthetic_score", np.linspace(0, 10, 11)),
                              ("motion_score", np.linspace(0, 0.5, 11)),
                              ("duration_s", np.linspace(0, 30, 11))):  # fmt: skip
            values = [r[column] for r in rows if r.get(column) is not None]
            counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
            hist[column] = {"edges": edges.round(3).tolist(), "counts": counts.tolist()}
        by_source: dict[str, int] = {}
        for r in rows:
            by_source[r["key"]] = by_source.get(r["key"], 0) + 1
        return {**status, "histograms": hist, "by_source": by_source}

    @app.get("/api/quarantine")
    def quarantine(offset: int = 0, limit: int = 100) -> dict[str, Any]:
        """Refused objects and clips with their reasons, a page at a time."""
        rows = store.rows(schema.QUARANTINE, None, ["key", "source", "stage", "reason", "detail",
                                                    "start_s", "end_s"])  # fmt: skip
        rows.sort(key=lambda r: (r["key"], r["start_s"] or 0))
        return {"total": len(rows), "rows": rows[offset : offset + limit]}

    @app.get("/media/{kind}/{clip_id}")
    def media(kind: str, clip_id: str) -> Any:
        """A clip's file, thumbnail or preview: from disk (with HTTP range requests) or a
        presigned S3 URL."""
        column = {"clip": "clip_uri", "thumb": "thumbnail_uri", "preview": "preview_uri"}.get(kind)
        if column is None or column not in columns():
            raise HTTPException(404, "no such media")
        rows = store.rows(schema.CLIPS, f"clip_id = {sql_str(clip_id)}", [column])
        uri = rows[0][column] if rows else None
        if not uri:
            raise HTTPException(404, "no file for this clip")
        local = _media_path(uri)
        if local is not None:
            return FileResponse(local)
        if uri.startswith("s3://"):
            from storage.s3 import make_client

            bucket, _, key = uri.removeprefix("s3://").partition("/")
            url = make_client(config.s3.options()).generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=600
            )
            return RedirectResponse(url)
        raise HTTPException(404, "no file for this clip")

    @app.get("/", include_in_schema=False)
    def index() -> Any:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """A row for the page: vectors out, media as this server's URLs, times as text."""
    from flows.dataset import readable

    out = readable(row)
    cid = row.get("clip_id")
    for column, kind in (
        ("clip_uri", "clip"),
        ("thumbnail_uri", "thumb"),
        ("preview_uri", "preview"),
    ):
        if column in out:
            out[column.removesuffix("_uri") + "_url"] = (
                f"/media/{kind}/{cid}" if out[column] else None
            )
            del out[column]
    return out


def check_bind(host: str, token: str | None) -> None:
    """Loopback needs no token; any other address does."""
    if host not in LOOPBACK and not token:
        raise ValueError(
            f"--host {host} is reachable from other machines: set a token (--token or "
            "CAPFLOW_SERVE_TOKEN), which every request must then carry"
        )
