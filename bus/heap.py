"""Keeping what lives as long as the process out of the garbage collector's sight.

Caches, modules and connections live as long as the process; a full
collection walking them all takes tens of milliseconds, which stalls the
event loop (and with it every scrape, push and lease renewal) every few
seconds under load. Once a process has built them (its first collection
cycle, a push receiver whose sender's series are all known), they are
frozen (``gc.freeze``) and never walked again; what is made later is
collected as usual.
"""

from __future__ import annotations

import gc

_frozen = False


def freeze_heap_once() -> None:
    """Freeze what lives now, once per process (whoever gets there first)."""
    global _frozen  # noqa: PLW0603 - once per process
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()
