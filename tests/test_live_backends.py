"""Live mode's state backends: what a commit makes durable, what a batch without a commit leaves."""

from __future__ import annotations

from pathlib import Path

import pytest

from cryptodb.live.backends import open_backend

PERSISTENT = ["duckdb", "rocksdb"]


def test_states_offsets_and_watermarks_survive_a_reopen_only_when_committed(tmp_path):
    for kind in PERSISTENT:
        catalog = tmp_path / kind / "crypto.duckdb"
        catalog.parent.mkdir()
        backend = open_backend(kind, catalog)
        backend.save("call/a", {'["BTC-USD"]': b"state-1", '["ETH-USD"]': b"state-2"})
        assert backend.load("call/a", ['["BTC-USD"]']) == [None]  # staged is not committed
        backend.commit({("ticks", 0): 11, ("ticks", 1): 7}, {("coinbase", "BTC-USD"): (1000, 3),
                                                              ("binance", "BTC-USD"): (990, 8)})
        backend.begin(["/data/part-1.parquet", "/data/part-2.parquet"])
        backend.save("call/a", {'["BTC-USD"]': b"state-3"})  # a batch that will not commit
        backend.close()

        again = open_backend(kind, catalog)
        cp = again.checkpoint()
        assert cp.offsets == {("ticks", 0): 11, ("ticks", 1): 7}
        assert cp.watermarks == {("coinbase", "BTC-USD"): (1000, 3), ("binance", "BTC-USD"): (990, 8)}
        assert cp.pending == ["/data/part-1.parquet", "/data/part-2.parquet"]
        assert again.load("call/a", ['["BTC-USD"]', '["ETH-USD"]', '["SOL-USD"]']) == [b"state-1", b"state-2", None]
        again.commit({("ticks", 0): 12}, {})
        assert again.checkpoint().pending == []
        assert again.checkpoint().offsets[("ticks", 0)] == 12
        again.close()


def test_watermarks_kept_per_symbol_by_an_older_version_read_as_any_exchange(tmp_path):
    import duckdb
    from rocksdict import Rdict

    catalog = tmp_path / "duckdb" / "crypto.duckdb"
    catalog.parent.mkdir()
    old = duckdb.connect(str(catalog.with_suffix(".live.duckdb")))  # the schema before exchanges
    old.execute("CREATE TABLE watermarks (symbol VARCHAR PRIMARY KEY, ts BIGINT, seq BIGINT)")
    old.execute("INSERT INTO watermarks VALUES ('BTC-USD', 1000, 3)")
    old.close()
    catalog = tmp_path / "rocksdb" / "crypto.duckdb"
    catalog.parent.mkdir()
    old = Rdict(str(catalog.with_suffix(".live.rocksdb")))
    old["w/BTC-USD"] = [1000, 3]
    old.close()

    for kind in PERSISTENT:
        catalog = tmp_path / kind / "crypto.duckdb"
        backend = open_backend(kind, catalog)
        assert backend.checkpoint().watermarks == {(None, "BTC-USD"): (1000, 3)}
        backend.commit({}, {("kraken", "BTC-USD"): (1200, 1)})
        backend.close()
        again = open_backend(kind, catalog)
        assert again.checkpoint().watermarks == {(None, "BTC-USD"): (1000, 3), ("kraken", "BTC-USD"): (1200, 1)}
        again.close()


def test_memory_backend_keeps_nothing_across_instances(tmp_path):
    backend = open_backend("memory", tmp_path / "crypto.duckdb")
    backend.save("c", {"p": b"x"})
    backend.commit({("t", 0): 5}, {})
    assert backend.load("c", ["p"]) == [b"x"]
    assert open_backend("memory", tmp_path / "crypto.duckdb").checkpoint().offsets == {}


def test_unknown_backend_is_named():
    from cryptodb.errors import CryptodbError

    with pytest.raises(CryptodbError, match="state backend 'redis': one of duckdb, memory, rocksdb"):
        open_backend("redis", Path("x.duckdb"))
