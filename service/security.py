"""API keys: ``hwnas_<prefix>_<secret>``, shown once; only the secret's SHA-256 is stored.

The prefix finds the row (and is safe to show in listings); the secret is
compared by digest with :func:`hmac.compare_digest`. Keys are 160+ random
bits, so a fast hash is enough (no password stretching needed).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.errors import AuthError, ConflictError, InvalidError, NotFoundError
from service.models import ApiKey, User, as_utc, utcnow

LOCAL_USER = "local"
_KEY = re.compile(r"^hwnas_([a-z0-9]{8})_([A-Za-z0-9_-]{20,200})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class NewKey:
    key: str  # the only time the whole key exists outside its owner's hands
    prefix: str
    user: str
    name: str


def get_or_create_user(session: Session, name: str) -> User:
    if not _NAME.match(name):
        raise InvalidError(
            f"user: {name!r} is not a valid user name (letters, digits, _ . @ -; at most 100)", field="user"
        )
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        user = User(name=name)
        session.add(user)
        session.flush()
    return user


def create_key(session: Session, *, user: str, name: str) -> NewKey:
    if not name.strip() or len(name) > 100:
        raise InvalidError("name: give the key a name of 1-100 characters", field="name")
    owner = get_or_create_user(session, user)
    prefix = secrets.token_hex(4)
    while session.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix)) is not None:
        prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(30)
    session.add(ApiKey(user_id=owner.id, name=name, prefix=prefix, hash=digest(secret)))
    session.flush()
    return NewKey(key=f"hwnas_{prefix}_{secret}", prefix=prefix, user=owner.name, name=name)


def list_keys(session: Session) -> list[tuple[ApiKey, str]]:
    rows = session.execute(select(ApiKey, User.name).join(User).order_by(ApiKey.id)).all()
    return [(k, u) for k, u in rows]


def revoke_key(session: Session, prefix: str) -> ApiKey:
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None:
        raise NotFoundError(f"no API key with prefix {prefix!r} (`hwnas keys list` shows them)", field="prefix")
    if key.revoked is not None:
        raise ConflictError(f"API key {prefix!r} was already revoked on {key.revoked:%Y-%m-%d %H:%M}")
    key.revoked = utcnow()
    return key


def any_active_key(session: Session) -> bool:
    return session.scalar(select(ApiKey.id).where(ApiKey.revoked.is_(None)).limit(1)) is not None


def authenticate(session: Session, token: str) -> User:
    """The user a bearer token belongs to; AuthError (401) for anything else, saying which part is wrong."""
    match = _KEY.match(token.strip())
    if match is None:
        raise AuthError(
            "Authorization: expected 'Bearer hwnas_<prefix>_<secret>' (create a key with "
            "`hwnas keys create --name NAME`)"
        )
    prefix, secret = match.groups()
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    # compare even when the prefix is unknown, so timing does not tell which prefixes exist
    expected = key.hash if key is not None else digest("")
    if not hmac.compare_digest(expected, digest(secret)) or key is None:
        raise AuthError("Authorization: this API key is not valid")
    if key.revoked is not None:
        raise AuthError(f"Authorization: API key {prefix} was revoked")
    now = utcnow()
    if key.last_used is None or (now - as_utc(key.last_used)).total_seconds() > 60:
        key.last_used = now  # at most once a minute: a write per request would serialise readers on SQLite
    return key.user
