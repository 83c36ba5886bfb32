# tfrobust — every command installs what it needs first (a .venv with requirements.txt,
# requirements-distributed.txt and the package in editable mode; Debian's dataset-fashion-mnist, and for the
# targets that need them Chromium or the offline Bazel, when missing).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_DIR ?= runs/demo

.PHONY: install fashion-mnist chromium bazel test test-all demo bench bazel-build bazel-test clean

install: $(STAMP) fashion-mnist

$(STAMP): requirements.txt requirements-distributed.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-distributed.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

fashion-mnist:
	@test -f $(FASHION_MNIST) || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q dataset-fashion-mnist; }

# Headless Chromium renders report.html in a test.
chromium:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

# Debian's Bazel 4.2.3 and the Java rules WORKSPACE points to (/usr/share/bazel/rules/java): offline builds.
bazel:
	@test -x /usr/bin/bazel -a -d /usr/share/bazel/rules/java || { $(SUDO) apt-get update -q && \
	    $(SUDO) apt-get install -y -q bazel-bootstrap bazel-rules-java; }

# Lint (ruff, configured in pyproject.toml), then the fast suite (< 10 minutes on 2 CPU cores); slow
# tests are marked `slow`.
test: install chromium
	$(PY) -m ruff check .
	$(PY) -m pytest -q

test-all: install chromium
	$(PY) -m pytest -q -m "slow or not slow"

# Main job: train four models on Fashion-MNIST — a small CNN, a ResNet-20 with stride shrinking, the EVP
# variant of the CNN and an FGSM-RS adversarially trained CNN — export SavedModel + TFLite, attack every
# artifact (quick suite: FGSM, PGD-20, Square-1000; gradient-masking checks on the differentiable ones),
# and the CNN's SavedModel once more through a local TF-Serving-protocol server (gRPC).
comma := ,
space := $(subst ,, )
# The EVP CNN is attacked as its SavedModel only: Square on its int8 TFLite file alone took 4+ minutes.
# The CNN is also attacked as a served model: export/serve.py (started and stopped here) serves the export
# base over gRPC on 127.0.0.1:$(DEMO_GRPC_PORT), and the comparison gets a cnn@1:served_grpc row.
DEMO_GRPC_PORT ?= 8510
DEMO_ARTIFACTS := $(addprefix $(DEMO_DIR)/export/,cnn cnn_int8.tflite resnet resnet_int8.tflite \
	evp_cnn fgsm_rs fgsm_rs_int8.tflite)
demo: install
	rm -rf $(DEMO_DIR)
	$(PY) trainers/train.py --flagfile=trainers/configs/demo_cnn.flags \
	    --model_dir=$(DEMO_DIR)/runs/cnn --export_dir=$(DEMO_DIR)/export
	$(PY) trainers/train.py --flagfile=trainers/configs/demo_resnet.flags \
	    --model_dir=$(DEMO_DIR)/runs/resnet --export_dir=$(DEMO_DIR)/export
	$(PY) trainers/train.py --flagfile=trainers/configs/demo_evp_cnn.flags \
	    --model_dir=$(DEMO_DIR)/runs/evp_cnn --export_dir=$(DEMO_DIR)/export
	$(PY) trainers/train.py --flagfile=trainers/configs/demo_fgsm_rs.flags \
	    --model_dir=$(DEMO_DIR)/runs/fgsm_rs --export_dir=$(DEMO_DIR)/export
	$(PY) export/serve.py --export_dir=$(DEMO_DIR)/export --rest_port=-1 --grpc_port=$(DEMO_GRPC_PORT) \
	    > $(DEMO_DIR)/serve.log 2>&1 & server=$$!; trap 'kill $$server 2>/dev/null; wait $$server' EXIT; \
	until grep -qs "^gRPC on" $(DEMO_DIR)/serve.log; do \
	    kill -0 $$server 2>/dev/null || { cat $(DEMO_DIR)/serve.log; exit 1; }; sleep 1; done; \
	$(PY) export/compare.py --dataset=fashion_mnist --test_size=500 --eps=0.1 --suite=quick --out_dir=$(DEMO_DIR)/compare \
	    --artifacts=$(subst $(space),$(comma),$(strip $(DEMO_ARTIFACTS))),grpc://127.0.0.1:$(DEMO_GRPC_PORT)/cnn
	@echo "HTML report: $(DEMO_DIR)/compare/report.html"

# Benchmarks print ratios measured in one run; the peers (ART, CleverHans, Foolbox) are bench-only extras.
bench: install
	$(PY) -m pip install -q -r requirements-bench.txt
	for b in benchmarks/[!_]*.py; do $(PY) $$b || exit 1; done  # benchmarks/_*.py are shared helpers

bazel-build: install bazel
	tools/bazel/run.sh build

bazel-test: install bazel
	tools/bazel/run.sh test

clean:
	rm -rf runs .pytest_cache
