# Every shopstream service from one file: a shared build stage, a shared runtime stage, and one
# small target per service (docker build --target ingest-api .). docs/decisions.md says why.
# PYTHON_IMAGE: any Debian-like image with python3 >= 3.11 and venv (scripts/offline-images.sh makes one).
ARG PYTHON_IMAGE=python:3.12-slim
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Dependencies first, from pyproject.toml alone: this layer is rebuilt only when they change.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['aws']))" > requirements.txt \
 && pip install --no-cache-dir -r requirements.txt
COPY README.md ./
COPY src ./src
RUN pip install --no-cache-dir --no-deps . && find /opt/venv -name __pycache__ -prune -exec rm -rf {} +

FROM ${PYTHON_IMAGE} AS runtime
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home shopstream \
 && mkdir -p /data/inbox && chown -R shopstream:shopstream /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    SHOPSTREAM_DATA_DIR=/data SHOPSTREAM_HOST=0.0.0.0 \
    SHOPSTREAM_S3_ARCHIVER_PORT=8010 SHOPSTREAM_DYNAMO_WRITER_PORT=8011 SHOPSTREAM_WAREHOUSE_LOADER_PORT=8012
USER 10001
WORKDIR /data
# ECS and docker stop a task with SIGTERM: every service drains its in-flight work and exits 0.
STOPSIGNAL SIGTERM
CMD ["shopstream", "--help"]

FROM runtime AS ingest-api
EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=4s --start-period=20s CMD ["python", "-m", "shopstream.entrypoints.healthcheck", "ingest-api"]
CMD ["shopstream", "service", "ingest-api"]

FROM runtime AS invoice-api
EXPOSE 8001
HEALTHCHECK --interval=5s --timeout=4s --start-period=20s CMD ["python", "-m", "shopstream.entrypoints.healthcheck", "invoice-api"]
CMD ["shopstream", "service", "invoice-api"]

FROM runtime AS analytics-api
EXPOSE 8002
HEALTHCHECK --interval=5s --timeout=4s --start-period=20s CMD ["python", "-m", "shopstream.entrypoints.healthcheck", "analytics-api"]
CMD ["shopstream", "service", "analytics-api"]

FROM runtime AS s3-archiver
EXPOSE 8010
HEALTHCHECK --interval=5s --timeout=4s --start-period=20s CMD ["python", "-m", "shopstream.entrypoints.healthcheck", "s3-archiver"]
CMD ["shopstream", "service", "s3-archiver"]

FROM runtime AS dynamo-writer
EXPOSE 8011
HEALTHCHECK --interval=5s --timeout=4s --start-period=20s CMD ["python", "-m", "shopstream.entrypoints.healthcheck", "dynamo-writer"]
CMD ["shopstream", "service", "dynamo-writer"]

FROM runtime AS warehouse-loader
EXPOSE 8012
HEALTHCHECK --interval=5s --timeout=4s --start-period=20s CMD ["python", "-m", "shopstream.entrypoints.healthcheck", "warehouse-loader"]
CMD ["shopstream", "service", "warehouse-loader"]

FROM runtime AS bulk-loader
HEALTHCHECK --interval=10s --timeout=4s --start-period=20s CMD ["python", "-m", "shopstream.entrypoints.healthcheck", "bulk-loader"]
CMD ["shopstream", "service", "bulk-loader"]

# The cli (docker compose run --rm cli verify): the last target, so a plain `docker build .` makes it.
FROM runtime AS cli
ENTRYPOINT ["shopstream"]
CMD ["--help"]
