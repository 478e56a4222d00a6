"""DISPEL virtual paths: URLs that run data-processing templates.

Not built yet: a ``dispel`` mount in the configuration is refused at start
with an error that says so.
"""
