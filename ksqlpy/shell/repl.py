"""`ksqlpy shell`: an interactive prompt over KsqlpyApp, or a statement reader when stdin is not a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory

from ksqlpy.engine import StatementResult
from ksqlpy.errors import KsqlError
from ksqlpy.runtime.app import KsqlpyApp
from ksqlpy.runtime.config import RuntimeConfig
from ksqlpy.secrets import mask_statement
from ksqlpy.shell.complete import StatementCompleter
from ksqlpy.shell.render import StreamingTable, print_result

HISTORY_FILE = Path.home() / ".ksqlpy_history"
PROMPT = "ksql> "
CONTINUATION_PROMPT = "   > "
EXIT_WORDS = {"exit", "quit", "exit;", "quit;"}
BANNER = ("ksqlpy shell: end statements with ';', Tab completes names and keywords, leave with exit, quit or "
          "Ctrl-D; Ctrl-C cancels a running query.")


class MaskedHistory(FileHistory):
    """The history file keeps typed lines with the value of every sensitive setting masked, so
    `SET 'sasl.password'='...'` leaves no secret on disk."""

    def store_string(self, string: str) -> None:
        super().store_string(mask_statement(string))


def scan_statements(text: str) -> tuple[list[str], bool]:
    """Split `text` at each ';' outside quotes, backticks and -- comments: its statements (each with its ';', a
    trailing one without; empty ones dropped), and whether `text` ends with a ';' (then spaces and comments)."""
    statements: list[str] = []
    start = 0
    significant = False  # something other than spaces and comments since `start`
    ended = False
    quote: str | None = None
    index = 0
    while index < len(text):
        char = text[index]
        if quote is not None:
            if char == quote:
                quote = None
        elif text.startswith("--", index):
            newline = text.find("\n", index)
            index = len(text) if newline < 0 else newline
            continue
        elif char == ";":
            if significant:
                statements.append(text[start:index + 1].strip())
            start, significant, ended = index + 1, False, True
        elif not char.isspace():
            significant, ended = True, False
            if char in "'`\"":
                quote = char
        index += 1
    if significant:
        statements.append(text[start:].strip())
    return statements, ended


def statement_complete(text: str) -> bool:
    """True when `text` ends with a ';' that is outside quotes, backticks and comments."""
    return scan_statements(text)[1]


def chunk_statements(lines: Iterable[str]) -> Iterator[str]:
    """Group input lines into complete statements (each ending with ';'); a trailing partial one is kept too."""
    buffer: list[str] = []
    for line in lines:
        if not buffer and line.strip().lower() in EXIT_WORDS:
            return
        buffer.append(line.rstrip("\n"))
        text = "\n".join(buffer)
        if statement_complete(text):
            yield text
            buffer = []
    remainder = "\n".join(buffer).strip()
    if remainder:
        yield remainder


def run_statements(app: KsqlpyApp, text: str, out: TextIO, err: TextIO) -> bool:
    """Execute and print; False when a statement failed (its error is printed, the shell carries on)."""
    return print_results(app.execute_iter(text, StreamingTable(out)), out, err)


def print_results(results: Iterator[StatementResult], out: TextIO, err: TextIO) -> bool:
    """Print each result as it comes; False when one failed (its error is printed, the rest is not run)."""
    try:
        for result in results:
            print_result(result, out)
    except KsqlError as error:
        err.write(f"Error: {error}\n")
        err.flush()
        return False
    return True


def run_shell(config: RuntimeConfig, stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    source = stdin if stdin is not None else sys.stdin
    target = out if out is not None else sys.stdout
    with KsqlpyApp(config) as app:
        if source.isatty() and target.isatty():
            return interactive(app, target)
        ok = True
        for statement in chunk_statements(source):
            ok = run_statements(app, statement, target, sys.stderr) and ok
        return 0 if ok else 1


def interactive(app: KsqlpyApp, out: TextIO, session: PromptSession[str] | None = None) -> int:
    """The prompt over `app`, completing its catalog's names."""
    if session is None:
        session = PromptSession(history=MaskedHistory(str(HISTORY_FILE)), completer=StatementCompleter(app.engine),
                                complete_while_typing=False)
    return prompt_loop(session, out, lambda text: run_statements(app, text, out, sys.stderr))


def prompt_loop(session: PromptSession[str], out: TextIO, run: Callable[[str], object]) -> int:
    """The prompt loop: statements may span lines until a ';' and are then `run`; Ctrl-C drops the typed
    statement or cancels a running query, Ctrl-D / exit / quit leave."""
    out.write(BANNER + "\n")
    buffer: list[str] = []
    while True:
        try:
            line = session.prompt(CONTINUATION_PROMPT if buffer else PROMPT)
        except KeyboardInterrupt:
            buffer = []  # Ctrl-C at the prompt drops the statement being typed, as in a terminal
            continue
        except EOFError:
            return 0
        if not buffer and line.strip().lower() in EXIT_WORDS:
            return 0
        buffer.append(line)
        text = "\n".join(buffer)
        if not statement_complete(text):
            continue
        buffer = []
        try:
            run(text)
        except KeyboardInterrupt:
            out.write("\nCancelled.\n")
