"""Bytes per event on a current ClickHouse (chdb, 26.x), for the same events `benches/capacity.rs`
stored on 18.16: applies tally's schema (`schema/*.sql`, as tests/modern/check_schema.py does) in a
fresh chdb session, loads the Native dump the harness wrote (`CAPACITY_EXPORT`), merges the table
(`OPTIMIZE TABLE events FINAL`) and prints the same `system.parts` sums as the harness.

Usage: ~/.cache/tally/chdb-venv/bin/python benches/capacity_chdb.py /tmp/events.native
"""

import os
import sys
import tempfile
import time

from chdb import session

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "modern"))
import check_schema  # noqa: E402  (its schema split and order, not a copy of them)


def main():
    dump = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory(prefix="tally-capacity-chdb-") as d:
        s = session.Session(d)
        s.query("CREATE DATABASE IF NOT EXISTS capacity")
        s.query("USE capacity")
        check_schema.apply_schema(s)
        print(s.query("SELECT version()", "TSV").bytes().decode().strip())
        # The dump holds the columns in the order 18.16 has them after the migrations, the same
        # order as here; naming them keeps a difference from going unnoticed.
        names = s.query(
            "SELECT name FROM system.columns WHERE database = 'capacity' AND table = 'events' "
            "ORDER BY position",
            "TSV",
        ).bytes().decode().split()
        cols = ", ".join(f"`{n}`" for n in names)
        # The engine's default, then Strings with their lengths inline as 18.16 writes them
        # (ClickHouse 25.x and later store a String's lengths as a separate stream by default).
        for variant in ["with_size_stream", "single_stream"]:
            s.query(f"ALTER TABLE events MODIFY SETTING string_serialization_version = '{variant}'")
            s.query("TRUNCATE TABLE events")
            load(s, cols, dump, variant)


def load(s, cols, dump, variant):
    """Loads the dump, merges it and prints the sizes."""
    begun = time.monotonic()
    s.query(f"INSERT INTO events ({cols}) SELECT {cols} FROM file('{dump}', 'Native')")
    print(f"string_serialization_version = {variant}: loaded in {time.monotonic() - begun:.1f} s")
    s.query("OPTIMIZE TABLE events FINAL")
    print(
        s.query(
            "SELECT table, partition, count() AS parts, sum(rows) AS n_rows, "
            "sum(bytes_on_disk) AS disk_bytes, sum(data_compressed_bytes) AS compressed_bytes, "
            "sum(data_uncompressed_bytes) AS uncompressed_bytes, "
            "round(sum(bytes_on_disk) / sum(rows), 1) AS disk_per_row, "
            "round(sum(data_uncompressed_bytes) / sum(rows), 1) AS raw_per_row "
            "FROM system.parts WHERE active AND database = 'capacity' AND table = 'events' "
            "GROUP BY table, partition ORDER BY partition",
            "PrettyCompactNoEscapes",
        ).bytes().decode()
    )
    print(
        s.query(
            "SELECT name, round(data_compressed_bytes / rows, 2) AS compressed, "
            "round(data_uncompressed_bytes / rows, 2) AS uncompressed "
            "FROM system.columns, (SELECT count() AS rows FROM events) AS n "
            "WHERE database = 'capacity' AND table = 'events' "
            "ORDER BY data_compressed_bytes DESC LIMIT 20",
            "PrettyCompactNoEscapes",
        ).bytes().decode()
    )


if __name__ == "__main__":
    main()
