"""The management REST API of webhook-producer, as a FastAPI app.

>>> from api import create_app
>>> app = create_app(database_url="sqlite:///./webhooks.db")

Serve it standalone (``webhooks serve``) or mount it in a host application.
"""

from api.app import create_app, openapi_document
from api.auth import Principal, api_key_principal

__all__ = ["Principal", "api_key_principal", "create_app", "openapi_document"]
