"""The :class:`Ui` a page handler works with: the producer and the signer of
the router that served the request.

Handlers are module-level functions, one module per resource, so each can
be read and tested alone; yet one app may mount several UIs, each over its
own producer and secret, so what a handler works with cannot be global.
:func:`~api.ui.pages.create_ui_router` builds one :class:`Ui` and puts
``Depends(ui.attach)`` in its router's ``dependencies``. FastAPI solves a
route's dependencies in order, those of its router first, so
:meth:`Ui.attach` has stored the router's :class:`Ui` in ``request.state``
before any handler parameter is solved; a handler asks for it with a
parameter of type :data:`UiDep`, or, on the pages of a signed-in session, of
type :data:`~api.ui.sessions.VisitDep`, which carries it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Response

from api.ui.appearance import Appearance
from api.ui.assets import static_version
from api.ui.rendering import RENDERER_STATE, templates
from api.ui.tokens import Session, Signer
from producer.producer import Producer

__all__ = ["Ui", "UiDep", "current_ui"]


class Ui:
    """One mounted UI: the producer its pages show, the signer of its
    session cookies, portal links and CSRF tokens, and its appearance (the
    host's name and colour, who may frame it), from the producer's settings."""

    def __init__(self, producer: Producer, signer: Signer) -> None:
        self.producer = producer
        self.signer = signer
        self.appearance = Appearance.of(producer.settings)

    def attach(self, request: Request) -> None:
        """A router dependency: make this UI the one the request's handler gets."""
        setattr(request.state, RENDERER_STATE, self)

    def render(
        self,
        request: Request,
        session: Session | None,
        name: str,
        context: dict[str, Any],
        *,
        status_code: int = 200,
    ) -> Response:
        """The template ``name`` as a page of ``session`` (None: signed out),
        its forms carrying the session's CSRF token."""
        context = {
            **context,
            "session": session,
            "csrf": self.signer.csrf_token(session.id) if session is not None else "",
            "static_version": static_version(),
            "appearance": self.appearance,
        }
        return templates.TemplateResponse(
            request, name, context, status_code=status_code, headers=self.appearance.headers
        )


def current_ui(request: Request) -> Ui:
    """The :class:`Ui` of the router serving ``request``."""
    ui: Ui = getattr(request.state, RENDERER_STATE)
    return ui


UiDep = Annotated[Ui, Depends(current_ui)]
