"""Where a person's values are found under a folder, for the erasure tests: in any file's bytes
(any case), and in every value of every table of its Parquet and DuckDB files, whose strings may
be compressed."""

from pathlib import Path

import duckdb


def files_holding(
    home: Path, needles: tuple[str, ...], whole: tuple[str, ...] = ()
) -> set[tuple[str, str]]:
    """(file, value) for every file under `home` holding one of `needles` (lower case) anywhere
    in its bytes or in a table's value, or one of `whole` as a whole value (an id, which other ids
    may contain)."""
    hits = set()
    for path in sorted(home.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        where = path.relative_to(home).as_posix()
        data = path.read_bytes().lower()
        hits |= {(where, n) for n in needles if n.encode() in data}
        if path.suffix in (".parquet", ".duckdb"):
            hits |= {(where, n) for n in _in_tables(path, needles, whole)}
    return hits


def _in_tables(path: Path, needles: tuple[str, ...], whole: tuple[str, ...]) -> set[str]:
    found = set()
    with duckdb.connect() as connection:
        if path.suffix == ".parquet":
            connection.read_parquet(str(path)).create_view("searched_file")
            relations = ["searched_file"]
        else:
            connection.execute("ATTACH ? AS searched (READ_ONLY)", [str(path)])
            tables = connection.execute(
                "SELECT schema_name, table_name FROM duckdb_tables() "
                "WHERE database_name = 'searched'"
            ).fetchall()
            relations = [f'searched."{schema}"."{table}"' for schema, table in tables]
        for relation in relations:
            columns = connection.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
            texts = [f'lower(CAST("{column}" AS VARCHAR))' for column, *_ in columns]
            for values, test in ((needles, "contains({}, ?)"), (whole, "{} = ?")):
                condition = " OR ".join(test.format(text) for text in texts)
                for value in values:
                    (count,) = connection.execute(
                        f"SELECT count(*) FROM {relation} WHERE {condition}", [value] * len(texts)
                    ).fetchone()
                    if count:
                        found.add(value)
    return found
