"""Password policy, hashing and verification for accounts (ASVS 6.2.x, 11.4.2).

Checks run on the plain text before any hashing, so an over-long or common password costs a
length test and a set look-up, never a key derivation.
"""

from __future__ import annotations

import functools
import re
import secrets
import string
from importlib import resources
from typing import TYPE_CHECKING

from werkzeug.security import check_password_hash, generate_password_hash

MIN_LENGTH = 12
# The upper bound keeps hashing cheap against abusive input; 128 leaves room for passphrases.
MAX_LENGTH = 128
SITE_NAME = "set2tracks"
HASH_METHOD = "scrypt"

TOO_SHORT = f"Use at least {MIN_LENGTH} characters. A few unrelated words make a good password."
TOO_LONG = f"Use at most {MAX_LENGTH} characters."
# One message for every "guessable" reason: it tells the person what to do without saying
# which list or rule matched.
TOO_GUESSABLE = (
    "This password is too easy to guess. Try a few unrelated words, or a phrase only you "
    "would think of."
)

# Digits, ASCII punctuation and spaces around a guessable word are the first variations a
# cracker tries ("Password1234!", "set2tracks 2026"), so they do not make it less guessable.
# Emoji and letters are not stripped: they carry real entropy.
_PADDING = re.compile(rf"[\s{re.escape(string.punctuation)}]+")
_DIGITS = string.digits

if TYPE_CHECKING:
    DUMMY_HASH: str


@functools.cache
def common_passwords() -> frozenset[str]:
    """Return the shipped list of common passwords, loaded on first use."""
    # importlib.resources finds the file wherever the package is installed, zipped or not.
    source = resources.files("set2tracks.auth") / "data" / "common-passwords.txt"
    text = source.read_text(encoding="utf-8")
    # Split on "\n" only, as the build script writes it: splitlines() would also cut an entry
    # at rarer separators.
    return frozenset(
        line
        for line in (raw.removesuffix("\r") for raw in text.split("\n"))
        if line and not line.startswith("#")
    )


def password_problem(password: str, *, email: str = "", display_name: str = "") -> str | None:
    """Return why a new password is refused, in words for its owner, or None if it is fine."""
    # len() counts code points, so emoji and accented letters each count as one character
    # however many bytes they take.
    if len(password) < MIN_LENGTH:
        return TOO_SHORT
    if len(password) > MAX_LENGTH:
        return TOO_LONG
    if _is_guessable(password, email=email, display_name=display_name):
        return TOO_GUESSABLE
    return None


def _guessable_forms(text: str) -> set[str]:
    # Lower-cased, because the list is lower-case and "PASSWORD1234" is as common as
    # "password1234"; then without padding; then without digits at either end.
    lowered = text.lower()
    compact = _PADDING.sub("", lowered)
    return {lowered, compact, compact.strip(_DIGITS)} - {""}


def _is_guessable(password: str, *, email: str, display_name: str) -> bool:
    forms = _guessable_forms(password)
    # Only 84 of the 10,000 common passwords have 12 characters or more: matching the list
    # exactly would let "monkey123456" through, hence the padded forms.
    if not forms.isdisjoint(common_passwords()):
        return True
    email = email.strip()
    local_part = email.rpartition("@")[0]
    context: set[str] = set()
    for word in (SITE_NAME, email, local_part, display_name.strip()):
        context |= _guessable_forms(word)
    return not forms.isdisjoint(context)


def hash_password(password: str) -> str:
    """Return a salted scrypt hash of the password, to store instead of it."""
    # The method is named rather than left to Werkzeug's default, so a library upgrade cannot
    # change the stored format unnoticed; the tests pin the "scrypt:" prefix.
    return generate_password_hash(password, method=HASH_METHOD)


def verify_password(stored_hash: str, password: str) -> bool:
    """Return whether the password matches the stored hash."""
    return check_password_hash(stored_hash, password)


@functools.cache
def _dummy_hash() -> str:
    # Hashed with the same method and cost as real passwords, so checking against it takes
    # as long as checking a real account. Nobody knows the random value, so nothing matches.
    return hash_password(secrets.token_urlsafe(32))


def verify_password_for_unknown_user(password: str) -> bool:
    """Spend the time of a real password check, then return False."""
    # Without this a login for an unknown email would answer before any hashing, telling an
    # attacker by timing alone which emails have accounts.
    check_password_hash(_dummy_hash(), password)
    return False


if not TYPE_CHECKING:

    def __getattr__(name: str) -> str:
        # DUMMY_HASH is computed on first access rather than at import: a scrypt hash costs
        # about 0.1 s and 32 MiB, which the CLI, the worker and migrations never need.
        if name == "DUMMY_HASH":
            return _dummy_hash()
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
