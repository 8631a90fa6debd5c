"""``/api/v1/me``: the signed-in person and their personal API tokens."""

from __future__ import annotations

from functools import wraps
from typing import Any

from flask import g
from flask_login import current_user, login_required

from set2tracks.auth import View, services
from set2tracks.auth.models import ApiToken, User
from set2tracks.auth.schemas import MeSchema, NewTokenArgs, NewTokenSchema, TokenListSchema
from set2tracks.errors import Forbidden
from set2tracks.extensions import db
from set2tracks.schemas import ApiBlueprint

blueprint = ApiBlueprint("me_api", __name__, description="The signed-in account")
SIGNED_IN: list[dict[str, list[str]]] = [{"bearer": []}, {"session": [], "csrf": []}]
BROWSER_SESSION: list[dict[str, list[str]]] = [{"session": [], "csrf": []}]


@blueprint.get("")
@login_required
@blueprint.response(200, MeSchema)
@blueprint.alt_response(401, response="UNAUTHORIZED")
@blueprint.doc(security=SIGNED_IN)
def me() -> User:
    """Who the request is signed in as."""
    user: User = current_user._get_current_object()
    return user


@blueprint.get("/tokens")
@login_required
@blueprint.response(200, TokenListSchema)
@blueprint.alt_response(401, response="UNAUTHORIZED")
@blueprint.doc(security=SIGNED_IN)
def list_tokens() -> dict[str, Any]:
    """List your working API tokens (never their values)."""
    return {"items": services.list_api_tokens(current_user.id)}


def browser_session_only(view: View) -> View:
    """Refuse requests signed in with an API token, before their body is even read."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if g.get("signed_in_by_token"):
            raise Forbidden("Create tokens from your account page, signed in: not with a token.")
        return view(*args, **kwargs)

    return guarded  # type: ignore[return-value]


@blueprint.post("/tokens")
@login_required
@browser_session_only
@blueprint.arguments(NewTokenArgs)
@blueprint.response(201, NewTokenSchema)
@blueprint.alt_response(401, response="UNAUTHORIZED")
@blueprint.alt_response(403, response="FORBIDDEN")
@blueprint.alt_response(409, response="CONFLICT")
@blueprint.doc(security=BROWSER_SESSION)
def create_token(args: dict[str, Any]) -> dict[str, Any]:
    """Create a token (from a signed-in browser, with its CSRF token); shown only here.

    A token cannot mint tokens: a leaked one must not outlive its own revocation.
    """
    issued = services.create_api_token(
        current_user.id, args["name"], days=args.get("expires_in_days")
    )
    token = db.session.get(ApiToken, issued.id)
    assert token is not None  # created just above, in this session
    return {
        "id": token.id,
        "name": token.name,
        "prefix": token.prefix,
        "created_at": token.created_at,
        "last_used_at": None,
        "expires_at": token.expires_at,
        "token": issued.secret,
    }


@blueprint.delete("/tokens/<id:token_id>")
@login_required
@blueprint.response(204)
@blueprint.alt_response(401, response="UNAUTHORIZED")
@blueprint.alt_response(404, response="NOT_FOUND")
@blueprint.doc(security=SIGNED_IN)
def revoke_token(token_id: int) -> None:
    """Revoke one of your tokens."""
    services.revoke_api_token(current_user.id, token_id)
