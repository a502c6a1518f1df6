"""The web app and JSON API (``imagefind serve``): a thin face over ``imagefind.Library``."""

from imagefind.web.app import create_app, serve

__all__ = ["create_app", "serve"]
