# The charm's everyday commands. `make test` is what CI runs (after .ci/run installs what it needs).

CARGO ?= cargo
VENV  ?= .venv
# Tempest, pinned, in a venv of its own (its dependencies are not charm-tools').
TEMPEST_VENV ?= .venv-tempest
TEMPEST_VERSION = 47.0.0
BUILD ?= build
# Where cargo puts what it builds: honours CARGO_TARGET_DIR and .cargo/config, as cargo itself does.
TARGET_DIR = $(shell $(CARGO) metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')

.PHONY: all build charm deps demo test check lint unit proof hooks bench soak fuzz venv tempest tempest-venv clean

all: charm

## build: the release binary (LTO, stripped, panic=abort)
build:
	$(CARGO) build --release --locked

## charm: keystone.charm, the zip `juju deploy ./keystone.charm` takes; build/charm/ unpacked
charm: build
	scripts/build-charm $(TARGET_DIR)/release/keystone-charm $(BUILD)
	cp $(BUILD)/keystone.charm keystone.charm

## demo: the main job, a simulated HA deployment (3 keystone units, mysql, hacluster, consumers)
demo: deps
	$(CARGO) build --workspace --locked
	scripts/build-charm $(TARGET_DIR)/debug/keystone-charm $(BUILD)/demo >/dev/null
	$(TARGET_DIR)/debug/juju-sim-demo --charm $(BUILD)/demo/charm $(DEMO_ARGS)

## soak: token continuity on three real units through rotations, a leader change, scaling and
## restarts (also part of `make test`); ends with its one-line outcome
soak: deps
	mkdir -p $(BUILD)
	$(CARGO) test --locked --test token_continuity -- --nocapture > $(BUILD)/soak.log 2>&1; \
	status=$$?; grep -v '^soak: ' $(BUILD)/soak.log | tail -n 25; grep '^soak: ' $(BUILD)/soak.log; exit $$status

## test: every check and test; the README's test command
test: lint proof unit

## check: the fast inner loop: fmt, clippy, and the tests that need no root and no services
## (the libraries' own, but for the host modules' files, processes and services; the
## simulator's rules; hostile input, idempotence, metadata, packaging and the module graph)
check: lint
	$(CARGO) nextest run --workspace --locked --lib $(addprefix --test ,$(CHECK_TESTS)) \
		-E 'not test(/^host::(fs|process|services)::/)'

CHECK_TESTS = hooks_from_metadata hostile_input idempotence module_graph packaging \
	cli_output core_is_charm_free cross_model order rules scripted_show_unit

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	# The library and binary as they ship, without the test kit the line above turns on.
	$(CARGO) clippy -p keystone-charm --lib --bins --locked -- -D warnings

# nextest comes with the machine's Rust toolchain; it runs each test in its own process.
unit: tempest-venv
	TEMPEST_VENV=$(abspath $(TEMPEST_VENV)) $(CARGO) nextest run --workspace --locked --no-fail-fast

## tempest: OpenStack's identity API tests (Tempest) against the charm's Keystone on real
## services, three units behind a VIP (also part of `make test`); one line per run
tempest: tempest-venv
	mkdir -p $(BUILD)
	TEMPEST_VENV=$(abspath $(TEMPEST_VENV)) $(CARGO) nextest run --locked --no-fail-fast \
		--test tempest_identity --no-capture > $(BUILD)/tempest.log 2>&1; \
	status=$$?; grep '^tempest identity: ' $(BUILD)/tempest.log; \
	[ $$status = 0 ] || tail -n 40 $(BUILD)/tempest.log; exit $$status

tempest-venv: $(TEMPEST_VENV)/bin/tempest

$(TEMPEST_VENV)/bin/tempest:
	python3 -m venv $(TEMPEST_VENV)
	$(TEMPEST_VENV)/bin/pip install --quiet tempest==$(TEMPEST_VERSION)

## proof: `charm proof` on the packed charm must give no warning and no error
proof: $(VENV)/bin/charm-proof
	$(CARGO) build --locked
	scripts/build-charm $(TARGET_DIR)/debug/keystone-charm $(BUILD)/proof >/dev/null
	$(VENV)/bin/charm-proof $(BUILD)/proof/charm

$(VENV)/bin/charm-proof:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet charm-tools ops

venv: $(VENV)/bin/charm-proof

## deps: the Debian packages the tests and the demo need (root)
deps:
	scripts/install-deps

## hooks: regenerate hooks/ and actions/ (links to dispatch) from what the binary handles
hooks:
	$(CARGO) build --locked
	rm -f hooks/* actions/*
	for hook in $$($(TARGET_DIR)/debug/keystone-charm hooks); do ln -s ../dispatch hooks/$$hook; done
	mkdir -p actions
	for action in $$($(TARGET_DIR)/debug/keystone-charm actions); do ln -s ../dispatch actions/$$action; done

## bench: whole-process hook times, hook-tool calls and binary size; fernet rotation convergence
## (3, 5, 9 units) and a hook's peak RSS; real-stack deploy and first-token times; Keystone
## under load through a VIP, this charm's configuration against the Python charm's; simulator
## hooks/s; the identity relations at scale (100 relations, in memory)
bench: build
	$(CARGO) build --release --locked -p juju-sim --bin juju-sim-tool
	$(CARGO) bench --bench hooks --locked
	$(CARGO) bench --bench keystone_load --locked
	$(CARGO) bench -p juju-sim --bench hooks_per_second --locked
	$(CARGO) test --lib --locked at_scale -- --nocapture

## fuzz: each cargo-fuzz target (fuzz/) for FUZZ_SECONDS seconds (60 by default); needs the
## nightly toolchain and cargo-fuzz (cargo install cargo-fuzz). Not part of `make test`.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = config_render relation_parsers
fuzz:
	cd fuzz && for target in $(FUZZ_TARGETS); do \
		$(CARGO) +nightly fuzz run $$target -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

clean:
	$(CARGO) clean
	rm -rf $(BUILD) keystone.charm
