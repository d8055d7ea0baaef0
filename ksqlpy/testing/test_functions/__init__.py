"""ksqlDB's test-only functions (TEST_UDF, TEST_UDAF, VAR_ARG, …) written as UDF modules, for `ksqlpy conformance`.

ksqlDB's own test cases call functions that exist only in its test function registry. The modules in this
folder re-create them with ksqlpy's public UDF API and are loaded by the conformance runner alone: `run`,
`shell` and `demo` never see them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ksqlpy.functions.loader import UdfLoader
from ksqlpy.functions.registry import FunctionRegistry

if TYPE_CHECKING:
    from ksqlpy.driver import InMemoryDriver

DIRECTORY = Path(__file__).parent


class TestFunctionsRejected(RuntimeError):
    """A module of this folder failed to load: a bug here, not in the case being run."""


def registry_with_test_functions() -> FunctionRegistry:
    """The built-ins plus a fresh load of the test functions, whose state (BAD_UDF's call count) starts anew."""
    registry = FunctionRegistry.with_builtins()
    rejected = [str(result) for result in UdfLoader(registry, [DIRECTORY]).scan() if result.error is not None]
    if rejected:
        raise TestFunctionsRejected("; ".join(rejected))
    return registry


def in_memory_driver_with_test_functions(properties: dict[str, object]) -> InMemoryDriver:
    from ksqlpy.driver import InMemoryDriver

    return InMemoryDriver(properties, registry_with_test_functions())
