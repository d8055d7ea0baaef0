"""UDF discovery and hot reload: every module in the UDF directories is imported and its declarations registered.

Each load of a file imports it afresh under a unique module name, so a new version is complete before it
replaces anything. A reload keeps the Overload objects that running queries compiled against and swaps
their implementation in place; the queries read it at their next batch. A version that fails to import,
declares an invalid signature, clashes with another function, drops or changes a signature that a
running query uses, or changes an aggregate's accumulator type is rejected as a whole, with a message, and
the old version keeps running.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from types import ModuleType

from ksqlpy.functions.registry import FunctionRegistry, Overload
from ksqlpy.functions.udf import accumulator_type_of, declarations_of, is_udf_failure

logger = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL = 1.0
# Queries that use each overload: the loader may not drop or change what is in this map.
InUse = Callable[[], Mapping[int, Sequence[str]]]


@dataclass
class LoadResult:
    """What happened to one file: `error` is None when its (new) version is the one running."""

    path: Path
    action: str  # "loaded", "reloaded", "removed", "rejected"
    functions: list[str] = field(default_factory=list)
    error: str | None = None

    def __str__(self) -> str:
        if self.error is not None:
            return f"UDF module {self.path} rejected: {self.error}"
        return f"UDF module {self.path} {self.action}: {', '.join(self.functions) or 'no functions'}"


@dataclass
class _LoadedFile:
    stamp: tuple[int, int]  # modification time and size when it was last loaded (or rejected)
    overloads: list[Overload]


class UdfRejected(Exception):
    pass


_module_numbers = count(1)


class UdfLoader:
    def __init__(
        self,
        registry: FunctionRegistry,
        directories: Iterable[str | Path],
        in_use: InUse = dict,
    ) -> None:
        self.registry = registry
        self.directories = [Path(d) for d in directories]
        self.in_use = in_use
        self._files: dict[Path, _LoadedFile] = {}
        self._rejected: dict[Path, tuple[int, int]] = {}  # a rejected version is not retried until it changes
        self._lock = threading.Lock()
        self._scanned = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one pass

    def scan(self) -> list[LoadResult]:
        """Load new files, reload changed ones, unregister deleted ones; each outcome is logged and returned."""
        with self._lock:
            results: list[LoadResult] = []
            present = {path: _stamp(path) for path in self._module_files()}
            for path in sorted(set(self._files) - set(present)):
                results.append(self._remove(path))
            for path, stamp in sorted(present.items()):
                loaded = self._files.get(path)
                if (loaded is not None and loaded.stamp == stamp) or self._rejected.get(path) == stamp:
                    continue
                results.append(self._load(path, stamp, loaded))
            # Changes while running are news worth a line at the default level; the first pass, rejections
            # included, is the caller's to report (said twice, a rejection looks like two).
            quiet = not self._scanned
            self._scanned = True
            for result in results:
                (logger.info if quiet else logger.error if result.error else logger.warning)("%s", result)
            return results

    def _module_files(self) -> list[Path]:
        files: list[Path] = []
        for directory in self.directories:
            if directory.is_dir():
                # Modules starting with "_" are helpers a UDF module imports, not UDF modules themselves.
                files += [p.resolve() for p in directory.glob("*.py") if not p.name.startswith("_")]
        return files

    def _load(self, path: Path, stamp: tuple[int, int], loaded: _LoadedFile | None) -> LoadResult:
        action = "reloaded" if loaded is not None else "loaded"
        try:
            module = _import_fresh(path)
            overloads = [o for value in vars(module).values()
                         if getattr(value, "__module__", None) == module.__name__
                         for o in declarations_of(value)]
            for overload in overloads:
                overload.source = str(path)
            kept = self._install(path, overloads, loaded.overloads if loaded else [])
        except UdfRejected as error:
            self._rejected[path] = stamp
            return LoadResult(path, "rejected", error=str(error) + _keeping(loaded))
        except BaseException as error:  # whatever the module's own code raised while importing, sys.exit() too
            if not is_udf_failure(error):
                raise
            self._rejected[path] = stamp
            return LoadResult(path, "rejected", error=_import_failure(path, error) + _keeping(loaded))
        self._rejected.pop(path, None)
        self._files[path] = _LoadedFile(stamp, kept)
        return LoadResult(path, action, sorted({o.signature_text() for o in kept}))

    def _remove(self, path: Path) -> LoadResult:
        loaded = self._files[path]
        users = self._users(loaded.overloads)
        if users:
            return LoadResult(path, "rejected", error=f"deleted, but {users} still use its functions; keeping them")
        for overload in loaded.overloads:
            self.registry.remove_overload(overload)
        del self._files[path]
        return LoadResult(path, "removed", [o.signature_text() for o in loaded.overloads])

    def _install(self, path: Path, new: list[Overload], old: list[Overload]) -> list[Overload]:
        """Validate the whole new version, then register it; returns the overloads now live for the file."""
        in_use = self.in_use()
        replacements: dict[int, Overload] = {}
        for previous in old:
            match = next((o for o in new if o.signature_key() == previous.signature_key()), None)
            if match is not None:
                _check_accumulator(previous, match)
                replacements[id(previous)] = match
            elif id(previous) in in_use:
                raise UdfRejected(
                    f"{previous.signature_text()} is used by {', '.join(in_use[id(previous)])} and the new version "
                    f"{'changes its signature' if any(o.name == previous.name for o in new) else 'removes it'}"
                )
        matched = {id(o) for o in replacements.values()}
        added = [o for o in new if id(o) not in matched]
        for overload in added:
            self._check_clash(overload, path, new)
        live: list[Overload] = []
        for previous in old:
            replacement = replacements.get(id(previous))
            if replacement is None:
                self.registry.remove_overload(previous)
                continue
            _take_over(previous, replacement)
            live.append(previous)
        for overload in added:
            self.registry.add(overload)
            live.append(overload)
        return live

    def _check_clash(self, overload: Overload, path: Path, siblings: list[Overload]) -> None:
        for existing in self.registry.overloads(overload.name):
            if existing.source == str(path):
                continue
            if not existing.user_defined:
                raise UdfRejected(f"{overload.name} is a built-in function; choose another name")
            if existing.params == overload.params or existing.kind != overload.kind:
                raise UdfRejected(f"{overload.signature_text()} is already defined in {existing.source}")
        twins = [o for o in siblings if o is not overload and o.name == overload.name and o.params == overload.params]
        if twins:
            raise UdfRejected(f"{overload.signature_text()} is declared twice")

    def _users(self, overloads: list[Overload]) -> str:
        in_use = self.in_use()
        return ", ".join(sorted({q for o in overloads for q in in_use.get(id(o), ())}))

    # -- the watcher

    def start(self, interval: float = DEFAULT_POLL_INTERVAL) -> None:
        """Poll the directories in a background thread: a changed file is reloaded within `interval` seconds."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._watch, args=(interval,), name="ksqlpy-udf-reload", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def _watch(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.scan()
            except BaseException:  # the watcher must outlive any one bad pass, whatever a module raised
                logger.exception("UDF reload failed")


def _stamp(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_mtime_ns, status.st_size


def _import_fresh(path: Path) -> ModuleType:
    """Import a file as a new module object, leaving any earlier version running untouched."""
    directory = str(path.parent)
    if directory not in sys.path:
        sys.path.append(directory)  # lets a UDF module import its "_helper" modules
    name = f"ksqlpy_udfs.{path.stem}_{next(_module_numbers)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UdfRejected(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look a module up by name while it runs
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _import_failure(path: Path, error: BaseException) -> str:
    """What a module raised while importing, and the line of the module where it happened."""
    if isinstance(error, SystemExit):
        what = f"it called sys.exit({'' if error.code is None else repr(error.code)}) while importing"
    else:
        what = f"{type(error).__name__}: {error}"
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename == str(path)]
    return what + (f" (line {frames[-1].lineno})" if frames else "")


def _check_accumulator(running: Overload, replacement: Overload) -> None:
    """A new version of an aggregate must keep its accumulator type: the accumulators that queries and their
    state stores hold were made by the running version, and the new code will be handed them."""
    if running.kind != "aggregate":
        return
    old, new = accumulator_type_of(running.impl), accumulator_type_of(replacement.impl)
    if old != new:
        raise UdfRejected(f"aggregate {running.name} changes its accumulator type from {old} to {new}")


def _take_over(running: Overload, replacement: Overload) -> None:
    """The running overload (which compiled queries hold) takes the new version's code and metadata."""
    for name in ("impl", "description", "author", "version", "model", "param_names", "source"):
        setattr(running, name, getattr(replacement, name))


def _keeping(loaded: _LoadedFile | None) -> str:
    return "; the previous version keeps running" if loaded is not None else ""
