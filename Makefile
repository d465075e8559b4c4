# mailrig: the two commands first.
#   make run   build in release mode and run the main job on the built-in default world
#   make test  install missing test dependencies, then run every test

CARGO ?= cargo

.PHONY: run test deps build lint bench bench-peers

run:
	$(CARGO) build --release -p mailrig
	./target/release/mailrig serve

test: deps
	$(CARGO) test --workspace --all-targets --no-fail-fast
	$(CARGO) test --workspace --doc

deps:
	bash scripts/install-test-deps.sh

build:
	$(CARGO) build --workspace --all-targets

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench:
	$(CARGO) bench -p mailrig-benches

bench-peers:
	bash scripts/bench-peers.sh
