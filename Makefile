# mailrig: the two commands first.
#   make run   build in release mode and run the main job (mailrig demo) on the built-in seed world
#   make test  install missing test dependencies, then run every test

CARGO ?= cargo

.PHONY: run test deps build lint bench bench-peers

# The main job: the seed incident reproduced and caught (exits 1 by design,
# because 23 mailboxes lose their mail; make reports that and carries on).
run:
	$(CARGO) build --release -p mailrig
	-./target/release/mailrig demo

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

# Fuzzing (nightly + cargo-fuzz, installed here when missing): every target for FUZZ_SECS seconds on its
# corpus in fuzz/corpus/; a failing input lands in fuzz/artifacts/<target>/ —
# minimise it (cargo +nightly fuzz tmin) and keep it in fuzz/regressions/<target>/,
# which `make test` replays on stable (crates/mailrig-fuzz-checks/tests/fuzz_regressions.rs).
FUZZ_SECS ?= 60
FUZZ_TARGETS ?= scenario_toml target_toml fault_json smtp_data smtp_session imap_session pop3_session
.PHONY: fuzz
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd fuzz && for t in $(FUZZ_TARGETS); do \
		$(CARGO) +nightly fuzz run -s none -a $$t corpus/$$t -- \
			-max_total_time=$(FUZZ_SECS) -rss_limit_mb=2048 -timeout=10 || exit 1; \
	done
