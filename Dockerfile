# One image for the four Relais services; the compose file picks the service with its command
# (`python -m services.intake`, ...). Build: docker build -t relais:local .
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/relais
WORKDIR /src

# Dependencies first, read from pyproject.toml, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > requirements.txt \
    && /opt/relais/bin/pip install -r requirements.txt

# The project itself (no dev extras): the packages listed in pyproject.toml.
COPY shared ./shared
COPY services ./services
COPY ops ./ops
RUN /opt/relais/bin/pip install --no-deps .


FROM python:3.11-slim

ENV PATH=/opt/relais/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
COPY --from=build /opt/relais /opt/relais
RUN useradd --system --uid 10001 --create-home --home-dir /home/relais relais
# Not the source tree: `python -m services.<name>` imports the installed package.
WORKDIR /home/relais
USER relais

EXPOSE 8001 8002 8003 8004
CMD ["python", "-m", "services.intake"]
