"""The API's interactive docs (Swagger UI) served from a package, not a CDN: the page works
offline and under the app's CSP, which allows no inline script and nothing from elsewhere."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from imagefind.web.pages import templates

ASSETS = "/api/docs/assets"
router = APIRouter(include_in_schema=False)


@router.get("/api/docs", response_class=HTMLResponse)
def docs(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "docs.html", {"assets": ASSETS, "openapi_url": request.app.openapi_url}
    )


def install(app: FastAPI) -> None:
    """The docs page and Swagger UI's own files (the same authentication as any read)."""
    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
