"""VIM drivers behind one protocol: :class:`~mano_core.vim.base.VimDriver`."""
