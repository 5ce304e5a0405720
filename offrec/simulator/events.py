"""Turn a block's :class:`StepLog` into raw events in the canonical schema (design §1).

Ids are readable and unique:

* ``user_id``    ``u0000042``
* ``session_id`` ``u0000042-s0003`` (the user's 4th session)
* ``request_id`` ``u0000042-s0003-t007`` (the session's 8th recommendation)
* ``event_id``   ``<request_id>-imp`` / ``-clk`` / ``-atc`` / ``-pur``

Events of a step are strictly ordered in time: impression, click, add_to_cart, purchase; the
next impression comes later still. Rows are sorted by ``(ts, event_id)``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from offrec.simulator.engine import StepLog
from offrec.simulator.schedule import BlockPlan
from offrec.simulator.world import ITEM_ID_WIDTH, USER_ID_WIDTH, Catalog

__all__ = ["RAW_SCHEMA", "EVENT_TYPES", "events_table", "impression_ids"]

EVENT_TYPES = ("impression", "click", "add_to_cart", "purchase")
_SUFFIX = ("-imp", "-clk", "-atc", "-pur")

RAW_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("position", pa.int32()),
        pa.field("propensity", pa.float64()),
        pa.field("price", pa.float64(), nullable=False),
        pa.field("request_id", pa.string(), nullable=False),
    ]
)


def _padded(values: np.ndarray, width: int) -> pa.Array:
    return pc.utf8_lpad(pa.array(values, type=pa.int64()).cast(pa.string()), width, "0")


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _request_ids(log: StepLog, plan: BlockPlan) -> pa.Array:
    """``(n_steps,)`` request ids of the log's decisions."""
    user = plan.users.index[plan.session_user[log.session]]
    rank = plan.session_rank[log.session]
    return _join(
        "u", _padded(user, USER_ID_WIDTH), "-s", _padded(rank, 4), "-t", _padded(log.step, 3)
    )


def impression_ids(log: StepLog, plan: BlockPlan) -> pa.Array:
    """Event ids of the impressions, one per decision of ``log`` (in log order)."""
    return _join(_request_ids(log, plan), _SUFFIX[0])


def events_table(log: StepLog, plan: BlockPlan, catalog: Catalog) -> pa.Table:
    """All events of the block, sorted by (ts, event_id), with schema :data:`RAW_SCHEMA`."""
    n = len(log)
    rows = [np.arange(n)]
    kinds = [np.zeros(n, dtype=np.int8)]
    times = [log.ts]
    for kind, (flag, ts) in enumerate(
        [(log.click, log.click_ts), (log.cart, log.cart_ts), (log.purchase, log.purchase_ts)],
        start=1,
    ):
        idx = np.flatnonzero(flag)
        rows.append(idx)
        kinds.append(np.full(idx.shape[0], kind, dtype=np.int8))
        times.append(ts[idx])
    row = np.concatenate(rows)
    kind = np.concatenate(kinds)
    ts = np.concatenate(times)
    # ts is unique within a session; (ts, session, kind) orders events like (ts, event_id)
    session = log.session[row]
    order = np.lexsort(
        (
            kind,
            log.step[row],
            plan.session_rank[session],
            plan.users.index[plan.session_user[session]],
            ts,
        )
    )
    row, kind, ts = row[order], kind[order], ts[order]

    request = _request_ids(log, plan)
    request_e = request.take(pa.array(row))
    suffix = pa.array(np.array(_SUFFIX, dtype=object)[kind], type=pa.string())
    event_id = _join(request_e, suffix)
    # user/session ids are prefixes of the request id (fixed widths)
    user_len = 1 + USER_ID_WIDTH
    user_id = pc.utf8_slice_codeunits(request_e, 0, user_len)
    session_id = pc.utf8_slice_codeunits(request_e, 0, user_len + 6)
    items = log.item[row]
    item_id = _join("i", _padded(items, ITEM_ID_WIDTH))
    event_type = pa.array(np.array(EVENT_TYPES, dtype=object)[kind], type=pa.string())
    is_imp = kind == 0
    position = pa.array(log.position[row].astype(np.int32), mask=~is_imp)
    propensity = pa.array(log.propensity[row], mask=~is_imp)
    price = pa.array(catalog.price[items])
    ts_arr = pa.array(ts * 1000, type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    return pa.Table.from_arrays(
        [
            event_id,
            ts_arr,
            user_id,
            session_id,
            event_type,
            item_id,
            position,
            propensity,
            price,
            request_e,
        ],
        schema=RAW_SCHEMA,
    )
