"""Pseudonymised ids: configured values replaced by a keyed hash before anything is written.

With ``[ingest] pseudonymise = ["user_id", ...]`` every listed value is replaced, as the file
is read and before any row reaches a table, by

.. math::

    \\mathrm{pseudonym}(v) = \\mathrm{hex}(\\mathrm{HMAC\\text{-}SHA256}(K, \\mathrm{utf8}(v)))
    [0:32]

(RFC 2104: ``H((K' xor opad) || H((K' xor ipad) || m))`` with ``K'`` the key zero-padded to
the 64-byte block, or its SHA-256 when longer), computed inside DuckDB with its ``sha256`` on
BLOBs: the key's two padded blocks are session variables of the loading connection, never
SQL text, never stored. 32 hex characters keep 128 bits: ``n`` distinct ids collide with
probability below ``n^2 / 2^129`` (about 1.5e-21 for a billion ids). The same key and id
always give the same pseudonym, so sessions, duplicates, request ids and user history work
across files and runs; without the key a pseudonym cannot be traced back to its id, nor can
an id be tested against it (unlike a plain or salted hash, whose inputs can be guessed and
checked).

Blank values stay blank (they are "missing" to the row rules); NULL stays NULL.

The key comes from ``pseudonym_key_file`` (a file outside the warehouse's directory and the
datasets and runs directories) or else the environment variable ``pseudonym_key_env``. The
warehouse records only a keyed fingerprint of it (``HMAC(K, "offrec pseudonym key check")``,
16 hex) in table ``ingest_pseudonymisation``, so a later load with another key, other fields,
or none at all is refused instead of mixing two id spaces.

A leak guard (:func:`check_embedded_user_ids`) refuses a file in which a column left as it is
carries the raw user id (the simulator's ``u0000042-s0003`` session ids), and a CSV line
DuckDB cannot split is stored without its text (it cannot be pseudonymised field by field).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ingest.config import PSEUDONYM_FIELDS, IngestConfig
from ingest.errors import IngestError, MappingError
from ingest.mapping import Mapping
from sql.loader import run_sql

__all__ = [
    "PSEUDONYM_HEX",
    "MIN_KEY_BYTES",
    "PseudonymKey",
    "load_pseudonym_key",
    "pseudonymise_ids",
    "pseudonym_columns",
    "check_embedded_user_ids",
    "LEAK_SAMPLE_ROWS",
    "LEAK_SHARE",
    "install_pseudonymiser",
    "check_pseudonym_record",
    "pseudonymisation_record",
    "redact",
]

#: Hex characters kept of the 64-character HMAC-SHA256 (128 bits).
PSEUDONYM_HEX = 32
#: Shortest key accepted (bytes); 32 random bytes (``openssl rand -hex 32``) is the advice.
MIN_KEY_BYTES = 16

#: Rows of each file the leak guard reads, and the share of them that refuses the file.
LEAK_SAMPLE_ROWS = 10_000
LEAK_SHARE = 0.5

_BLOCK = 64
_CHECK_MESSAGE = b"offrec pseudonym key check"
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


@dataclass(frozen=True)
class PseudonymKey:
    """A secret HMAC key and where it came from; ``repr`` and ``str`` never show the secret."""

    origin: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_KEY_BYTES:
            raise IngestError(
                f"the pseudonym key from {self.origin} is {len(self.secret)} byte(s); use at "
                f"least {MIN_KEY_BYTES} random bytes, e.g. the output of `openssl rand -hex 32`"
            )

    def __str__(self) -> str:
        return f"pseudonym key from {self.origin}"

    def pseudonym(self, value: str) -> str:
        """The pseudonym of one id (what ingest stores for it); blank stays as it is."""
        if value.strip() == "":
            return value
        digest = hmac.new(self.secret, value.encode("utf-8"), hashlib.sha256).hexdigest()
        return digest[:PSEUDONYM_HEX]

    def fingerprint(self) -> str:
        """A keyed fingerprint (16 hex) that identifies the key without revealing it."""
        return hmac.new(self.secret, _CHECK_MESSAGE, hashlib.sha256).hexdigest()[:16]

    def pads(self) -> tuple[bytes, bytes]:
        """``(K' xor ipad, K' xor opad)``: the two 64-byte blocks of RFC 2104."""
        k = self.secret if len(self.secret) <= _BLOCK else hashlib.sha256(self.secret).digest()
        k = k.ljust(_BLOCK, b"\0")
        return bytes(b ^ 0x36 for b in k), bytes(b ^ 0x5C for b in k)


def load_pseudonym_key(
    cfg: IngestConfig,
    *,
    warehouse: Path | str | None = None,
    protected: Sequence[Path | str] = (),
) -> PseudonymKey | None:
    """The key ``cfg`` points at, or None when ``cfg.pseudonymise`` is empty.

    ``pseudonym_key_file`` wins over ``pseudonym_key_env``. The file must not lie in the
    warehouse file's directory (or below it) nor under any ``protected`` directory (the
    datasets and runs directories): a key stored beside the data it protects protects nothing.
    Trailing newlines of the file are ignored. Raises :class:`IngestError` naming the
    variable or file when the key is missing, empty, too short or misplaced.
    """
    if not cfg.pseudonymise:
        return None
    fields = ", ".join(cfg.pseudonymise)
    if cfg.pseudonym_key_file is not None:
        path = Path(cfg.pseudonym_key_file).expanduser()
        _check_key_place(path, warehouse, protected)
        try:
            secret = path.read_bytes().rstrip(b"\r\n")
        except FileNotFoundError:
            raise IngestError(
                f"[ingest] pseudonym_key_file = {str(path)!r}: no such file, and pseudonymise = "
                f"[{fields}] needs a key; create it (e.g. `openssl rand -hex 32 > {path}; "
                f"chmod 600 {path}`) or fix the path"
            ) from None
        except OSError as exc:
            raise IngestError(
                f"[ingest] pseudonym_key_file = {str(path)!r}: cannot read it "
                f"({exc.strerror or exc}); the user running offrec needs read access"
            ) from None
        if not secret.strip():
            raise IngestError(
                f"[ingest] pseudonym_key_file = {str(path)!r} is empty; write the key into it "
                "(e.g. `openssl rand -hex 32`)"
            )
        return PseudonymKey(f"file {path}", secret)
    name = cfg.pseudonym_key_env
    value = os.environ.get(name, "")
    if not value.strip():
        state = "is empty" if name in os.environ else "is not set"
        raise IngestError(
            f"[ingest] pseudonymise = [{fields}] needs a key, but environment variable {name} "
            f"{state} and [ingest] pseudonym_key_file is not set; export {name} (e.g. "
            f"`export {name}=$(openssl rand -hex 32)`, kept in your secret store: the same key "
            "must be used for every load) or set pseudonym_key_file"
        )
    return PseudonymKey(f"environment variable {name}", value.encode("utf-8"))


def _check_key_place(
    path: Path, warehouse: Path | str | None, protected: Sequence[Path | str]
) -> None:
    resolved = path.resolve()
    places: list[tuple[Path, str]] = []
    if warehouse is not None:
        places.append((Path(warehouse).resolve().parent, "the warehouse's directory"))
    places += [(Path(p).resolve(), f"directory {p}") for p in protected]
    for place, what in places:
        if resolved == place or place in resolved.parents:
            raise IngestError(
                f"[ingest] pseudonym_key_file = {str(path)!r} lies inside {what} ({place}), "
                "which holds data derived from the pseudonymised ids (and is copied and shared "
                "with it); keep the key elsewhere, e.g. /etc/offrec/pseudonym.key or "
                "~/.config/offrec/pseudonym.key, readable only by the user running offrec"
            )


def pseudonymise_ids(values: Iterable[str], cfg: IngestConfig) -> list[str]:
    """The pseudonyms ingest stores for raw ``values`` under ``cfg``'s key.

    For analysts and data-protection requests: find one user's rows with
    ``pseudonymise_ids(["u123"], cfg)[0]`` without ever storing the raw id.
    """
    key = load_pseudonym_key(cfg) if cfg.pseudonymise else None
    if key is None:
        raise IngestError(
            "[ingest] pseudonymise is empty: ids are stored as they are, there are no pseudonyms"
        )
    return [key.pseudonym(str(v)) for v in values]


def pseudonym_columns(
    columns: Sequence[str],
    resolve: dict[str, str | None],
    mapping: Mapping,
    fields: Sequence[str],
    path: str,
) -> tuple[str, ...]:
    """The source columns of one file whose values are pseudonymised, in file order.

    ``columns``: the file's columns; ``resolve``: source name -> the file's spelling (None when
    absent). A canonical field in ``fields`` selects its mapped source column; one mapped as
    ``per_row`` (its row's event id), and request_id when ``[responses]`` fall back to the
    event id, select the event_id column as well; a constant ``value`` selects nothing. Any
    other name must be a source column of the file that is not mapped to a typed field or a
    response flag, else :class:`MappingError` names it. A source column literally named like a
    listed canonical field is pseudonymised too (it would otherwise land in ``extra``).
    """
    lowered = {c.lower(): c for c in columns}
    mapped: dict[str, str] = {}  # file column -> canonical field
    for canon, spec in mapping.columns.items():
        if spec.kind == "column" and spec.name is not None:
            actual = resolve.get(spec.name)
            if actual is not None:
                mapped[actual] = canon
    flags = {resolve.get(c) for c in mapping.responses.values()} - {None}
    event_id_col = None
    eid = mapping.columns.get("event_id")
    if eid is not None and eid.kind == "column" and eid.name is not None:
        event_id_col = resolve.get(eid.name)

    chosen: set[str] = set()
    for name in fields:
        canon = name.lower()
        if canon in PSEUDONYM_FIELDS:
            spec = mapping.columns.get(canon)
            if spec is not None and spec.kind == "column" and spec.name is not None:
                actual = resolve.get(spec.name)
                if actual is not None:
                    chosen.add(actual)
            from_event_id = (spec is not None and spec.kind == "per_row") or (
                canon == "request_id" and bool(mapping.responses)
            )
            if from_event_id and event_id_col is not None:
                chosen.add(event_id_col)
            same_name = lowered.get(canon)
            if same_name is not None and same_name not in mapped and same_name not in flags:
                chosen.add(same_name)
            continue
        actual = resolve.get(name)
        if actual is None:
            raise MappingError(
                f"{path}: [ingest] pseudonymise lists {name!r}, which is neither an id field "
                f"({', '.join(PSEUDONYM_FIELDS)}) nor a column of this file (columns: "
                f"{', '.join(repr(c) for c in columns[:12])}{' …' if len(columns) > 12 else ''})"
                "; fix the name, or remove it if this source does not have it"
            )
        canon_of = mapped.get(actual)
        if canon_of is not None and canon_of not in PSEUDONYM_FIELDS:
            raise MappingError(
                f"{path}: [ingest] pseudonymise lists {name!r}, the source column of "
                f"[columns] {canon_of} in mapping {mapping.name!r}; {canon_of} cannot be "
                "pseudonymised (the dataset needs its value)"
            )
        if actual in flags:
            raise MappingError(
                f"{path}: [ingest] pseudonymise lists {name!r}, a [responses] flag column of "
                f"mapping {mapping.name!r}; flags are 0/1 values, not ids: remove it"
            )
        chosen.add(actual)
    return tuple(c for c in columns if c in chosen)


def check_embedded_user_ids(
    con: duckdb.DuckDBPyConnection,
    columns: Sequence[str],
    resolve: dict[str, str | None],
    mapping: Mapping,
    fields: Sequence[str],
    chosen: Sequence[str],
    path: str,
) -> None:
    """The leak guard: refuse a file in which a column left as it is holds the raw user id.

    Runs when ``user_id`` is pseudonymised and read from a column. Over the first
    :data:`LEAK_SAMPLE_ROWS` rows of the file (temp view ``_offrec_file``), every column that
    is not pseudonymised and is an id field (session, request, event or item id) or unmapped
    (it would land in ``extra``) is tested: if in at least :data:`LEAK_SHARE` of the rows it
    equals the row's user id or has it as an alphanumeric token (``u42-s3`` holds ``u42``),
    :class:`MappingError` names the column and what to add to ``pseudonymise``. The message
    never quotes a value.
    """
    if "user_id" not in {f.lower() for f in fields}:
        return
    spec = mapping.columns.get("user_id")
    if spec is None or spec.kind != "column" or spec.name is None:
        return
    user_col = resolve.get(spec.name)
    if user_col is None:
        return
    mapped: dict[str, str] = {}
    for canon, cspec in mapping.columns.items():
        if cspec.kind == "column" and cspec.name is not None:
            actual = resolve.get(cspec.name)
            if actual is not None:
                mapped[actual] = canon
    flags = {resolve.get(c) for c in mapping.responses.values()} - {None}
    suggest: dict[str, str] = {}
    for col in columns:
        if col in chosen or col == user_col or col in flags:
            continue
        canon = mapped.get(col)
        if canon is None:
            suggest[col] = col
        elif canon in PSEUDONYM_FIELDS:
            suggest[col] = canon
    if not suggest:
        return
    con.execute("SET VARIABLE offrec_user_col = $v", {"v": [user_col]})
    con.execute("SET VARIABLE offrec_leak_cols = $v", {"v": list(suggest)})
    run_sql(con, "stg_pseudonym_embeds.sql")
    cur = run_sql(con, "stg_pseudonym_leaks.sql", {"sample": LEAK_SAMPLE_ROWS})
    names = [d[0] for d in cur.description]
    row = cur.fetchall()[0]
    n = int(row[0])
    leaks = [
        (name, float(share))
        for name, share in zip(names[1:], row[1:], strict=True)
        if share is not None and share >= LEAK_SHARE
    ]
    if not leaks:
        return
    parts = [
        f"column {name!r}"
        + (f" ([columns] {mapped[name]})" if name in mapped else " (unmapped: extra)")
        + f" holds the raw user id in {share:.0%}"
        for name, share in leaks
    ]
    add = ", ".join(repr(suggest[name]) for name, _ in leaks)
    raise MappingError(
        f"{path}: {'; '.join(parts)} of the first {n:,} rows with a user id (equal to it, or "
        "as a part such as '<user>-s3'); stored as it is, it would put raw user ids next to "
        f"their pseudonyms. Add {add} to [ingest] pseudonymise"
    )


def install_pseudonymiser(con: duckdb.DuckDBPyConnection, key: PseudonymKey) -> None:
    """Put the key's padded blocks into session variables of ``con`` (bound, not SQL text)."""
    ipad, opad = key.pads()
    con.execute("SET VARIABLE offrec_pseudo_ipad = $v", {"v": ipad})
    con.execute("SET VARIABLE offrec_pseudo_opad = $v", {"v": opad})
    con.execute("SET VARIABLE offrec_pseudo_hex = $v", {"v": PSEUDONYM_HEX})


def check_pseudonym_record(
    con: duckdb.DuckDBPyConnection, fields: Sequence[str], key: PseudonymKey | None
) -> None:
    """Refuse a load whose pseudonymisation differs from the warehouse's; record the first.

    Compares ``fields`` (case-insensitively, as a set) and the key's fingerprint with the row
    of ``ingest_pseudonymisation``. A warehouse with loaded files but no row holds raw ids; one
    with a row holds pseudonyms: mixing them would leave raw ids behind and split every user
    in two. A row over a warehouse with nothing loaded yet is simply replaced.
    """
    want = sorted({f.lower() for f in fields})
    record = pseudonymisation_record(con)
    loaded = int(con.execute("SELECT count(*) FROM ingest_log").fetchall()[0][0]) + int(
        con.execute("SELECT count(*) FROM (SELECT 1 FROM events LIMIT 1)").fetchall()[0][0]
    )
    if record and not loaded:  # recorded by a run that loaded nothing: not binding
        con.execute("DELETE FROM ingest_pseudonymisation")
        record = None
    if record:
        have_fields, have_print = record
        if key is None:
            raise IngestError(
                f"this warehouse holds pseudonymised ids (pseudonymise = {have_fields}); "
                "loading with [ingest] pseudonymise empty would store raw ids next to them. "
                f"Set pseudonymise = {have_fields} and the same key as before"
            )
        if have_fields != want:
            raise IngestError(
                f"[ingest] pseudonymise = {want}, but this warehouse was loaded with "
                f"pseudonymise = {have_fields}; use the same fields (or load into a new "
                "warehouse and reload every file)"
            )
        if have_print != key.fingerprint():
            raise IngestError(
                f"the {key} is not the key this warehouse was loaded with (its fingerprint "
                "differs); the same id would get another pseudonym and users would split in "
                "two. Use the original key, or load every file into a new warehouse with the "
                "new one"
            )
        return
    if key is None:
        return
    if loaded:
        raise IngestError(
            f"[ingest] pseudonymise = {want} is set, but this warehouse already holds files "
            "loaded without it (raw ids); pseudonymised and raw ids cannot be mixed. Load every "
            "file into a new warehouse (set [paths] warehouse or --warehouse)"
        )
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "INSERT INTO ingest_pseudonymisation VALUES ($fields, $fp, $hex, $at)",
            {
                "fields": want,
                "fp": key.fingerprint(),
                "hex": PSEUDONYM_HEX,
                "at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
            },
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def pseudonymisation_record(con: duckdb.DuckDBPyConnection) -> tuple[list[str], str] | None:
    """``(fields, key fingerprint)`` when the warehouse holds pseudonymised ids, else None.

    None too for a warehouse from before the ``ingest_pseudonymisation`` table existed.
    """
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = $t "
        "AND table_schema = current_schema()",
        {"t": "ingest_pseudonymisation"},
    ).fetchall()[0][0]
    if not exists:
        return None
    row = con.execute(
        "SELECT fields, key_fingerprint FROM ingest_pseudonymisation LIMIT 1"
    ).fetchall()
    return (list(row[0][0]), str(row[0][1])) if row else None


def redact(text: str) -> str:
    """``text`` with quoted parts ('…' or "…") blanked: DuckDB errors may quote row values."""
    return _QUOTED.sub("'…'", text)
