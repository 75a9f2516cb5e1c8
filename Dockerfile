# One image for every Werkplaats service. The command picks the service and WERKPLAATS_PROCESS picks
# what the process runs (api, worker or all); see docker-compose.yml.
#
#   docker build -t werkplaats:local .
#   docker run --rm -e WERKPLAATS_DATABASE_URL=... -e WERKPLAATS_BROKER_URL=... werkplaats:local python -m matching
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# An unprivileged user with a numeric id (so runAsNonRoot-style checks can verify it) and a writable
# directory for local state (only used when no database URL is given: SQLite files).
RUN groupadd --system --gid 10001 werkplaats \
 && useradd --system --uid 10001 --gid werkplaats --home-dir /var/lib/werkplaats \
        --shell /usr/sbin/nologin werkplaats \
 && install -d -o werkplaats -g werkplaats -m 0750 /var/lib/werkplaats

WORKDIR /src
COPY constraints.txt ./
COPY shared/ shared/
COPY services/ services/
# Non-editable installs: the packages (with their migrations and templates) land in site-packages and
# the sources are not needed at run time. Every version comes from constraints.txt.
RUN pip install -c constraints.txt ./shared ./services/intake ./services/matching ./services/scheduling ./services/portal \
 && pip check \
 && rm -rf /src

ENV WERKPLAATS_DATA_DIR=/var/lib/werkplaats \
    WERKPLAATS_HTTP_HOST=0.0.0.0

WORKDIR /var/lib/werkplaats
USER 10001:10001

EXPOSE 8100 8101 8102 8103

# Overridden per container in docker-compose.yml (python -m intake | matching | scheduling | portal).
CMD ["python", "-m", "intake"]
