"""Virtual collections: parts of the namespace that no storage mount backs.

The federated root (``/``), which lists every mount as a collection, lives in
:mod:`davgate.namespace`; later virtual trees (the DISPEL browser) build on
the read-only resource classes collected here.
"""
