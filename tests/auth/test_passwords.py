"""Password policy (ASVS 6.2.x), storage (11.4.2) and timing of unknown-account logins."""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

import pytest

from set2tracks.auth import passwords
from set2tracks.auth.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    TOO_GUESSABLE,
    TOO_LONG,
    TOO_SHORT,
    hash_password,
    password_problem,
    verify_password,
    verify_password_for_unknown_user,
)

PASSPHRASE = "violet kettle drums over marble "
# 100 characters with emoji, an accent and spaces: none of them may be dropped or folded.
UNICODE_PASSWORD = ("🎧 Crème brûlée at 4am 🎛️ then the drop 🔊 " * 3)[:100]


def passphrase(length: int) -> str:
    return (PASSPHRASE * (length // len(PASSPHRASE) + 1))[:length]


def data_file_lines() -> list[str]:
    source = resources.files("set2tracks.auth") / "data" / "common-passwords.txt"
    return source.read_text(encoding="utf-8").split("\n")


def refuse_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the password was hashed")

    monkeypatch.setattr(passwords, "generate_password_hash", fail)
    monkeypatch.setattr(passwords, "check_password_hash", fail)
    monkeypatch.setattr(hashlib, "scrypt", fail)


@pytest.mark.parametrize("length", [MIN_LENGTH, 64, MAX_LENGTH])
def test_passwords_of_12_to_128_characters_are_accepted(length: int) -> None:
    assert password_problem(passphrase(length)) is None


def test_a_password_of_11_characters_is_refused_as_too_short() -> None:
    assert password_problem(passphrase(MIN_LENGTH - 1)) == TOO_SHORT


@pytest.mark.parametrize("length", [MAX_LENGTH + 1, 1_000_000])
def test_an_over_long_password_is_refused_at_once_without_hashing(
    length: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse_hashing(monkeypatch)
    password = passphrase(length)

    # refuse_hashing makes any hashing fail the test: the refusal comes first.
    assert password_problem(password) == TOO_LONG


def test_length_counts_characters_not_bytes() -> None:
    twelve_emoji = "🎧🎛️🔊🌙🎹🥁🎷🎺🎸🎻🪗🪘"

    assert len(twelve_emoji.encode()) > MAX_LENGTH // 3
    assert password_problem(twelve_emoji) is None
    assert password_problem("🎧" * MAX_LENGTH) is None
    assert password_problem("🎧" * (MAX_LENGTH + 1)) == TOO_LONG


def test_emoji_and_spaces_are_accepted_and_verify_exactly() -> None:
    assert len(UNICODE_PASSWORD) == 100
    assert password_problem(UNICODE_PASSWORD) is None

    stored = hash_password(UNICODE_PASSWORD)

    assert verify_password(stored, UNICODE_PASSWORD)
    # No bcrypt-style truncation at 72 bytes or characters, and no case folding.
    assert not verify_password(stored, UNICODE_PASSWORD[:72])
    assert not verify_password(stored, UNICODE_PASSWORD.swapcase())
    assert not verify_password(stored, UNICODE_PASSWORD.upper())
    assert not verify_password(stored, UNICODE_PASSWORD + " ")


def assert_neutral(problem: str | None, password: str) -> None:
    assert problem in {TOO_SHORT, TOO_GUESSABLE}
    assert problem is not None
    # The message says what to do, never echoes the password or names the rule or list.
    lowered = problem.lower()
    assert password.lower() not in lowered
    for word in ("common", "list", "breach", "leak", "email", "name", "set2tracks"):
        assert word not in lowered


@pytest.mark.parametrize("password", ["password123", "qwertyuiop", "set2tracks2026"])
def test_well_known_passwords_are_refused_with_a_neutral_message(password: str) -> None:
    assert_neutral(password_problem(password), password)


@pytest.mark.parametrize(
    "password",
    [
        "1qaz2wsx3edc",
        "Password1234",
        "Password1234!",
        "monkey123456",
        "QWERTYUIOP12",
        "  iloveyou  2026  ",
        "SET2TRACKS2026",
        "Set 2 Tracks!!",
        "2026-set2tracks",
        "!!set2tracks!!",
    ],
)
def test_common_passwords_and_the_site_name_padded_to_length_are_refused(
    password: str,
) -> None:
    assert len(password) >= MIN_LENGTH
    assert password_problem(password) == TOO_GUESSABLE


@pytest.mark.parametrize(
    "password",
    ["i love set2tracks mixes", "correct horse battery staple", "a😀😀😀😀😀😀😀😀😀😀😀"],
)
def test_a_guessable_word_among_other_letters_or_emoji_is_accepted(password: str) -> None:
    assert password_problem(password) is None


@pytest.mark.parametrize(
    "password",
    [
        "ada.lovelace@example.org",
        "ADA.LOVELACE@EXAMPLE.ORG",
        "Ada.Lovelace",
        "ada.lovelace1815",
        "Countess of Lovelace",
        "countess of lovelace",
    ],
)
def test_the_email_its_local_part_or_the_display_name_is_refused(password: str) -> None:
    context = {"email": "Ada.Lovelace@example.org", "display_name": "Countess of Lovelace"}

    assert password_problem(password) is None
    assert_neutral(password_problem(password, **context), password)


def test_the_data_file_holds_10000_unique_lower_case_passwords_and_its_provenance() -> None:
    lines = data_file_lines()
    header = [line for line in lines if line.startswith("#")]
    entries = [line for line in lines if line and not line.startswith("#")]

    assert len(entries) == 10_000
    assert len(set(entries)) == len(entries)
    assert all(entry == entry.lower() for entry in entries)
    assert all(1 <= len(entry) <= MAX_LENGTH for entry in entries)
    assert lines[0].startswith("# ")
    assert "Django" in header[0]
    assert "BSD-3-Clause" in header[0]
    assert passwords.common_passwords() == frozenset(entries)


def test_the_list_is_loaded_once_into_a_frozenset() -> None:
    first = passwords.common_passwords()

    assert isinstance(first, frozenset)
    assert passwords.common_passwords() is first


def test_passwords_are_stored_as_salted_scrypt_hashes() -> None:
    password = passphrase(20)

    first, second = hash_password(password), hash_password(password)

    assert first.startswith("scrypt:")
    assert first != second
    assert password not in first
    assert verify_password(first, password)
    assert verify_password(second, password)


def test_the_dummy_hash_is_a_real_scrypt_hash_computed_once() -> None:
    dummy = passwords.DUMMY_HASH
    real = hash_password(passphrase(20))

    # Same method and cost parameters, so a check against it costs what a real one does.
    assert dummy.split("$")[0] == real.split("$")[0]
    assert dummy == passwords.DUMMY_HASH
    assert not hasattr(passwords, "NO_SUCH_NAME")


@pytest.mark.parametrize("password", ["", passphrase(20), UNICODE_PASSWORD])
def test_a_login_for_an_unknown_user_never_succeeds(password: str) -> None:
    assert verify_password_for_unknown_user(password) is False


def test_an_unknown_user_costs_the_same_hash_work_as_a_wrong_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No account enumeration by timing: both paths run one scrypt check of equal cost.

    Compared by the work done (the hash parameters checked), not by a stopwatch: wall
    time on a shared 2-core machine is too noisy for an assertion.
    """
    from set2tracks.auth import passwords

    stored = hash_password(passphrase(20))
    checked: list[str] = []
    real_check = passwords.check_password_hash

    def recording_check(pwhash: str, password: str) -> bool:
        checked.append(pwhash.split("$", 1)[0])
        return real_check(pwhash, password)

    monkeypatch.setattr(passwords, "check_password_hash", recording_check)

    assert verify_password_for_unknown_user(passphrase(21)) is False
    assert verify_password(stored, passphrase(21)) is False

    assert len(checked) == 2
    assert checked[0] == checked[1] == stored.split("$", 1)[0]
