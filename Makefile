# Two commands on a fresh machine:  make demo   |   make test
# Both create .venv (pinned versions) when it is missing or out of date.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# this machine's pip configuration lists local indexes that may be absent: drop that noise
QUIET_PIP := 2>&1 | sed '/^WARNING: Location .* is ignored/d'
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.dexterity_ros-installed
export FASTDDS_DEFAULT_PROFILES_FILE ?= $(CURDIR)/config/fastdds_shm.xml
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export MUJOCO_GL ?= egl
export PYTHONUNBUFFERED := 1
# the slowest tests in every run's output: the suite must stay near 10 minutes on 2 cores
PYTEST_ARGS ?= --durations=25

.PHONY: venv demo test test-unit bench clean-venv sync-robot

venv: $(STAMP)

$(STAMP): requirements.txt requirements.lock setup.py package.xml
	@bash dexterity_ros/tools/ensure_system_packages.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check --upgrade pip $(QUIET_PIP)
	$(PIP) install -q --disable-pip-version-check -r requirements.txt -c requirements.lock $(QUIET_PIP)
	$(PIP) install -q --disable-pip-version-check --no-deps -e . $(QUIET_PIP)
	@$(PY) -c "import tf2_msgs.msg" 2>/dev/null || bash dexterity_ros/tools/build_tf2_msgs.sh $(VENV) --no-test
	@$(PY) -c "import rclpy, open3d, pyrealsense2, onnxruntime, mujoco, tf2_msgs.msg" \
	  || { echo "error: the virtualenv is incomplete (see above)"; exit 1; }
	@touch $(STAMP)

demo: venv
	$(VENV)/bin/dexterity-ros demo
	$(VENV)/bin/dexterity-ros demo --live --report-dir runs/demo_live

test: venv
	$(PY) -m pytest -q $(PYTEST_ARGS) test

# the fast, process-free tests only (seconds); `make test` runs everything
test-unit: venv
	$(PY) -m pytest -q -m unit $(PYTEST_ARGS) test

bench: venv
	for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# The robot description is a copy of ../shared/robots/allegro_right.yaml.
sync-robot:
	cp ../shared/robots/allegro_right.yaml config/robots/allegro_right.yaml

clean-venv:
	rm -rf $(VENV)
