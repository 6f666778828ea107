"""A statement with kernels, planned once and run as many times as asked.

The first run plans each scope against the tables as they are (sqlglot rewrites, column probes)
while it computes, and records what it did: per scope, the plan, the name its spliced rows are
registered under, and which earlier spliced tables it leaves unread. Later runs replay that
record over whatever rows the sources hold now: only reading, kernels and DuckDB's final pass
remain. Live mode runs the same script on every micro-batch, where planning the 44-feature
statement again was most of a small batch's time.

A replay is right as long as the sources keep their columns, which the engine can only promise
when its user does: see `Engine.reuse_plans`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import duckdb
import pyarrow as pa
from sqlglot import exp

from cryptodb.engine.calls import KernelCall, bind_params
from cryptodb.engine.compute import WindowOrders, compute
from cryptodb.engine.dialect import to_sql
from cryptodb.engine.planner import ScopePlan, plan_scope
from cryptodb.engine.result import KernelResult
from cryptodb.engine.shortcut import InnerRead, Projection, inner_read, projection_of
from cryptodb.engine.splice import splice, spliced_table

log = logging.getLogger("cryptodb")
# Fewer, larger Arrow chunks from DuckDB: every chunk costs a little in each kernel-side pass.
READ_BATCH_ROWS = 1 << 24


@dataclass
class _Step:
    plan: ScopePlan
    reader: InnerRead | None  # the input rows straight from an earlier scope's spliced table
    inner_sql: str  # else: the input rows from DuckDB
    name: str  # the spliced rows' table name, which the rewritten statement reads
    released: list[str]  # spliced tables nothing after this scope reads

    def read(self, con, registered: dict[str, pa.Table]) -> pa.Table:
        if self.reader is not None:
            return self.reader.read(con, registered, READ_BATCH_ROWS)
        return con.sql(self.inner_sql).to_arrow_table(batch_size=READ_BATCH_ROWS)


class PreparedStatement:
    def __init__(self, tree: exp.Expression, calls: list[KernelCall], statement_id: str,
                 scopes: list[tuple[exp.Select, list[KernelCall]]]):
        self.tree = tree
        self.calls = calls
        self.statement_id = statement_id
        self._scopes = scopes
        self._steps: list[_Step] | None = None  # recorded by the first run
        self._projection: Projection | None = None  # the result in Arrow, without a DuckDB pass
        self._final_sql: str | None = None
        self._param_sql: str | None = None
        self._param_values: tuple | None = None
        self._orders: WindowOrders | None = None

    def run(self, con: duckdb.DuckDBPyConnection, states=None):
        """The statement's result (a query) or None; kernels resume from `states` when given."""
        # Parameters may read variables, which change between runs: bound every time.
        self._param_sql, self._param_values = bind_params(con, self.calls, self._param_sql, self._param_values)
        registered: dict[str, pa.Table] = {}
        self._orders = WindowOrders()  # this run's, shared by its scopes
        handed_over = False
        try:
            if self._steps is None:
                self._steps = self._plan_and_run(con, states, registered)
                if isinstance(self.tree, exp.Query):
                    self._projection = projection_of(self.tree, registered)
            else:
                for number, step in enumerate(self._steps):
                    rows = step.read(con, registered)
                    table = spliced_table(step.plan, rows, self._compute(rows, step.plan, states, number))
                    del rows
                    con.register(step.name, table)
                    registered[step.name] = table
                    self._release(con, step.released, registered)
            if isinstance(self.tree, exp.Query):
                if self._projection is not None:
                    return KernelResult(con, table=self._projection.table(registered))
                handed_over = True
                return KernelResult(con, query=self._final(), registered=tuple(registered))
            con.execute(self._final()).fetchall()
            return None
        finally:
            self._orders = None
            if not handed_over:
                for name in registered:
                    con.unregister(name)

    def _plan_and_run(self, con, states, registered: dict[str, pa.Table]) -> list[_Step]:
        steps = []
        for number, (scope, scope_calls) in enumerate(self._scopes):
            plan = plan_scope(scope, scope_calls, number, lambda q: con.sql(to_sql(q) + " LIMIT 0").columns)
            step = _Step(plan, inner_read(plan.inner, registered, to_sql), to_sql(plan.inner), "", [])
            rows = step.read(con, registered)
            step.name, table = splice(con, plan, rows, self._compute(rows, plan, states, number))
            del rows
            registered[step.name] = table
            step.released = _unused(self.tree, registered)
            self._release(con, step.released, registered)
            steps.append(step)
        return steps

    def _compute(self, rows: pa.Table, plan: ScopePlan, states, number: int) -> list[pa.Array]:
        started = time.perf_counter()
        outputs = compute(rows, plan, states, f"{self.statement_id}/{number}", self._orders)
        log.debug("scope %d: %d rows x %d columns, %d kernel(s) in %.3f s", number, rows.num_rows,
                  rows.num_columns, len(plan.calls), time.perf_counter() - started)
        return outputs

    @staticmethod
    def _release(con, names: list[str], registered: dict[str, pa.Table]) -> None:
        for name in names:
            con.unregister(name)
            del registered[name]

    def _final(self) -> str:
        if self._final_sql is None:
            self._final_sql = to_sql(self.tree)
        return self._final_sql


def _unused(tree: exp.Expression, registered: dict[str, pa.Table]) -> list[str]:
    """Spliced tables the rest of the statement no longer reads: a chain of CTEs with kernels
    (research's features) would otherwise keep every level's columns in memory at once."""
    _prune_ctes(tree)
    names = {t.name for t in tree.find_all(exp.Table)}
    return [n for n in registered if n not in names]


def _prune_ctes(tree: exp.Expression) -> None:
    """Drop CTEs nothing refers to any more (a spliced scope no longer reads the CTEs it read)."""
    changed = True
    while changed:
        changed = False
        for with_ in list(tree.find_all(exp.With)):
            for cte in list(with_.expressions):
                name = cte.alias_or_name.lower()
                users = [t for t in tree.find_all(exp.Table)
                         if t.name.lower() == name and not t.args.get("db") and not _inside(t, cte)]
                if not users:
                    cte.pop()
                    changed = True
            if not with_.expressions:
                with_.pop()


def _inside(node: exp.Expression, ancestor: exp.Expression) -> bool:
    while node is not None:
        if node is ancestor:
            return True
        node = node.parent
    return False
