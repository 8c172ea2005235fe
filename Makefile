# nodee: `make run` and `make test` work on a fresh Debian 12 machine; both
# install what is missing first (target deps).

VERSION	:= 0.1.0
CC	?= cc
PKGS	:= libulfius libmicrohttpd jansson gnutls sqlite3 libcurl libzip libsystemd
DEB_PKGS := build-essential pkg-config libulfius-dev libmicrohttpd-dev \
	libjansson-dev libcurl4-gnutls-dev libgnutls28-dev libsqlite3-dev \
	libzip-dev zip unzip libcmocka-dev sqlite3 curl openssl nodejs npm cppcheck clang-tidy \
	libzookeeper-mt-dev zookeeper chromium libsystemd-dev python3 man-db groff-base \
	clang libclang-rt-14-dev

# Empty until `make deps` has installed the -dev packages.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# CFLAGS is the user's (make CFLAGS=-O0 works); the rest is always added.
CFLAGS	?= -O2 -g
# The ZooKeeper C client has no pkg-config file; THREADED selects its
# multi-threaded API (zoo_create and the other synchronous calls).
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -DTHREADED \
	-DNODEE_VERSION='"$(VERSION)"' -Isrc -Ibuild/gen $(PKG_CFLAGS)
override LDLIBS += $(PKG_LIBS) -lzookeeper_mt -lpthread

# -ftrivial-auto-var-init=pattern fills every uninitialised local with
# a pattern, so a read of one (a loop that stops at a NULL never written)
# crashes the sanitized tests instead of passing by luck.
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined -ftrivial-auto-var-init=pattern

MODULES	:= $(filter-out main,$(basename $(notdir $(wildcard src/*.c))))
FUZZ	:= $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
SQL	:= $(sort $(wildcard sql/*.sql))
ASSETS	:= $(sort $(wildcard assets/*)) doc/openapi.json
UNIT	:= $(patsubst tests/unit/test_%.c,%,$(wildcard tests/unit/test_*.c))

OBJS	 = $(MODULES:%=build/%.o) build/gen/embedded.o
SAN_OBJS = $(MODULES:%=build/san/%.o) build/san/embedded.o
FUZZ_OBJS = $(MODULES:%=build/fuzz/%.o) build/fuzz/embedded.o

.PHONY: all run test test-unit test-integration test-browser test-asan lint \
	clean deps format bench install fuzz fuzz-run test-fuzz

all: nodee

nodee: $(OBJS) build/main.o
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

build/%.o: src/%.c src/*.h | build/gen/embedded.c
	@mkdir -p build
	$(CC) $(CFLAGS) -c -o $@ $<

build/gen/embedded.c: $(SQL) $(ASSETS) tools/embed.sh
	@mkdir -p build/gen
	sh tools/embed.sh $@ $(SQL) $(ASSETS)

build/gen/embedded.o: build/gen/embedded.c
	$(CC) $(CFLAGS) -c -o $@ $<

# The same objects under AddressSanitizer and UndefinedBehaviorSanitizer.
build/san/%.o: src/%.c src/*.h | build/gen/embedded.c
	@mkdir -p build/san
	$(CC) $(CFLAGS) $(SAN_FLAGS) -c -o $@ $<

build/san/embedded.o: build/gen/embedded.c
	@mkdir -p build/san
	$(CC) $(CFLAGS) $(SAN_FLAGS) -c -o $@ $<

build/san/nodee: $(SAN_OBJS) build/san/main.o
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

build/san/test_%: tests/unit/test_%.c $(SAN_OBJS)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $^ $(LDLIBS) -lcmocka

build/test_%: tests/unit/test_%.c $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# The objects again with clang, for libFuzzer (tests/fuzz/fuzz_*.c).
FUZZ_CFLAGS := -fsanitize=fuzzer-no-link,address,undefined \
	-fno-sanitize-recover=undefined -fno-omit-frame-pointer

build/fuzz/%.o: src/%.c src/*.h | build/gen/embedded.c
	@mkdir -p build/fuzz
	clang $(CFLAGS) $(FUZZ_CFLAGS) -c -o $@ $<

# clang alone warns that &atomic_ullong is not a uint64_t * (gcc does not).
build/fuzz/stream.o: FUZZ_CFLAGS += -Wno-incompatible-pointer-types

build/fuzz/embedded.o: build/gen/embedded.c
	@mkdir -p build/fuzz
	clang $(CFLAGS) $(FUZZ_CFLAGS) -c -o $@ $<

# Kept, though only pattern rules name them.
.SECONDARY: $(FUZZ_OBJS)

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS)
	clang $(CFLAGS) -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -fno-omit-frame-pointer \
		-o $@ $^ $(LDLIBS)

# Installs missing Debian packages; quiet and quick when all are present.
deps:
	@sh tools/deps.sh $(DEB_PKGS)

# make run LISTEN=127.0.0.1:9090 PREFIX=/tmp/n: another address or prefix.
RUN_LISTEN = $(or $(LISTEN),127.0.0.1:8080)
RUN_PREFIX = $(or $(PREFIX),./var)

run: deps
	@$(MAKE) --no-print-directory all
	@echo "nodee on http://$(RUN_LISTEN)/ with prefix $(RUN_PREFIX); in another terminal:"
	@echo "  ./nodee node --url http://$(RUN_LISTEN) --prefix $(RUN_PREFIX)"
	./nodee daemon --config conf/nodee.conf --prefix $(RUN_PREFIX) \
		--listen $(RUN_LISTEN) --show-login

export ASAN_OPTIONS := detect_leaks=1:abort_on_error=0:exitcode=86
export UBSAN_OPTIONS := print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS := suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0

test: deps
	@$(MAKE) --no-print-directory all lint test-unit test-fuzz \
		test-integration test-browser test-asan

test-unit: $(UNIT:%=build/test_%)
	@set -e; for t in $^; do echo "== $$t"; ./$$t; done

# Every committed seed and past crash (tests/fuzz/corpus/<target>/) once
# through its target: a crash, a leak or undefined behaviour fails.
test-fuzz: $(FUZZ:%=build/fuzz/fuzz_%)
	@sh tools/fuzz.sh replay $(FUZZ)

# make fuzz [FUZZ_TIME=seconds per target] [FUZZ_TARGETS="coord url"]:
# new inputs in build/fuzz/corpus/<target>, crashes in build/fuzz/crashes.
FUZZ_TIME ?= 60
FUZZ_TARGETS ?= $(FUZZ)
fuzz: deps
	@$(MAKE) --no-print-directory fuzz-run

fuzz-run: $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
	@sh tools/fuzz.sh run $(FUZZ_TIME) $(FUZZ_TARGETS)

test-integration: nodee tests/node_modules/.package-lock.json
	NODEE_BIN=$(CURDIR)/nodee node --test tests/integration/

# The console in Debian's chromium, driven by playwright-core, against the
# real daemon and a loopback depot; screenshots in tests/browser/screenshots.
test-browser: nodee tests/node_modules/.package-lock.json
	NODEE_BIN=$(CURDIR)/nodee node --test tests/browser/

# The tests' node packages (s3rver, ws, playwright-core), exactly as locked; npm
# writes the stamp, touched so that it is newer than the lock.
tests/node_modules/.package-lock.json: tests/package.json \
    tests/package-lock.json
	npm ci --prefix tests --no-audit --no-fund
	@touch $@

# Unit and integration tests again with the sanitized build; a leak, an
# overflow or undefined behaviour makes the daemon exit non-zero, which
# the integration tests check on every stop.
test-asan: build/san/nodee $(UNIT:%=build/san/test_%) \
    tests/node_modules/.package-lock.json
	@set -e; for t in $(UNIT:%=build/san/test_%); do echo "== $$t"; ./$$t; done
	NODEE_BIN=$(CURDIR)/build/san/nodee NODEE_SANITIZED=1 \
		node --test tests/integration/

# Numbers, not pass or fail: nodee against curl + unzip, supervisord and
# runit on loopback; the registry's latencies against a local ZooKeeper.
BENCH_PKGS := supervisor runit wrk
bench: deps tests/node_modules/.package-lock.json
	node tests/bench/report.js --start
	@sh tools/deps.sh $(BENCH_PKGS)
	@$(MAKE) --no-print-directory all
	@failed=; for b in artifacts services registry prepare api flood; do \
		echo "node tests/bench/$$b.js"; \
		node tests/bench/$$b.js || failed="$$failed $$b"; \
	done; \
	node tests/bench/report.js --failed "$$failed"

# make install [PREFIX=/usr/local] [DESTDIR=]: the binary, the example
# configuration (kept if there is one), the systemd unit, the man page
# and the bash completion.
INSTALL_PREFIX = $(or $(PREFIX),/usr/local)

install: nodee
	install -D -m 0755 nodee $(DESTDIR)$(INSTALL_PREFIX)/bin/nodee
	@if [ -e $(DESTDIR)/etc/nodee/nodee.conf ]; then \
		echo "keeping $(DESTDIR)/etc/nodee/nodee.conf"; \
	else \
		install -D -m 0644 conf/nodee.conf $(DESTDIR)/etc/nodee/nodee.conf; \
	fi
	sed 's|/usr/local/bin/nodee|$(INSTALL_PREFIX)/bin/nodee|' conf/nodee.service \
		> nodee.service.tmp
	install -D -m 0644 nodee.service.tmp \
		$(DESTDIR)/lib/systemd/system/nodee.service
	@rm -f nodee.service.tmp
	install -D -m 0644 doc/nodee.8 \
		$(DESTDIR)$(INSTALL_PREFIX)/share/man/man8/nodee.8
	install -D -m 0644 conf/nodee.bash-completion \
		$(DESTDIR)$(INSTALL_PREFIX)/share/bash-completion/completions/nodee

# The configuration keys in doc/nodee.8, README.md and conf/nodee.conf,
# from the table in src/config.c (tests/integration/docs.test.js checks
# that they agree).
.PHONY: docs
docs: nodee
	sh tools/docs.sh ./nodee

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
		--inline-suppr --suppress=missingIncludeSystem -Isrc src
	clang-tidy --quiet src/*.c -- $(CFLAGS)

format:
	clang-format -i src/*.c src/*.h tests/unit/*.c tests/fuzz/*.c

clean:
	rm -rf build nodee
