"""The SQL kernel engine: `kernel(args) OVER w` inside ordinary DuckDB SQL.

DuckDB's Python API has only scalar UDFs, which give wrong rows for stateful work, so a query
that calls kernels is rewritten in named passes, each a module of its own:

1. `calls`    find the kernel calls (sqlglot), check their shape and parameters before any data
              is read;
2. `planner`  for each SELECT scope with kernel calls, build the query that yields its input rows
              (FROM + WHERE, plus the kernels' arguments, partition and order keys);
3. `compute`  run that query in DuckDB, compute the kernels in numba over the Arrow columns
              (in storage order when rows are already ordered per partition, else sorted);
4. `splice`   register the result as a table and rewrite the scope to read from it, so DuckDB
              finishes the query: outer joins, GROUP BY, ORDER BY, LIMIT, native windows.

`gate` decides which statements need this; a statement without kernel calls goes to DuckDB
untouched. `views` keeps views whose SELECT calls kernels.
"""

from cryptodb.engine.gate import Engine, contains_kernels


def refresh_views(engine: Engine) -> list[str]:
    from cryptodb.engine.run import refresh_views as refresh

    return refresh(engine)


__all__ = ["Engine", "contains_kernels", "refresh_views"]
