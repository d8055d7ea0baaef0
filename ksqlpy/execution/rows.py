"""The layout of the rows operators pass each other: a list of columns, the step's own columns first.

Behind a source's columns (and behind a stateful operator's, which emits rows shaped like a source's)
come ten metadata columns, the first five visible to SQL as pseudo columns, the rest for the engine.
A projection replaces the columns but carries the metadata along beside them.
"""

from __future__ import annotations

(
    ROWTIME,  # the row's time as SQL sees it (a TIMESTAMP column's value, if the source names one)
    ROWPARTITION,
    ROWOFFSET,
    WINDOWSTART,  # window bounds of a windowed row, else None
    WINDOWEND,
    ORIGIN,  # position in the input batch of the record the row came from
    TOMBSTONE,  # the row deletes its key (a NULL value)
    TIMESTAMP,  # the timestamp the output record gets
    PARTITION,  # the partition the row belongs to (its task, for state)
    KEY_BYTES,  # the serialized key identifying the row's table entry (with window bounds when windowed)
) = range(10)
META_COLUMNS = 10
