"""Importing the package: what it sets up before Polars loads."""

import os
import subprocess
import sys

# Run in a child: this process imported Polars long ago.
_SHOW_ALLOCATOR_CONF = "import pipelines, polars, os; print(os.environ['_RJEM_MALLOC_CONF'])"


def _allocator_conf(**env: str) -> list[str]:
    """The options Polars handed its allocator in a fresh interpreter, in order (the
    last of a name wins)."""
    clean = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    shown = subprocess.run(
        [sys.executable, "-c", _SHOW_ALLOCATOR_CONF],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return shown.stdout.strip().split(",")


def _effective(options: list[str]) -> dict[str, str]:
    return dict(option.split(":", 1) for option in options)


def test_polars_hands_freed_memory_back_promptly():
    options = _effective(_allocator_conf())
    assert options["muzzy_decay_ms"] == "0"  # not Polars' 1000: lazily freed pages in RSS
    assert int(options["dirty_decay_ms"]) <= 100


def test_a_users_own_allocator_setting_is_kept():
    options = _effective(_allocator_conf(_RJEM_MALLOC_CONF="muzzy_decay_ms:-1"))
    assert options["muzzy_decay_ms"] == "-1"
    assert options["dirty_decay_ms"] == "500"  # Polars' own, since the user set none
