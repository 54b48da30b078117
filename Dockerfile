# LoRAForge image. Alone it runs the embedded shape (one process, SQLite in /data);
# docker-compose.yml runs the distributed shape (web, worker, beat, Redis, PostgreSQL) from the same image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LORAFORGE_DATA_DIR=/data \
    HOST=0.0.0.0 \
    PORT=8000

RUN groupadd --system --gid 1000 loraforge \
    && useradd --system --uid 1000 --gid loraforge --home-dir /app --shell /usr/sbin/nologin loraforge

WORKDIR /app

# Dependencies first, so code changes reuse this layer.
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY --chown=loraforge:loraforge . .

# Build-time check that settings load and every static file collects (throwaway data folder: the secret key and
# database written there are discarded). At run time WhiteNoise serves static files straight from the apps.
RUN LORAFORGE_DATA_DIR="$(mktemp -d)" sh -c 'python manage.py collectstatic --noinput -v 0 && rm -rf "$LORAFORGE_DATA_DIR"' \
    && mkdir -p /data /data/loras \
    && chown -R loraforge:loraforge /data

USER loraforge
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=4)"]

# Migrate (a no-op when current), then serve. The lifespan starts the embedded Celery worker when REDIS_URL is unset.
CMD ["sh", "-c", "python manage.py migrate --noinput -v 0 && exec uvicorn loraforge.asgi:application --host 0.0.0.0 --port 8000 --lifespan on --no-server-header --timeout-graceful-shutdown 10 --proxy-headers"]
