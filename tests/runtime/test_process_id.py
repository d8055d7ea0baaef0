"""A process's id is kept in its state directory: live processes hold different ids, and a process that
starts after one died takes the dead one's id (so its transactions end the dead one's open ones)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ksqlpy.runtime.process_id import ProcessId


def test_live_processes_hold_different_ids_and_a_released_id_is_taken_again(tmp_path: Path) -> None:
    first, second = ProcessId.claim(tmp_path), ProcessId.claim(tmp_path)
    assert first.value != second.value
    first_value = first.value
    first.release()
    third = ProcessId.claim(tmp_path)
    assert third.value == first_value
    second.release()
    third.release()


def test_a_process_killed_while_holding_an_id_leaves_it_to_the_next_process(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\n"
         "from ksqlpy.runtime.process_id import ProcessId\n"
         f"held = ProcessId.claim(Path({str(tmp_path)!r}))\nprint(held.value, flush=True)\ntime.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        held = holder.stdout.readline().strip()
        while_alive = ProcessId.claim(tmp_path)
        assert while_alive.value != held
    finally:
        holder.kill()
        holder.wait()
    after_death = ProcessId.claim(tmp_path)
    assert after_death.value == held
    while_alive.release()
    after_death.release()
