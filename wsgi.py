"""WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:app``."""

from set2tracks import create_app

app = create_app()
