"""Dependencies of the routes, as typed aliases: the settings, a database session, the calling user."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from service.db import session_scope
from service.errors import AuthError
from service.models import User
from service.security import LOCAL_USER, authenticate, get_or_create_user
from service.settings import Settings


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    with session_scope(settings.database_url) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_current_user(request: Request, session: SessionDep, settings: SettingsDep) -> User:
    """The key's owner; without a key, the local user, but only on a server bound to loopback (auth=auto)."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthError("Authorization: expected 'Bearer hwnas_<prefix>_<secret>'")
        user = authenticate(session, token)
    elif settings.keys_required:
        raise AuthError(
            "Authorization: this server needs an API key: send 'Authorization: Bearer <key>' "
            "(an administrator creates one with `hwnas keys create --name NAME`)"
        )
    else:
        user = get_or_create_user(session, LOCAL_USER)
    session.commit()  # now, not after the response: a route may work in its own session (and SQLite's lock)
    return user


UserDep = Annotated[User, Depends(get_current_user)]
