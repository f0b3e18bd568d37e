# trialwatch: the daemon by default; data in the /data volume, config mountable at /app/config.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TRIALWATCH_CONFIG=/app/config/trialwatch.toml \
    TRIALWATCH_DATABASE__URL=sqlite:////data/trialwatch.db
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin trialwatch \
    && mkdir -p /app/config /data \
    && chown -R trialwatch:trialwatch /app /data
COPY --chown=trialwatch:trialwatch config/trialwatch.toml /app/config/trialwatch.toml
WORKDIR /app
USER trialwatch
VOLUME ["/data"]
# Healthy while syncs succeed and the data is fresh (see `trialwatch status --check`).
HEALTHCHECK --interval=5m --timeout=30s --start-period=2m --retries=2 \
    CMD ["trialwatch", "status", "--check"]
CMD ["trialwatch", "daemon"]
