"""What a live script that reads the books of several exchanges sees per micro-batch.

A script that declares `-- @live lookback PARAM` (sql/arbitrage.sql) evaluates *instants*: for
each symbol, the times a quote changed on any exchange, each with every exchange's latest quote
at or before it; a quote older than the script's parameter PARAM (an INTERVAL, its tolerance)
counts as none. Over history it reads every stored tick. Per micro-batch the runner gives it what
one pass over all ticks would read for the batch's instants, and nothing that would evaluate an
instant twice:

- The instants of a symbol are its ticks in the batch after its *frontier*: the newest tick of the
  symbol, on any exchange, that an earlier batch committed (the largest of its watermarks).
  `since_by_symbol` (a MAP) gives each symbol its first new instant and `since` is the earliest
  of them. One `since` for all symbols would not do: batches take symbols from several Kafka
  partitions that interleave in time, so some instants would be evaluated twice and some books
  would miss their latest quotes.
- `ticks` holds those ticks plus the stored quotes of the symbol from PARAM before its frontier
  (before its first new instant, for a symbol seen for the first time) up to that instant: every
  quote a book at a new instant can read, and every exchange that was part of a run still open at
  the frontier (its quote was fresh there), so that its book, stale now, ends that run as it would
  over history.
- `funding` holds the batch's funding rows, and `ticks` also the stored quotes from PARAM before the
  earliest of them to the latest, for the spot price of funding carry; a symbol with only such
  quotes gets a `since_by_symbol` after them (no instants).

A tick at or before its symbol's frontier (another exchange's tick that reached Kafka after a
later one, or one at the frontier's very nanosecond) joins the books of later instants, but its
own instant is not evaluated again: alerts already printed are not revised. Feeds keyed by symbol,
as collectors and `replay` write them, bring each symbol's ticks in time order; then every instant
is evaluated once, with the books a history run gives it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cryptodb.live.order import Watermarks, frontiers
from cryptodb.store import NS_PER_DAY, NULL_PARTITION, DataFile, ParquetStore

_HIVE = "hive_partitioning = true, hive_types = {'symbol': VARCHAR, 'date': DATE}"


@dataclass
class ScriptInputs:
    """The relations and variables a live script runs on for one batch."""

    ticks: pa.Table
    funding: pa.Table
    since_ns: int | None = None  # the earliest new instant (lookback scripts only)
    since_by_symbol: dict[str, int] | None = None


def with_date(rows: pa.Table) -> pa.Table:
    """Rows as the store's views show them: with the `date` partition column."""
    return rows.append_column("date", pc.cast(pc.cast(rows.column("ts"), pa.timestamp("ns")), pa.date32()))


def plain_inputs(ticks: pa.Table, funding: pa.Table) -> ScriptInputs:
    return ScriptInputs(with_date(ticks), with_date(funding))


def lookback_inputs(store: ParquetStore, con, ticks: pa.Table, funding: pa.Table, watermarks: Watermarks,
                    tolerance_ns: int, waiting: pa.Table | None = None) -> ScriptInputs:
    """`ticks` and `funding` of one batch (already stored, or `waiting` among the ticks of batches
    not committed yet) as a lookback script sees them, given the watermarks of the batches before."""
    front = frontiers(watermarks)
    symbols = ticks.column("symbol").to_numpy(zero_copy_only=False)
    ts = ticks.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False)
    lowest = np.iinfo(np.int64).min
    fresh = ts > np.array([front.get(s, lowest) for s in symbols], np.int64)

    first: dict[str, int] = {}  # each symbol's first new instant
    for s, t in zip(symbols[fresh], ts[fresh]):
        first[s] = min(int(t), first.get(s, int(t)))
    windows = {s: (min(front.get(s, t), t) - tolerance_ns, t) for s, t in first.items()}
    since_by_symbol = dict(first)
    since = min(first.values(), default=None)
    if funding.num_rows:
        f_ts = funding.column("ts").cast(pa.int64())
        f_first, f_last = int(pc.min(f_ts).as_py()), int(pc.max(f_ts).as_py())
        for s in _stored_symbols(store, waiting):
            if s in first:
                windows[s] = (min(windows[s][0], f_first - tolerance_ns), first[s])
            else:
                windows[s] = (f_first - tolerance_ns, f_last + 1)
                since_by_symbol[s] = f_last + 1
        since = min(f_first, since if since is not None else f_first)
    context = _read_windows(store, con, windows, ticks.schema, waiting)
    view = pa.concat_tables([context, ticks.filter(pa.array(fresh))])
    return ScriptInputs(with_date(view), with_date(funding), since, since_by_symbol)


def _stored_symbols(store: ParquetStore, waiting: pa.Table | None) -> list[str]:
    root = store.table_path("ticks")
    found = {e.name.partition("=")[2] for e in os.scandir(root)
             if e.is_dir() and e.name.startswith("symbol=") and e.name != f"symbol={NULL_PARTITION}"} \
        if root.is_dir() else set()
    if waiting is not None:
        found |= {s for s in pc.unique(waiting.column("symbol")).to_pylist() if s is not None}
    return sorted(found)


def _files(store: ParquetStore, symbol: str, lo: int, hi: int) -> list[str]:
    """Stored tick files of `symbol` that may hold rows with ts in [lo, hi): file names carry
    their first and last time, so no file outside the window is opened."""
    found = []
    for day in range(lo // NS_PER_DAY, (hi - 1) // NS_PER_DAY + 1):
        folder = store.table_path("ticks") / f"symbol={symbol}" / f"date={np.datetime64(day, 'D')}"
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            f = DataFile.parse(folder / entry.name)
            if f is not None and f.min_ts < hi and f.max_ts >= lo:
                found.append(str(f.path))
    return found


def _read_windows(store: ParquetStore, con, windows: dict[str, tuple[int, int]], schema: pa.Schema,
                  waiting: pa.Table | None = None, attempts: int = 3) -> pa.Table:
    """Stored ticks of each symbol with ts in its window [lo, hi), in `schema`: from the store's
    files, and from the `waiting` ticks of batches not committed yet."""
    import duckdb

    names = ", ".join(f"t.{n}" for n in schema.names)
    within = "JOIN live_lookback_windows w ON t.symbol = w.symbol AND epoch_ns(t.ts) >= w.lo AND epoch_ns(t.ts) < w.hi"
    waiting = waiting if waiting is not None and waiting.num_rows else None
    for attempt in range(attempts):
        files = [f for s, (lo, hi) in windows.items() for f in _files(store, s, lo, hi)]
        sources = [f"SELECT {names} FROM read_parquet(?, {_HIVE}) t {within}"] if files else []
        if waiting is not None:
            sources.append(f"SELECT {names} FROM live_lookback_waiting t {within}")
        if not sources:
            return schema.empty_table()
        bounds = pa.table({"symbol": list(windows), "lo": [w[0] for w in windows.values()],
                           "hi": [w[1] for w in windows.values()]})
        con.register("live_lookback_windows", bounds)
        if waiting is not None:
            con.register("live_lookback_waiting", waiting)
        try:
            rows = con.sql(" UNION ALL ".join(sources), params=[files] if files else None).to_arrow_table()
            return rows.cast(schema)
        except duckdb.IOException:
            if attempt + 1 == attempts:
                raise  # a compaction swapped the files out while they were read: list them again
        finally:
            con.unregister("live_lookback_windows")
            if waiting is not None:
                con.unregister("live_lookback_waiting")
    raise AssertionError("unreachable")
