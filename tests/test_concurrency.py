"""Readers in other processes while a writer appends (and compacts): whole batches only, no row
twice, no row lost."""

import json
import subprocess
import sys
import textwrap
import time

from conftest import BASE_NS, make_ticks

import cryptodb

BATCH = 500

READER = """
import json, select, sys, time
{open_reader}
seen, errors = [], []
print("ready", flush=True)
deadline = time.time() + 60
while time.time() < deadline:
    try:
        seen.append(list(count()))
    except Exception as e:
        errors.append(str(e))
    if select.select([sys.stdin], [], [], 0)[0]:
        break
print(json.dumps({{"seen": seen, "errors": errors}}))
"""
QUERY = "SELECT count(*), count(DISTINCT seq) FROM ticks"
RAW_DUCKDB = f"""
import duckdb
con = duckdb.connect({{path!r}}, read_only=True)
count = lambda: con.execute({QUERY!r}).fetchone()
"""
THROUGH_CRYPTODB = f"""
import cryptodb
db = cryptodb.connect({{path!r}}, read_only=True)
count = lambda: db.execute({QUERY!r})[0].table.to_pylist()[0].values()
"""


def _run(db_path, open_reader: str, compact_every: int | None):
    cryptodb.connect(db_path).close()
    code = READER.format(open_reader=open_reader.format(path=str(db_path)))
    reader = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "ready"
        with cryptodb.connect(db_path) as db:
            for i in range(30):
                time.sleep(0.02)  # let the reader query between batches
                db.insert_ticks(make_ticks(BATCH, start_ns=BASE_NS + i * BATCH * 1_000_003,
                                           seq_start=1 + i * BATCH, seed=i))
                if compact_every and i % compact_every == compact_every - 1:
                    db.compact()
        out, _ = reader.communicate("stop\n", timeout=90)
    finally:
        reader.kill()
    report = json.loads(out)
    assert len(report["seen"]) > 20
    for n, distinct in report["seen"]:
        assert n % BATCH == 0, "a reader saw part of a batch"
        assert n == distinct, "a reader saw a row twice"
    counts = [n for n, _ in report["seen"]]
    assert counts == sorted(counts), "a reader saw rows disappear"
    with cryptodb.connect(db_path, read_only=True) as db:
        assert db.sql("SELECT count(*) FROM ticks").fetchall() == [(30 * BATCH,)]
    return report["errors"]


def test_plain_duckdb_reader_while_writer_appends(db_path):
    assert _run(db_path, RAW_DUCKDB, compact_every=None) == []


def test_cryptodb_reader_while_writer_appends_and_compacts(db_path):
    assert _run(db_path, THROUGH_CRYPTODB, compact_every=3) == []


def test_plain_duckdb_reader_during_compaction_never_sees_wrong_rows(db_path):
    # A query racing the swap may fail to open a merged-away file; it never returns wrong rows.
    errors = _run(db_path, RAW_DUCKDB, compact_every=3)
    assert all("No such file or directory" in e for e in errors)
