"""What is in the dataset, and where it is: the functions behind `capflow status`,
`capflow show` and finding the table the last run in this folder wrote.

`run`, `backfill --local` and `demo` leave `.capflow/last.json` in the folder they ran
in (the table's URI, the command, when), so `capflow search`, `status` and `show`
without `--lance-uri` open that table rather than an empty default.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # lancedb loads with the first command that reads a table
    from storage.lance_store import LanceStore

POINTER = Path(".capflow") / "last.json"
DEFAULT_LANCE_URI = "./capflow-lance"


class NoTable(LookupError):
    """No table where the settings point, nor one a run here left behind."""


def remember_table(lance_uri: str, command: str, folder: Path | None = None) -> None:
    """Note in this folder which table a run just wrote."""
    path = (folder or Path.cwd()) / POINTER
    path.parent.mkdir(parents=True, exist_ok=True)
    uri = lance_uri if "://" in lance_uri else str(Path(lance_uri).resolve())
    at = datetime.now(UTC).isoformat(timespec="seconds")
    path.write_text(json.dumps({"lance_uri": uri, "command": command, "at": at}) + "\n")


def _exists(uri: str) -> bool:
    return "://" in uri or (Path(uri) / "clips.lance").exists()  # storage.schema.CLIPS


def find_table(configured: str, explicit: bool, folder: Path | None = None) -> tuple[str, str]:
    """(the table's URI, how it was found). An explicit setting (flag, file, environment)
    is used as given; the default is used when a table is there, else the last run's."""
    if explicit or _exists(configured):
        return configured, ""
    pointer = (folder or Path.cwd()) / POINTER
    if pointer.exists():
        last = json.loads(pointer.read_text())
        if _exists(last["lance_uri"]):
            return last["lance_uri"], f"the table the last `{last['command']}` here wrote"
    raise NoTable(
        f"no clips table at {configured}, and no run in this folder left one "
        f"({POINTER}): pass --lance-uri (or set lance_uri / CAPFLOW_LANCE_URI)"
    )


def dataset_status(store: LanceStore, runs: int = 5) -> dict[str, Any]:
    """Objects by state, clips (and how many are marked duplicates), quarantine by
    reason, and the last runs (by the ledger's entries)."""
    from storage import schema

    ledger = store.rows(schema.LEDGER, columns=["status", "run_id", "updated_at", "clips"])
    quarantine = store.rows(schema.QUARANTINE, columns=["reason"])
    clips = store.count(schema.CLIPS)
    table = store.open_table(schema.CLIPS)
    duplicates = (
        store.count(schema.CLIPS, "duplicate_of IS NOT NULL")
        if table is not None and "duplicate_of" in table.schema.names
        else 0
    )
    by_run: dict[str, dict[str, Any]] = {}
    for r in ledger:
        run = by_run.setdefault(r["run_id"], {"run_id": r["run_id"], "objects": 0, "clips": 0})
        run["objects"] += 1
        run["clips"] += int(r["clips"] or 0)
        when = r["updated_at"]
        if when is not None and (run.get("last") is None or when > run["last"]):
            run["last"] = when
    last = sorted(by_run.values(), key=lambda r: r.get("last") or datetime.min.replace(tzinfo=UTC))
    return {
        "lance_uri": store.uri,
        "objects": dict(sorted(Counter(r["status"] for r in ledger).items())),
        "clips": clips,
        "duplicates": duplicates,
        "quarantine": dict(sorted(Counter(r["reason"] for r in quarantine).items())),
        "runs": [
            {**r, "last": r["last"].isoformat() if r.get("last") else None}
            for r in reversed(last[-runs:])
        ],
        "columns": [] if table is None else list(table.schema.names),
    }


VECTORS = ("text_embedding", "image_embedding", "visual_fingerprint")


def readable(row: dict[str, Any], with_vectors: bool = False) -> dict[str, Any]:
    """A row as people and JSON read it: vectors out (unless asked for), times as ISO text."""
    return {
        k: v.isoformat() if hasattr(v, "isoformat") else v
        for k, v in row.items()
        if (with_vectors or k not in VECTORS) and not k.startswith("_")
    }


def clip_record(store: LanceStore, clip_id: str) -> dict[str, Any] | None:
    """One clip's row (vectors left out), its differential captions and its caption
    versions, newest first."""
    from storage import schema
    from storage.lance_store import sql_str

    row = store.clip(clip_id)
    if row is None:
        return None
    record = readable(row)
    versions = store.rows(schema.CAPTION_VERSIONS, f"clip_id = {sql_str(clip_id)}")
    versions.sort(key=lambda v: v.get("created_at") or datetime.min.replace(tzinfo=UTC))
    record["caption_versions"] = [
        readable({k: v for k, v in version.items() if k != "clip_id"})
        for version in reversed(versions)
    ]
    return record
