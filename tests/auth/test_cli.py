"""``flask users`` and ``flask tokens``: what operators and the first admin use."""

from __future__ import annotations

from flask import Flask

from set2tracks.auth import services
from set2tracks.extensions import db

PASSWORD = "an operator's long passphrase"


def test_create_an_admin_with_the_password_on_stdin(app: Flask) -> None:
    runner = app.test_cli_runner()

    result = runner.invoke(
        args=["users", "create", "Root@Example.com", "--admin", "--password-stdin"],
        input=PASSWORD + "\n",
    )

    assert result.exit_code == 0, result.output
    user = services.find_user_by_email("root@example.com")
    assert user is not None
    assert user.is_admin
    assert not user.is_premium
    assert services.authenticate("root@example.com", PASSWORD) is not None
    assert PASSWORD not in result.output


def test_create_refuses_a_weak_password_and_a_second_account(app: Flask) -> None:
    runner = app.test_cli_runner()
    runner.invoke(args=["users", "create", "a@example.com", "--password-stdin"], input=PASSWORD)

    weak = runner.invoke(
        args=["users", "create", "b@example.com", "--password-stdin"], input="password\n"
    )
    twice = runner.invoke(
        args=["users", "create", "A@EXAMPLE.COM", "--password-stdin"], input=PASSWORD
    )
    empty = runner.invoke(args=["users", "create", "c@example.com", "--password-stdin"], input="")

    assert weak.exit_code == 1
    assert "at least 12 characters" in weak.output
    assert twice.exit_code == 1
    assert "already exists" in twice.output
    assert empty.exit_code == 1
    assert services.find_user_by_email("b@example.com") is None
    assert services.find_user_by_email("c@example.com") is None


def test_set_admin_and_revoke(app: Flask) -> None:
    runner = app.test_cli_runner()
    runner.invoke(args=["users", "create", "dj@example.com", "--password-stdin"], input=PASSWORD)

    granted = runner.invoke(args=["users", "set-admin", "DJ@example.com"])
    db.session.expire_all()
    assert granted.exit_code == 0
    assert services.find_user_by_email("dj@example.com").is_admin  # type: ignore[union-attr]

    runner.invoke(args=["users", "set-admin", "dj@example.com", "--revoke"])
    db.session.expire_all()
    assert not services.find_user_by_email("dj@example.com").is_admin  # type: ignore[union-attr]
    assert runner.invoke(args=["users", "set-admin", "nobody@example.com"]).exit_code == 1


def test_tokens_create_prints_the_token_alone_on_its_last_line(app: Flask) -> None:
    runner = app.test_cli_runner()
    runner.invoke(args=["users", "create", "dj@example.com", "--password-stdin"], input=PASSWORD)

    result = runner.invoke(args=["tokens", "create", "dj@example.com", "--name", "laptop"])

    token = result.stdout.strip().splitlines()[-1]
    assert result.exit_code == 0
    assert token.startswith("s2t_")
    assert services.user_for_api_token(token).email == "dj@example.com"  # type: ignore[union-attr]
    missing = runner.invoke(args=["tokens", "create", "nobody@example.com", "--name", "x"])
    assert missing.exit_code == 1
