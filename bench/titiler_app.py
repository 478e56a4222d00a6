"""The TiTiler anchor's application, run by uvicorn in bench/.venv-titiler (titiler.core only).

TiTiler's stock tiler routes (``TilerFactory``): ``/bbox/{x0},{y0},{x1},{y1}.npy``
crops a window, ``.png`` previews it. A page of a multi-page TIFF is named
``GTIFF_DIR:N:<path>``, as GDAL names it (N counts from 1).
"""

from fastapi import FastAPI
from titiler.core.factory import TilerFactory

app = FastAPI(title="TiTiler, davgate's benchmark anchor")
app.include_router(TilerFactory().router)
