"""Accounts and access: users, sessions, invites, API tokens, admin."""
