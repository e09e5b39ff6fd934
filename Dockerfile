# syntax=docker/dockerfile:1
# Daka: build a wheel-installed virtualenv, then copy it into a slim runtime image.
# .ci/docker-install-check repeats the install steps outside Docker (CI has no Docker engine).

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/daka
# The tested set first (requirements/runtime.lock, hashed, wheels only), then Daka without
# resolving anything: a build next month installs what CI tested (docs/upgrading.md).
COPY requirements/runtime.lock ./requirements/
RUN /opt/daka/bin/pip install --require-hashes --only-binary :all: --no-deps \
        -r requirements/runtime.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY scheduler ./scheduler
COPY storage ./storage
COPY domain ./domain
RUN /opt/daka/bin/pip install --no-deps . && /opt/daka/bin/pip check

FROM python:3.11-slim-bookworm
# No system packages: the charts' CJK font (noto-cjk-sans-otc) and the time zone database
# (tzdata) are Python dependencies, installed into /opt/daka with the rest.
RUN groupadd --system --gid 10001 daka \
    && useradd --system --create-home --home-dir /home/daka --uid 10001 --gid 10001 daka \
    && mkdir -p /data && chown daka:daka /data
COPY --from=build /opt/daka /opt/daka
ENV PATH="/opt/daka/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    DATABASE_URL="sqlite+aiosqlite:////data/daka.db"
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# `daka webhook --port 8080` (deploy/compose.yaml) serves Telegram, /healthz and /metrics here,
# `daka wecom --port 8081` the WeCom app's callbacks; `daka run` (long polling, the default)
# listens on no port unless WeCom is set (WECOM_PORT).
EXPOSE 8080 8081
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 CMD ["daka", "check"]
ENTRYPOINT ["daka"]
CMD ["run"]
