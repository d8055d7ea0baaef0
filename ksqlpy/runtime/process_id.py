"""This process's id among the processes that share a service id and a state directory.

A process's transactional ids end with its id. Kafka Streams keeps its process id in the state directory
for the same reason: a process restarted after a crash takes the id of the one that died, and initialising
its transactions ends what the dead one left open at once. Otherwise read_committed readers of its sinks
wait for transaction.timeout.ms, and on a broker that never times transactions out (Tansu), for ever.

Several live processes may share a state directory (they own different partitions), so ids sit in slots
`process-<n>.id`, each held under an exclusive lock while its process lives; a process takes the lowest
free slot, which after a crash is the dead process's.
"""

from __future__ import annotations

import fcntl
import uuid
from pathlib import Path
from typing import IO


class ProcessId:
    """An id held for as long as this object is not released."""

    def __init__(self, value: str, slot: IO[str]) -> None:
        self.value = value
        self._slot = slot

    @classmethod
    def claim(cls, directory: Path) -> ProcessId:
        """Take the lowest slot under `directory` no live process holds, giving it an id if it has none."""
        directory.mkdir(parents=True, exist_ok=True)
        number = 0
        while True:
            slot = (directory / f"process-{number}.id").open("a+", encoding="utf-8")
            try:
                fcntl.flock(slot, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                slot.close()
                number += 1
                continue
            slot.seek(0)
            value = slot.read().strip()
            if not value:
                value = uuid.uuid4().hex[:12]
                slot.write(value)
                slot.flush()
            return cls(value, slot)

    def release(self) -> None:
        self._slot.close()  # closing the file drops its lock
