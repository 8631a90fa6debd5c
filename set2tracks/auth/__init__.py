"""Accounts and access: users, sessions, invites, API tokens, admin."""

from collections.abc import Callable
from typing import Any, TypeVar

# A view function, kept as its own type by the package's decorators.
View = TypeVar("View", bound=Callable[..., Any])
