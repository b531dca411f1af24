"""The VIMs a deployment manages, by name.

Every VNF instance records the name of the VIM it runs on
(:attr:`~mano_core.models.VnfInstance.vim`); the VNFM looks its driver up
here, so one VNFM serves VNFs on several VIMs (sites) at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from mano_core.errors import NotFound
from mano_core.vim.base import VimDriver


class VimRegistry(Mapping[str, VimDriver]):
    """VIM drivers by name; the first is the default."""

    def __init__(self, vims: Sequence[VimDriver]) -> None:
        if not vims:
            raise ValueError("a deployment needs at least one VIM")
        names = [v.name for v in vims]
        if len(set(names)) != len(names):
            raise ValueError(f"VIM names must be unique, got {names}")
        self._vims = {v.name: v for v in vims}
        self.default = names[0]
        """The VIM used when nothing chose another."""

    def __getitem__(self, name: str) -> VimDriver:
        return self._vims[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._vims)

    def __len__(self) -> int:
        return len(self._vims)

    def get_vim(self, name: str) -> VimDriver:
        """The driver of VIM ``name``; raises :class:`~mano_core.errors.NotFound`."""
        try:
            return self._vims[name]
        except KeyError:
            known = ", ".join(self._vims)
            raise NotFound(f"VIM {name!r} is not configured (VIMs: {known})") from None

    async def aclose(self) -> None:
        for vim in self._vims.values():
            await vim.aclose()
