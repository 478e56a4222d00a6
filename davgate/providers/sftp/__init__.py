"""The ``sftp`` provider: SSH/SFTP servers through PyFilesystem2's fs.sshfs.

- :mod:`.mount`: :class:`SftpMount`, the Mount over one remote folder;
- :mod:`.pool`: pooled SSH connections with keepalive and reconnection;
- :mod:`.streams`: pipelined reads and atomic uploads;
- :mod:`.hostkeys`: known_hosts, or trust on first use pinned in the state store;
- :mod:`.remote`: the imports, and the one translation of their errors;
- :mod:`.enroll`: install a generated key with a password used once.
"""

from davgate.providers.sftp.mount import SftpMount

__all__ = ["SftpMount"]
