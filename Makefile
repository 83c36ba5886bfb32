# tfrobust — every command installs what it needs first (a .venv with requirements.txt + the package
# in editable mode, and Debian's dataset-fashion-mnist when missing).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_DIR ?= runs/demo

.PHONY: install fashion-mnist test test-all demo bench bazel-build bazel-test clean

install: $(STAMP) fashion-mnist

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

fashion-mnist:
	@test -f $(FASHION_MNIST) || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q dataset-fashion-mnist; }

# Fast suite (< 10 minutes on 2 CPU cores); slow tests are marked `slow`.
test: install
	$(PY) -m pytest -q

test-all: install
	$(PY) -m pytest -q -m "slow or not slow"

# Main job: train four models on Fashion-MNIST — a small CNN, a ResNet-20 with stride shrinking, the EVP
# variant of the CNN and an FGSM-RS adversarially trained CNN — export SavedModel + TFLite, attack every
# artifact (quick suite: FGSM, PGD-20, Square-1000; gradient-masking checks on the differentiable ones).
comma := ,
space := $(subst ,, )
# The EVP CNN is attacked as its SavedModel only: Square on its int8 TFLite file alone took 4+ minutes.
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
	$(PY) export/compare.py --dataset=fashion_mnist --test_size=500 --eps=0.1 --suite=quick --out_dir=$(DEMO_DIR)/compare \
	    --artifacts=$(subst $(space),$(comma),$(strip $(DEMO_ARTIFACTS)))

# Benchmarks print ratios measured in one run; the peers (ART, CleverHans, Foolbox) are bench-only extras.
bench: install
	$(PY) -m pip install -q -r requirements-bench.txt
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

bazel-build: install
	tools/bazel/run.sh build

bazel-test: install
	tools/bazel/run.sh test

clean:
	rm -rf runs .pytest_cache
