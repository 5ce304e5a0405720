"""[ingest] pseudonymise: keyed pseudonyms, where the key may come from, and no raw id stored."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ingest import (
    IngestConfig,
    IngestError,
    PseudonymKey,
    ingest_paths,
    load_pseudonym_key,
    parse_mapping,
    pseudonymise_ids,
)
from ingest.load import _message
from ingest.pseudonymise import PSEUDONYM_HEX, pseudonym_columns

KEY = "k3y-0f-the-test-suite-0123456789"
ENV = "OFFREC_TEST_PSEUDONYM_KEY"
IDS = ("user_id", "session_id", "request_id", "event_id")


def cfg(*fields: str, **over: Any) -> IngestConfig:
    base: dict[str, Any] = {
        "threads": 1,
        "memory_limit": "1GB",
        "max_rejected_share": 1.0,
        "pseudonymise": fields,
        "pseudonym_key_env": ENV,
    }
    return IngestConfig(**{**base, **over})


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(ENV, KEY)
    return KEY


def reference(value: str, key: str = KEY) -> str:
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]


def every_value(warehouse: Path) -> str:
    """Every value of every table of the warehouse as one text."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = [
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        ]
        parts = [
            json.dumps(con.execute(f'SELECT * FROM "{t}"').fetchall(), default=str) for t in tables
        ]
        views = con.execute("SELECT sql FROM duckdb_views() WHERE NOT internal").fetchall()
    finally:
        con.close()
    return "\n".join(parts + [str(v) for v in views])


# --------------------------------------------------------------------------------------------
# the keyed hash


def test_pseudonym_is_hmac_sha256_stable_and_keyed() -> None:
    key = PseudonymKey("test", KEY.encode())
    assert key.pseudonym("u42") == reference("u42")
    assert key.pseudonym("u42") == PseudonymKey("again", KEY.encode()).pseudonym("u42")
    other = PseudonymKey("test", (KEY + "x").encode())
    assert other.pseudonym("u42") != key.pseudonym("u42")
    assert key.pseudonym("u43") != key.pseudonym("u42")
    assert len(key.pseudonym("u42")) == PSEUDONYM_HEX
    # not a plain or salted hash of the id
    assert key.pseudonym("u42") not in (
        hashlib.sha256(b"u42").hexdigest()[:PSEUDONYM_HEX],
        hashlib.sha256(KEY.encode() + b"u42").hexdigest()[:PSEUDONYM_HEX],
    )
    assert key.pseudonym("  ") == "  " and key.pseudonym("") == ""
    assert KEY not in repr(key) and KEY not in str(key)
    assert key.fingerprint() != other.fingerprint() and KEY not in key.fingerprint()


@pytest.mark.parametrize(
    "secret", [KEY, "x" * 100, "ключ-с-юникодом-0123456789"], ids=["short", "long", "utf8"]
)
def test_sql_pseudonyms_equal_the_python_reference(
    tmp_path: Path, wh: Path, h: Any, monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv(ENV, secret)
    rows = [h.canon(i, user_id=uid) for i, uid in enumerate(["u1", "ü-2", "u1", "3 3"])]
    h.write_csv(tmp_path / "raw" / "a.csv", rows)
    report = ingest_paths(wh, tmp_path / "raw", cfg("user_id"))
    assert report.ok
    stored = [r[0] for r in h.query(wh, "SELECT user_id FROM events ORDER BY source_row")]
    key = PseudonymKey("t", secret.encode())
    assert stored == [key.pseudonym(r["user_id"]) for r in rows]
    assert stored[0] == stored[2] != stored[1]
    assert pseudonymise_ids(["u1"], cfg("user_id")) == [stored[0]]


# --------------------------------------------------------------------------------------------
# config and key: clear errors


CONFIG_CASES = [
    ({"pseudonymise": ("ts",)}, r"pseudonymise\[0\] = 'ts': ts cannot be pseudonymised"),
    ({"pseudonymise": ("user_id", "Price")}, r"pseudonymise\[1\] = 'Price': price cannot"),
    ({"pseudonymise": ("user_id", "USER_ID")}, r"pseudonymise\[1\].*listed twice"),
    ({"pseudonymise": ("",)}, r"pseudonymise\[0\] = '': must be a non-empty column name"),
    ({"pseudonymise": ("a\nb",)}, r"control characters"),
    ({"pseudonymise": ["user_id"]}, r"must be a list of names"),
    ({"pseudonym_key_env": "1KEY"}, r"pseudonym_key_env = '1KEY': not an environment variable"),
]


@pytest.mark.parametrize(("over", "match"), CONFIG_CASES)
def test_bad_pseudonymise_config(over: dict[str, Any], match: str) -> None:
    with pytest.raises(IngestError, match=match):
        IngestConfig(**over)


def test_no_key_no_pseudonyms() -> None:
    assert load_pseudonym_key(IngestConfig()) is None
    with pytest.raises(IngestError, match="pseudonymise is empty"):
        pseudonymise_ids(["u1"], IngestConfig())


KEY_CASES = [
    ("unset", None, rf"environment variable {ENV} is not set and \[ingest\] pseudonym_key_file"),
    ("empty env", "", rf"environment variable {ENV} is empty"),
    ("short env", "abc", rf"from environment variable {ENV} is 3 byte\(s\); use at least 16"),
    ("missing file", "file:nokey", r"pseudonym_key_file = '.*nokey': no such file"),
    ("empty file", "file:empty", r"pseudonym_key_file = '.*empty' is empty"),
    ("short file", "file:short", r"from file .*short is 5 byte\(s\)"),
    ("file in warehouse dir", "file:../project/key", r"lies inside the warehouse's directory"),
    ("file in datasets", "file:../sets/key", r"lies inside directory .*sets"),
    ("file in runs", "file:../runs/key", r"lies inside directory .*runs"),
]


@pytest.mark.parametrize(("case", "source", "match"), KEY_CASES, ids=[c[0] for c in KEY_CASES])
def test_missing_or_misplaced_key_is_a_clear_error(
    tmp_path: Path,
    h: Any,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    source: str | None,
    match: str,
) -> None:
    project, secrets = tmp_path / "project", tmp_path / "secrets"
    for d in (project, tmp_path / "sets", tmp_path / "runs", secrets):
        d.mkdir(parents=True)
    (secrets / "empty").write_text("\n")
    (secrets / "short").write_text("12345\n")
    for place in (project / "key", tmp_path / "sets" / "key", tmp_path / "runs" / "key"):
        place.write_text(KEY)
    h.write_csv(tmp_path / "raw" / "a.csv", [h.canon(0)])
    monkeypatch.delenv(ENV, raising=False)
    over: dict[str, Any] = {}
    if source is not None and source.startswith("file:"):
        over["pseudonym_key_file"] = secrets / source[5:]
    elif source is not None:
        monkeypatch.setenv(ENV, source)
    wh = project / "warehouse.duckdb"
    with pytest.raises(IngestError, match=match):
        ingest_paths(
            wh,
            tmp_path / "raw",
            cfg("user_id", **over),
            protected=(tmp_path / "sets", tmp_path / "runs"),
        )
    assert not wh.exists()  # refused before the warehouse was even created


def test_key_file_wins_and_trailing_newline_is_ignored(
    tmp_path: Path, wh: Path, h: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, "another-key-that-is-long-enough")
    path = tmp_path.parent / f"{tmp_path.name}-secret.key"
    path.write_text(KEY + "\n")
    try:
        key = load_pseudonym_key(cfg("user_id", pseudonym_key_file=path), warehouse=wh)
    finally:
        path.unlink()
    assert key is not None and key.pseudonym("u1") == reference("u1")
    assert str(path) in str(key)


# --------------------------------------------------------------------------------------------
# the warehouse remembers how it was pseudonymised


def test_key_and_fields_must_not_change_between_loads(
    tmp_path: Path, wh: Path, h: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, KEY)
    h.write_csv(tmp_path / "day1" / "a.csv", [h.canon(i) for i in range(6)])
    h.write_csv(tmp_path / "day2" / "b.csv", [h.canon(i) for i in range(6, 12)])
    assert ingest_paths(wh, tmp_path / "day1", cfg(*IDS)).ok
    before = h.snapshot(wh)
    refusals = [
        ({ENV: KEY + "-rotated"}, cfg(*IDS), r"is not the key this warehouse was loaded with"),
        ({}, cfg("user_id"), r"pseudonymise = \['user_id'\], but this warehouse was loaded with"),
        ({}, cfg(), r"this warehouse holds pseudonymised ids .*Set pseudonymise"),
    ]
    for env, config, match in refusals:
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        with pytest.raises(IngestError, match=match):
            ingest_paths(wh, tmp_path / "day2", config)
        monkeypatch.setenv(ENV, KEY)
        assert h.snapshot(wh) == before
    # same key, same fields (in another order): the next day loads and ids line up
    assert ingest_paths(wh, tmp_path / "day2", cfg(*reversed(IDS))).ok
    users = h.query(wh, "SELECT DISTINCT user_id FROM events ORDER BY 1")
    assert sorted(u for (u,) in users) == sorted(reference(f"u{i}") for i in range(3))
    assert h.query(wh, "SELECT fields, key_fingerprint FROM ingest_pseudonymisation") == [
        (sorted(IDS), PseudonymKey("t", KEY.encode()).fingerprint())
    ]


def test_pseudonymising_a_raw_warehouse_is_refused(
    tmp_path: Path, wh: Path, h: Any, key_env: str
) -> None:
    h.write_csv(tmp_path / "day1" / "a.csv", [h.canon(0)])
    h.write_csv(tmp_path / "day2" / "b.csv", [h.canon(1)])
    assert ingest_paths(wh, tmp_path / "day1", cfg()).ok
    with pytest.raises(IngestError, match=r"already holds files loaded without it \(raw ids\)"):
        ingest_paths(wh, tmp_path / "day2", cfg("user_id"))


def test_record_of_a_load_that_stored_nothing_can_be_replaced(
    tmp_path: Path, wh: Path, h: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, KEY)
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "empty.csv").write_text("")  # refused: nothing loaded
    assert not ingest_paths(wh, tmp_path / "raw", cfg("user_id")).ok
    monkeypatch.setenv(ENV, KEY + "-second-thoughts")
    h.write_csv(tmp_path / "raw2" / "a.csv", [h.canon(0)])
    h.write_csv(tmp_path / "raw3" / "b.csv", [h.canon(1)])
    assert ingest_paths(wh, tmp_path / "raw2", cfg("user_id")).ok
    assert h.query(wh, "SELECT DISTINCT user_id FROM events") == [
        (reference("u0", KEY + "-second-thoughts"),)
    ]
    # and a record over nothing does not bind a load without pseudonymisation either, which
    # then makes the warehouse a raw one
    wh2 = tmp_path / "w2.duckdb"
    assert not ingest_paths(wh2, tmp_path / "raw", cfg("user_id")).ok
    assert ingest_paths(wh2, tmp_path / "raw2", cfg()).ok
    assert h.query(wh2, "SELECT count(*) FROM ingest_pseudonymisation") == [(0,)]
    with pytest.raises(IngestError, match="already holds files loaded without it"):
        ingest_paths(wh2, tmp_path / "raw3", cfg("user_id"))


# --------------------------------------------------------------------------------------------
# every place a raw value could land


def test_no_raw_id_in_any_table_with_bad_rows_malformed_lines_and_extra_columns(
    tmp_path: Path, wh: Path, h: Any, key_env: str
) -> None:
    header = (*h.header, "email", "note")
    rows = [
        h.canon(i, user_id=f"alice{i % 2}", email=f"alice{i % 2}@example.org", note="kept as is")
        for i in range(8)
    ]
    rows[2]["price"] = "-1"  # rejected: its raw row is stored
    rows[3]["ts"] = "garbage"
    path = h.write_csv(tmp_path / "raw" / "a.csv", rows, header)
    with path.open("a") as fh:  # a line with too many fields: DuckDB cannot split it
        fh.write("e99999,2024-03-04T11:00:00Z,alice7,s1,view,i1,,,1,r1,alice7@x.org,n,EXTRA\n")
    report = ingest_paths(wh, tmp_path / "raw", cfg(*IDS, "email"))
    f = report.files[0]
    assert f.status == "loaded", f.message
    assert (f.rows_loaded, f.rows_rejected) == (6, 3)
    text = every_value(wh)
    assert not re.search(r"alice|e0000\d|s[012]\b|r0000\d|e99999", text), text[:2000]
    assert KEY not in text
    assert "kept as is" in text  # unlisted columns are untouched: the search does find values
    raw = [
        json.loads(r[0])
        for r in h.query(
            wh, "SELECT raw FROM rejected_events WHERE raw IS NOT NULL ORDER BY source_row"
        )
    ]
    assert [r["user_id"] for r in raw] == [reference("alice0"), reference("alice1")]
    assert raw[0]["email"] == reference("alice0@example.org")
    malformed = h.query(
        wh, "SELECT reason, raw FROM rejected_events WHERE reason_code = 'malformed_line'"
    )
    assert malformed and all(r[1] is None for r in malformed)
    assert "line not kept: ids are pseudonymised" in malformed[0][0]
    extra = h.query(wh, "SELECT extra ->> 'email' FROM events WHERE source_row = 2")
    assert extra == [(reference("alice1@example.org"),)]


def test_without_pseudonymise_the_same_scan_finds_the_ids(tmp_path: Path, wh: Path, h: Any) -> None:
    rows = [h.canon(i, user_id=f"alice{i}") for i in range(3)]
    rows[1]["price"] = "-1"
    h.write_csv(tmp_path / "raw" / "a.csv", rows)
    assert ingest_paths(wh, tmp_path / "raw", cfg()).ok
    assert re.search(r"alice", every_value(wh))


def test_rebuilt_sessions_span_files_with_pseudonymised_users(
    tmp_path: Path, wh: Path, h: Any, key_env: str
) -> None:
    # no session_id column: sessions are rebuilt from (pseudonymised) user and time, across
    # the two files of one visit
    header = tuple(c for c in h.header if c != "session_id")
    first = [h.canon(i, user_id="bob") for i in range(3)]
    second = [h.canon(i, user_id="bob") for i in range(3, 6)]
    h.write_csv(tmp_path / "raw" / "a.csv", first, header)
    h.write_csv(tmp_path / "raw" / "b.csv", second, header)
    assert ingest_paths(wh, tmp_path / "raw" / "a.csv", cfg("user_id")).ok
    assert ingest_paths(wh, tmp_path / "raw" / "b.csv", cfg("user_id")).ok
    sessions = h.query(wh, "SELECT DISTINCT user_id, session_id FROM events")
    assert len(sessions) == 1 and sessions[0][0] == reference("bob")


def test_per_row_user_id_pseudonymises_the_event_id(
    tmp_path: Path, wh: Path, h: Any, key_env: str
) -> None:
    mapping = parse_mapping(
        {
            "columns": {
                "event_id": "event_id",
                "ts": "ts",
                "user_id": {"per_row": True},
                "session_id": {"per_row": True},
                "event_type": "event_type",
                "item_id": "item_id",
            },
        }
    )
    h.write_csv(tmp_path / "raw" / "a.csv", [h.canon(0), h.canon(1)])
    assert ingest_paths(wh, tmp_path / "raw", cfg("user_id"), mapping=mapping).ok
    got = h.query(wh, "SELECT event_id, user_id, session_id FROM events ORDER BY source_row")
    assert got == [(reference(f"e0000{i}"),) * 3 for i in range(2)]


def test_parquet_and_json_sources_are_pseudonymised_alike(
    tmp_path: Path, wh: Path, h: Any, key_env: str
) -> None:
    rows = [h.canon(i, user_id=str(1000 + i % 2)) for i in range(4)]
    csv_path = h.write_csv(tmp_path / "src.csv", rows)
    (tmp_path / "raw").mkdir()
    con = duckdb.connect()
    try:
        con.sql(
            "SELECT * REPLACE (CAST(user_id AS BIGINT) AS user_id, "
            "replace(event_id, 'e', 'p') AS event_id) FROM read_csv($p, all_varchar = true)",
            params={"p": str(csv_path)},
        ).write_parquet(str(tmp_path / "raw" / "a.parquet"))
    finally:
        con.close()
    (tmp_path / "raw" / "b.jsonl").write_text(
        "\n".join(
            json.dumps({**r, "event_id": r["event_id"].replace("e", "j"), "position": 0})
            for r in rows
        )
    )
    report = ingest_paths(wh, tmp_path / "raw", cfg("user_id"))
    assert report.ok, report.format_table()
    users = h.query(wh, "SELECT DISTINCT user_id FROM events ORDER BY 1")
    assert sorted(u for (u,) in users) == sorted([reference("1000"), reference("1001")])


# --------------------------------------------------------------------------------------------
# which columns: validated against each file


def test_unknown_or_typed_source_column_refuses_the_file(
    tmp_path: Path, wh: Path, h: Any, key_env: str
) -> None:
    h.write_csv(tmp_path / "raw" / "a.csv", [h.canon(0)])
    report = ingest_paths(wh, tmp_path / "raw", cfg("user_id", "emial"))
    assert report.files[0].status == "failed"
    assert re.search(
        r"pseudonymise lists 'emial', which is neither an id field .* nor a column "
        r"of this file \(columns: 'event_id'",
        report.files[0].message,
    )
    retail = parse_mapping(
        {"columns": {"ts": "when", "user_id": "who", "event_type": "what", "item_id": "item"}}
    )
    h.write_csv(
        tmp_path / "raw2" / "a.csv",
        [{"when": "2024-01-01", "who": "w", "what": "view", "item": "i"}],
        ("when", "who", "what", "item"),
    )
    report = ingest_paths(tmp_path / "w2.duckdb", tmp_path / "raw2", cfg("when"), mapping=retail)
    assert "the source column of [columns] ts" in report.files[0].message
    report = ingest_paths(tmp_path / "w3.duckdb", tmp_path / "raw2", cfg("who"), mapping=retail)
    assert report.ok
    got = h.query(tmp_path / "w3.duckdb", "SELECT user_id FROM events")
    assert got == [(reference("w"),)]


def test_pseudonym_columns_rules() -> None:
    mapping = parse_mapping(
        {
            "columns": {
                "event_id": "eid",
                "ts": "ts",
                "user_id": "visitor",
                "event_type": "type",
                "item_id": "item",
                "request_id": {"per_row": True},
            },
            "responses": {"click": "clicked"},
        }
    )
    cols = ("eid", "ts", "visitor", "type", "item", "clicked", "user_id", "email")
    resolve = {c: c for c in cols}
    pick = pseudonym_columns
    assert pick(cols, resolve, mapping, ["user_id"], "f") == ("visitor", "user_id")
    assert pick(cols, resolve, mapping, ["request_id"], "f") == ("eid",)
    assert pick(cols, resolve, mapping, ["session_id", "email"], "f") == ("email",)
    with pytest.raises(IngestError, match="a \\[responses\\] flag column"):
        pick(cols, resolve, mapping, ["clicked"], "f")


def test_duckdb_error_messages_are_redacted() -> None:
    exc = duckdb.ConversionException("Could not convert string 'alice-42' to INT64 at \"x\"")
    assert "alice-42" in _message(exc)
    assert "alice-42" not in _message(exc, redacted=True)
    assert "cannot read the file: Could not convert string" in _message(exc, redacted=True)


# --------------------------------------------------------------------------------------------
# the leak guard: columns left as they are must not carry the user id


def test_ids_that_embed_the_user_id_refuse_the_file(
    tmp_path: Path, wh: Path, h: Any, key_env: str
) -> None:
    # the simulator's layout: session, request and event ids start with the user id
    header = (*h.header, "profile")
    rows = [
        h.canon(
            i,
            user_id=f"u{i % 3:07d}",
            session_id=f"u{i % 3:07d}-s0001",
            request_id=f"u{i % 3:07d}-s0001-t{i:03d}",
            event_id=f"u{i % 3:07d}-e{i}",
            profile=f"https://shop.example/users/u{i % 3:07d}",
        )
        for i in range(12)
    ]
    h.write_csv(tmp_path / "raw" / "a.csv", rows, header)
    report = ingest_paths(wh, tmp_path / "raw", cfg("user_id"))
    f = report.files[0]
    assert f.status == "failed"
    for part in (
        "column 'event_id' ([columns] event_id) holds the raw user id in 100%",
        "column 'session_id' ([columns] session_id) holds the raw user id in 100%",
        "column 'request_id' ([columns] request_id)",
        "column 'profile' (unmapped: extra)",
        "of the first 12 rows with a user id",
        "Add 'event_id', 'session_id', 'request_id', 'profile' to [ingest] pseudonymise",
    ):
        assert part in f.message, f.message
    assert "u000000" not in f.message
    assert h.query(wh, "SELECT count(*) FROM events") == [(0,)]
    # listing them loads the file
    report = ingest_paths(wh, tmp_path / "raw", cfg(*IDS, "profile"))
    assert report.ok, report.format_table()
    assert not re.search(r"u000000", every_value(wh))


def test_a_few_coincidences_do_not_trip_the_guard(
    tmp_path: Path, wh: Path, h: Any, key_env: str
) -> None:
    # numeric user ids that happen to equal an item id in some rows (1 in 4 here)
    rows = [
        h.canon(i, user_id=str(i % 4), item_id=str(i % 3 * 0 + (i % 4 if i % 4 == 0 else 9)))
        for i in range(16)
    ]
    assert sum(r["user_id"] == r["item_id"] for r in rows) == 4
    h.write_csv(tmp_path / "raw" / "a.csv", rows)
    report = ingest_paths(wh, tmp_path / "raw", cfg("user_id"))
    assert report.ok, report.format_table()


# --------------------------------------------------------------------------------------------
# the CLI


def test_cli_missing_key_exits_2_and_key_in_runs_dir_is_refused(
    tmp_path: Path, h: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from offrec.cli import app

    runner = CliRunner()
    monkeypatch.delenv(ENV, raising=False)
    h.write_csv(tmp_path / "raw" / "a.csv", [h.canon(i) for i in range(4)])
    config = tmp_path / "offrec.toml"
    base = (
        '[paths]\ninputs = "raw"\nwarehouse = "wh/warehouse.duckdb"\nruns = "out/runs"\n'
        f'[ingest]\nthreads = 1\npseudonymise = ["user_id", "session_id", "request_id", '
        f'"event_id"]\npseudonym_key_env = "{ENV}"\n'
    )
    config.write_text(base)
    result = runner.invoke(app, ["ingest", "-c", str(config)])
    assert result.exit_code == 2
    assert f"environment variable {ENV} is not set" in result.output
    assert not (tmp_path / "wh" / "warehouse.duckdb").exists()

    (tmp_path / "out" / "runs").mkdir(parents=True)
    (tmp_path / "out" / "runs" / "k").write_text(KEY)
    config.write_text(base + 'pseudonym_key_file = "out/runs/k"\n')
    result = runner.invoke(app, ["ingest", "-c", str(config)])
    assert result.exit_code == 2
    assert "lies inside directory" in result.output and "runs" in result.output

    monkeypatch.setenv(ENV, KEY)
    config.write_text(base)
    result = runner.invoke(app, ["ingest", "-c", str(config)])
    assert result.exit_code == 0, result.output
    shown = runner.invoke(app, ["config", "show", "-c", str(config)])
    assert ENV in shown.output and KEY not in shown.output
    assert KEY not in result.output
    # `offrec pseudonym` finds a user's stored id
    looked_up = runner.invoke(app, ["pseudonym", "u1", "u2", "-c", str(config)])
    assert looked_up.exit_code == 0, looked_up.output
    assert looked_up.output.splitlines() == [f"u1\t{reference('u1')}", f"u2\t{reference('u2')}"]
    stored = h.query(tmp_path / "wh" / "warehouse.duckdb", "SELECT DISTINCT user_id FROM events")
    assert (reference("u1"),) in stored
    monkeypatch.delenv(ENV)
    failed = runner.invoke(app, ["pseudonym", "u1", "-c", str(config)])
    assert failed.exit_code == 2 and f"environment variable {ENV} is not set" in failed.output
