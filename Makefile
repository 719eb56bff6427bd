# offencecam — build, fetch models, run, test, benchmark.
# `make run` and `make test` are the two entry points the README promises.

GO        ?= go
BIN       := bin/offencecam
DATA      ?= ./var
MODELS    ?= $(DATA)/models
TOOLS     := $(CURDIR)/.tools/bin
FUZZTIME  ?= 8s
BENCHTIME ?= 2s
IMAGE     ?= offencecam:latest

export CGO_ENABLED := 1

.PHONY: all build run models test-models tools test vet unit fuzz bench docker clean train

all: build

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/offencecam

# Fetches every default model and the ONNX Runtime library into the cache, verifying sha256.
# OFFENCECAM_MODEL_MIRROR=dir makes a local mirror the first source.
models: build
	$(BIN) models fetch --cache $(MODELS)

run: build models
	$(BIN) serve --data $(DATA)

# Test-only tools: a real S3 server (versitygw) for the object-store and ingest tests.
tools: $(TOOLS)/versitygw

$(TOOLS)/versitygw:
	GOBIN=$(TOOLS) $(GO) install github.com/versity/versitygw/cmd/versitygw@v1.8.0

test: tools models test-models vet unit fuzz

# Optional models the tests cover too (small, from the mirror).
test-models: build
	$(BIN) models fetch --cache $(MODELS) lpd-yunet-int8

vet:
	$(GO) vet ./...

unit:
	OFFENCECAM_MODELS_CACHE=$(abspath $(MODELS)) $(GO) test -race -timeout 40m ./...

# Every Fuzz target runs for FUZZTIME: bounded, so CI time stays predictable.
fuzz:
	OFFENCECAM_MODELS_CACHE=$(abspath $(MODELS)) FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

# Trains the occupant classifier from ../shared/data/roadside-train (5-fold cross-validated,
# then on every image), exports ONNX and ships it into models/ (weights, manifest, model card).
# Debian's python3-torch on the CPU: about 10 minutes on 2 cores (analyze: 2 more).
PYTHON ?= /usr/bin/python3
# First the detector's own driver crop of every frame (`analyze --json`): the model trains on
# those too and is cross-validated on them, as it is used in service.
TRAIN_DATA ?= $(or $(OFFENCECAM_SHARED),../shared)/data/roadside-train
train: build models
	mkdir -p $(DATA)/training/occupant
	$(BIN) analyze --json --cache $(MODELS) $(TRAIN_DATA)/images > $(DATA)/training/occupant/detections.jsonl
	OFFENCECAM_MODELS_CACHE=$(abspath $(MODELS)) $(PYTHON) training/occupant/train.py --data $(TRAIN_DATA) \
		--detections $(DATA)/training/occupant/detections.jsonl --out $(DATA)/training/occupant --ship models

bench: build models
	OFFENCECAM_MODELS_CACHE=$(abspath $(MODELS)) bash scripts/bench.sh

docker:
	docker build -t $(IMAGE) .

clean:
	rm -rf bin
