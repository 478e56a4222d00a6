"""The ``gridftp`` provider: GridFTP (``gsiftp://``) and FTP servers through gfal2.

- :mod:`.mount`: :class:`GridftpMount`, the Mount over one remote folder;
- :mod:`.streams`: ranged reads and atomic uploads (temporary name, then rename);
- :mod:`.remote`: the gfal2 import, one context per thread, and the one
  translation of gfal2's errors.

gfal2 is the field's standard client (FTS, the WLCG tools); its Python
binding comes from Debian (``python3-gfal2``), linked into .venv by
scripts/setup.sh.
"""

from davgate.providers.gridftp.mount import GridftpMount

__all__ = ["GridftpMount"]
