# Two commands for a new user: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test install migrate seed lint format messages check-deploy clean

$(BIN)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(BIN)/.installed

migrate: install
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

## run: install, migrate, load demo content, then serve the site with a Celery worker and beat
run: seed
	$(PY) manage.py ensure_dev_admin
	@echo "Site: http://$(HOST):$(PORT)/   Admin: http://$(HOST):$(PORT)/admin/   Mail: var/mail/"
	$(PY) manage.py rundev $(HOST):$(PORT)

## test: ruff, then the whole pytest suite; non-zero exit on any failure
test: install
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## messages: extract and compile the German and English translations
messages: install
	$(PY) manage.py makemessages --locale de --locale en --ignore '.venv/*' --ignore 'var/*' --ignore 'inbound/*' --ignore 'personas/*' --ignore 'tests/*' --ignore 'bench/*'
	cd inbound && ../$(PY) ../manage.py makemessages --locale de --locale en
	cd personas && ../$(PY) ../manage.py makemessages --locale de --locale en
	$(PY) manage.py compilemessages --ignore '.venv/*'

check-deploy: install
	DJANGO_SETTINGS_MODULE=leadsite.settings.production \
	SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))') \
	ALLOWED_HOSTS=www.example.com DATABASE_URL=postgres://app@127.0.0.1:5432/app \
	$(PY) manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
