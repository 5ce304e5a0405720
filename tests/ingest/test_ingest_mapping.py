"""Mapping TOML and the [ingest] config: valid files parse, bad ones say what to fix."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ingest import (
    BUILTIN_MAPPINGS,
    IngestConfig,
    IngestError,
    MappingError,
    load_mapping,
    parse_mapping,
    resolve_mapping,
)
from offrec.config import parse_config
from offrec.errors import ConfigError

MINIMAL = {"columns": {"ts": "t", "user_id": "u", "item_id": "i", "event_type": "e"}}


def test_builtin_mappings_load() -> None:
    for name in BUILTIN_MAPPINGS:
        m = load_mapping(name)
        assert m.name == name
        assert {"ts", "user_id", "item_id", "event_type"} <= set(m.columns)
    rr = load_mapping("retailrocket")
    assert rr.ts_unit == "ms"
    assert rr.event_type_pairs() == (
        ["addtocart", "transaction", "view"],
        ["add_to_cart", "purchase", "view"],
    )
    obd = load_mapping("open_bandit")
    assert obd.responses == {"click": "click"} and obd.position_base == 1
    assert obd.columns["user_id"].kind == "per_row"
    sim = load_mapping("simulator")
    assert sim.columns["session_id"].optional and sim.columns["propensity"].optional


def test_fingerprint_tracks_what_changes_rows() -> None:
    a = parse_mapping(MINIMAL, origin="a.toml")
    b = parse_mapping({**MINIMAL, "mapping": {"description": "other words"}}, origin="b.toml")
    c = parse_mapping({**MINIMAL, "values": {"ts_unit": "ms"}})
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


BAD = [
    ({"colums": {}}, r"top level: unknown key 'colums'; accepted: mapping, source, columns"),
    (
        {"columns": {"ts": "t", "user_id": "u", "item_id": "i"}},
        r"\[columns\] lacks event_type; every mapping must say where ts, user_id, event_type, "
        r"item_id come from",
    ),
    (
        {"columns": {**MINIMAL["columns"], "userid": "x"}},
        r"\[columns\]: unknown key 'userid'; accepted: event_id, ts, user_id",
    ),
    (
        {"columns": {**MINIMAL["columns"], "ts": {"value": "now"}}},
        r"\[columns\] ts: a value spec is not allowed here; use \"<source column>\"",
    ),
    (
        {"columns": {**MINIMAL["columns"], "event_type": {"value": "hover"}}},
        r"value 'hover' is not an event type",
    ),
    (
        {"columns": {**MINIMAL["columns"], "item_id": {"column": "i", "optional": True}}},
        r"\[columns\] item_id: item_id is required, so it cannot be optional",
    ),
    (
        {"columns": {**MINIMAL["columns"], "price": "u"}},
        r"\[columns\] price and user_id both read source column 'u'",
    ),
    (
        {"columns": {**MINIMAL["columns"], "price": {"column": "p", "value": "1"}}},
        r"\[columns\] price: give exactly one of column, value, per_row",
    ),
    (
        {"columns": {**MINIMAL["columns"], "price": ""}},
        r"the source column name must be "
        r"non-empty",
    ),
    ({"columns": {**MINIMAL["columns"], "price": "__offrec_p"}}, r"reserved for ingest"),
    ({"columns": {**MINIMAL["columns"], "price": 3}}, r"must be a source column name"),
    (
        {**MINIMAL, "values": {"ts_unit": "minutes"}},
        r"\[values\] ts_unit = 'minutes': must be one of auto, iso, s, ms, us",
    ),
    (
        {**MINIMAL, "values": {"ts_unit": "ms", "ts_format": "%Y"}},
        r"ts_format is set but ts_unit = 'ms'",
    ),
    ({**MINIMAL, "values": {"position_base": 2}}, r"position_base = 2: must be 0"),
    (
        {**MINIMAL, "event_types": {"pv": "pageview"}},
        r"\[event_types\] 'pv' = 'pageview': must be one of impression, view",
    ),
    (
        {**MINIMAL, "event_types": {"PV": "view", "pv": "click"}},
        r"matched case-insensitively and 'pv' is already mapped to 'view'",
    ),
    (
        {**MINIMAL, "responses": {"impression": "x"}},
        r"\[responses\] impression: not a response event type",
    ),
    (
        {**MINIMAL, "responses": {"click": "u"}},
        r"column 'u' is used both in \[columns\] and \[responses\]",
    ),
    ({**MINIMAL, "source": {"format": "xlsx"}}, r"\[source\] format = 'xlsx': must be one of"),
    ({**MINIMAL, "source": {"delimiter": "||"}}, r"delimiter = '\|\|': must be one character"),
    ({**MINIMAL, "source": {"header": "yes"}}, r"\[source\] header = 'yes': must be true/false"),
]


@pytest.mark.parametrize(("data", "message"), BAD)
def test_bad_mapping(data: dict, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        parse_mapping(data, origin="shop.toml")


def test_bad_mapping_file(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match=r"mapping file .*nope.toml not found; built-in"):
        load_mapping(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[columns\nts = 1")
    with pytest.raises(MappingError, match=r"bad.toml: not valid TOML"):
        load_mapping(bad)


CONFIG_BAD = [
    ({"mapping": "shopify"}, r"\[ingest\] mapping = \"shopify\": must be one of \"simulator\""),
    ({"memory_limit": "lots"}, r"memory_limit = 'lots': write a size like \"2GB\""),
    ({"threads": 0}, r"\[ingest\] threads = 0: must be >= 1"),
    ({"max_rejected_share": 1.5}, r"\[ingest\] max_rejected_share = 1.5: must be >= 0 and <= 1"),
    ({"session_gap_s": 0}, r"\[ingest\] session_gap_s = 0: must be > 0"),
    ({"mapping_file": 3}, r"\[ingest\] mapping_file = 3: must be a path string"),
]


@pytest.mark.parametrize(("section", "message"), CONFIG_BAD)
def test_bad_ingest_config(tmp_path: Path, section: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"ingest": section}, base_dir=tmp_path, source=tmp_path / "offrec.toml")


def test_config_mapping_file_is_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "shop.toml").write_text(
        '[columns]\nts = "t"\nuser_id = "u"\nitem_id = "i"\nevent_type = "e"\n'
    )
    cfg = parse_config({"ingest": {"mapping_file": "maps/shop.toml"}}, base_dir=tmp_path)
    assert cfg.ingest.mapping_file == tmp_path / "maps" / "shop.toml"
    assert resolve_mapping(cfg.ingest).name == "shop"
    assert resolve_mapping(IngestConfig(mapping="retailrocket")).name == "retailrocket"
    with pytest.raises(IngestError, match=r"memory_limit = '2 gigs'"):
        dataclasses.replace(IngestConfig(), memory_limit="2 gigs")
