"""The SQL vocabulary the completer offers and the highlighter paints: a curated list, not all
of DuckDB's 500 reserved and unreserved words, so that a menu of keywords stays readable."""

STATEMENT_KEYWORDS = (
    "SELECT", "WITH", "FROM", "CREATE", "INSERT", "UPDATE", "DELETE", "DROP", "ALTER", "COPY", "ATTACH",
    "DETACH", "DESCRIBE", "SUMMARIZE", "SHOW", "EXPLAIN", "PRAGMA", "SET", "RESET", "PIVOT", "UNPIVOT",
    "INSTALL", "LOAD", "EXPORT", "IMPORT", "BEGIN", "COMMIT", "ROLLBACK", "CHECKPOINT", "CALL", "USE", "VACUUM",
)
KEYWORDS = tuple(sorted(set(STATEMENT_KEYWORDS) | {
    "ALL", "AND", "ANY", "AS", "ASC", "ASOF", "BETWEEN", "BY", "CASE", "CAST", "COLUMNS", "CROSS", "CURRENT",
    "DATABASE", "DEFAULT", "DESC", "DISTINCT", "ELSE", "END", "EXCEPT", "EXCLUDE", "EXISTS", "FALSE", "FILTER",
    "FIRST", "FOLLOWING", "FULL", "FUNCTION", "GROUP", "HAVING", "IF", "ILIKE", "IN", "INNER", "INTERSECT",
    "INTERVAL", "INTO", "IS", "JOIN", "LAST", "LATERAL", "LEFT", "LIKE", "LIMIT", "MACRO", "MATERIALIZED", "NATURAL",
    "NOT", "NULL", "NULLS", "OFFSET", "ON", "OR", "ORDER", "OUTER", "OVER", "PARTITION", "POSITIONAL",
    "PRECEDING", "QUALIFY", "RANGE", "RECURSIVE", "REPLACE", "RETURNING", "RIGHT", "ROW", "ROWS", "SAMPLE",
    "SCHEMA", "SEQUENCE", "TABLE", "TEMP", "TEMPORARY", "THEN", "TO", "TRUE", "TRY_CAST", "UNBOUNDED", "UNION",
    "USING", "VALUES", "VARIABLE", "VIEW", "WHEN", "WHERE", "WINDOW",
    "BIGINT", "BOOLEAN", "DATE", "DECIMAL", "DOUBLE", "INTEGER", "TIMESTAMP", "TIMESTAMP_NS", "VARCHAR",
}))
KEYWORD_SET = frozenset(KEYWORDS)
# Inside a statement: every keyword but those that only start one.
CLAUSE_KEYWORDS = tuple(k for k in KEYWORDS if k not in STATEMENT_KEYWORDS or k in ("SELECT", "WITH", "FROM", "SET"))
