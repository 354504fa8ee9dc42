# Developer entry points. `make test` is the whole story on a fresh machine: it runs setup
# (packages, Docker daemon, venv, Kafka jars, images; seconds when already done) first.
VENV := .venv/bin

.PHONY: setup up down test fuzz lint bench chaos stack stack-down stack-test screenshots

setup:
	bash compose/setup.sh

up: setup
	$(VENV)/faasflow up --detach
	bash compose/hello.sh

down:
	$(VENV)/faasflow down

test: setup
	$(VENV)/pytest -q --durations=20

# The gateway against its OpenAPI document at length, with each kind of credentials
# (make test: 10 examples each with the token, 3 with none).
fuzz: setup
	FAASFLOW_FUZZ=full FAASFLOW_FUZZ_EXAMPLES=500 FAASFLOW_FUZZ_TIMEOUT_S=1800 \
		$(VENV)/pytest -q -rP tests/integration/test_fuzz.py

lint:
	$(VENV)/ruff check .
	$(VENV)/mypy pipeline connectors bench

bench: setup
	$(VENV)/python -m bench

# The fault suite at full scale (5,000 events and three worker kills, the broker down 10 s,
# the Docker daemon restarted, …; about 15 minutes). `make test` runs a slice of it.
chaos: setup
	FAASFLOW_CHAOS=full $(VENV)/pytest -q -s -m chaos

# faasflow on Docker Swarm (compose/stack.yml): a Swarm if there is none, three brokers, two
# gateways behind a load balancer on :8080, workers and their autoscaler. README, "Run on
# several machines".
stack: setup
	bash scripts/stack.sh up

stack-down:
	bash scripts/stack.sh down

# The stack's tests at full scale (more events, workers scaled by hand from 1 to 3); `make test`
# runs a slice of them.
stack-test: setup
	FAASFLOW_STACK_LOAD=full $(VENV)/pytest -q -s tests/stack

# The README's two pictures of the dashboard, taken again by the browser tests that take them.
SHOTS := tests/output/screenshots
screenshots: setup
	$(VENV)/pytest -q tests/integration/browser/test_dashboard_overview.py::test_deploy_subscribe_post_and_watch_it_live \
		tests/integration/browser/test_dashboard_replays.py::test_a_shadow_replay_from_the_page_shows_its_differences_side_by_side
	cp $(SHOTS)/test_deploy_subscribe_post_and_watch_it_live/04-overview.png tests/integration/browser/screenshots/overview.png
	cp $(SHOTS)/test_a_shadow_replay_from_the_page_shows_its_differences_side_by_side/01-replay-comparison.png tests/integration/browser/screenshots/replay.png
