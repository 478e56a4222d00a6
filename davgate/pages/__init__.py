"""davgate's own HTML pages: a file browser for every folder, and the assets it needs.

- :class:`FolderPages` (:mod:`.middleware`) answers GET and HEAD of a folder
  with a page (:mod:`.folder`) built from the folder's WebDAV resources
  (:mod:`.listing`), rendered from :mod:`.templates` with every value
  escaped (:mod:`.html`). It sits behind authentication and access
  control, so a page shows only what its user may read, and offers only
  what its user may do (the folder's ``oc:permissions``, the letters
  NextCloud reads).
- :class:`Assets` (:mod:`.assets`) serves the pages' CSS, JavaScript and
  icons from the package (``static/``) under :data:`ASSETS`, before
  authentication: they are the same for everyone and hold nothing secret.
  No mount can sit there (``ops.startup.check_reserved_paths``).

The pages change nothing themselves: uploads, new folders, renames and
deletions are the WebDAV requests any client sends (PUT, MKCOL, MOVE,
DELETE), made by the page's script, so every check of the server applies
and its one-line reason is what the user reads. Each page is served with
a strict Content-Security-Policy (:data:`.html.PAGE_HEADERS`): scripts,
styles and images from davgate only, no inline script, no eval.
"""

from __future__ import annotations

from davgate.pages.assets import ASSETS, Assets
from davgate.pages.middleware import FolderPages

__all__ = ["ASSETS", "Assets", "FolderPages"]
