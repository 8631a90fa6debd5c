# Set2Tracks production image: gunicorn web process by default; the same image runs the
# RQ worker (`python worker.py`) and migrations (`flask --app wsgi db upgrade`), which are
# never run at container start.
FROM python:3.11-slim-bookworm

ENV SET2TRACKS_ENV=production \
    PORT=8000 \
    UPLOAD_DIR=/data/uploads \
    FINGERPRINT_DIR=/data/fingerprints \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# ffmpeg/ffprobe decode and probe audio in the pipeline.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin app

WORKDIR /app

# Dependencies first, so code changes reuse this layer.
COPY requirements/prod.txt requirements/prod.txt
RUN pip install --no-cache-dir -r requirements/prod.txt

# Code stays owned by root (read-only for the app user); only instance/ and the data
# directories are writable. Mount volumes shared by web and worker on /data/uploads and
# /data/fingerprints: a new named volume copies the owner of the directory it is mounted on,
# so each must exist here, owned by the app user, or the app cannot write to it.
COPY set2tracks/ set2tracks/
COPY migrations/ migrations/
COPY wsgi.py worker.py gunicorn.conf.py Procfile ./
RUN mkdir -p /app/instance /data/uploads /data/fingerprints \
    && chown app:app /app/instance /data/uploads /data/fingerprints

USER app

EXPOSE 8000

# /healthz touches no dependency and is never redirected to HTTPS. Containers that do not
# serve HTTP (worker, migrate) must disable this check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${PORT}/healthz', timeout=4)" || exit 1

CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
