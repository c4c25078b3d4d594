# pyra: OCF resource agents. `make demo` and `make test` are the two commands a new user needs.
PY        ?= /usr/bin/python3
DESTDIR   ?=
OCFDIR    ?= /usr/lib/ocf/resource.d/pyra
PYDIR     ?= /usr/lib/python3/dist-packages
MANDIR    ?= /usr/share/man/man7
MAN8DIR   ?= /usr/share/man/man8
SBINDIR   ?= /usr/sbin
COMPDIR   ?= /usr/share/bash-completion/completions
AGENTS    := $(sort $(notdir $(wildcard agents/*)))
PYTEST    ?= $(PY) -m pytest
PYTEST_ARGS ?=

.PHONY: all deps lint test test-here test-other test-debian12 test-debian13 test-unit test-faults install uninstall deb metadata metadata-check man bench soak demo demo-down clean

all: metadata man

deps:
	sh tools/install-deps.sh

# pyflakes' rules (unused and undefined names, shadowed imports): a dead name fails the build.
lint:
	pyflakes3 lib tests lab tools

# The whole suite on this machine's release, then inside a root of the other supported release (Debian 12
# <-> 13, built with debootstrap and cached: tools/platform-root.sh). Inside such a root, only the first.
test: test-here
	@[ -n "$${PYRA_PLATFORM_ROOT:-}" ] || $(MAKE) --no-print-directory test-other

test-here: deps lint
	$(PYTEST) tests $(PYTEST_ARGS)

test-other: deps
	sh tools/platform-root.sh suite "$$(sh tools/platform-root.sh other)"

test-debian12: deps
	sh tools/platform-root.sh suite bookworm

test-debian13: deps
	sh tools/platform-root.sh suite trixie

test-unit:
	$(PYTEST) tests/unit $(PYTEST_ARGS)

# The fault-injection, bad-input and hardening suite of tests/FAULTS.md (also part of `make test`).
test-faults: deps
	$(PYTEST) $$($(PY) tests/faults_table.py) $(PYTEST_ARGS)

install: man
	install -d $(DESTDIR)$(OCFDIR) $(DESTDIR)$(PYDIR) $(DESTDIR)$(MANDIR)
	for a in $(AGENTS); do sed "s|/usr/lib/python3/dist-packages|$(PYDIR)|" lib/pyra/agents/launch.py > $(DESTDIR)$(OCFDIR)/$$a; chmod 0755 $(DESTDIR)$(OCFDIR)/$$a; done
	rm -rf $(DESTDIR)$(PYDIR)/pyra
	cp -r lib/pyra $(DESTDIR)$(PYDIR)/pyra
	find $(DESTDIR)$(PYDIR)/pyra -name __pycache__ -prune -exec rm -rf {} +
	find $(DESTDIR)$(PYDIR)/pyra -type d -exec chmod 0755 {} + ; find $(DESTDIR)$(PYDIR)/pyra -type f -exec chmod 0644 {} +
	$(PY) -m compileall -q $(DESTDIR)$(PYDIR)/pyra
	for a in $(AGENTS); do install -m 0644 build/man/ocf_pyra_$$a.7 $(DESTDIR)$(MANDIR)/; done
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MAN8DIR) $(DESTDIR)$(COMPDIR)
	sed '/^from pyra.cli.main import/i sys.path.append("$(PYDIR)")' lib/pyra/cli/launch.py > $(DESTDIR)$(SBINDIR)/pyra
	chmod 0755 $(DESTDIR)$(SBINDIR)/pyra
	install -m 0644 build/man/pyra.8 $(DESTDIR)$(MAN8DIR)/pyra.8
	install -m 0644 tools/completion/pyra $(DESTDIR)$(COMPDIR)/pyra
	install -D -m 0644 dist/systemd/resource-agents-deps.target.d/pyra.conf $(DESTDIR)/usr/lib/systemd/system/resource-agents-deps.target.d/pyra.conf

uninstall:
	for a in $(AGENTS); do rm -f $(DESTDIR)$(OCFDIR)/$$a $(DESTDIR)$(MANDIR)/ocf_pyra_$$a.7; done
	-rmdir $(DESTDIR)$(OCFDIR) 2>/dev/null
	rm -rf $(DESTDIR)$(PYDIR)/pyra
	rm -f $(DESTDIR)$(SBINDIR)/pyra $(DESTDIR)$(MAN8DIR)/pyra.8 $(DESTDIR)$(COMPDIR)/pyra
	rm -f $(DESTDIR)/usr/lib/systemd/system/resource-agents-deps.target.d/pyra.conf
	-rmdir $(DESTDIR)/usr/lib/systemd/system/resource-agents-deps.target.d 2>/dev/null

# The Debian package, build/deb/pyra_<version>_all.deb: `make install` into debian/pyra by debhelper, from a
# copy of the tree in build/deb/src (tools/deb.sh); lintian errors fail it.
deb:
	sh tools/deb.sh

metadata:
	$(PY) tools/metadata.py write

metadata-check:
	$(PY) tools/metadata.py check

man:
	$(PY) tools/manpages.py build/man

bench:
	$(PY) tests/bench/run.py $(BENCH_ARGS)

# The chaos soak (lab/soak): random overlapping faults on the 3-node lab for SOAK_MINUTES (default 60), judged by
# invariants; SOAK_SEED (one seed, or a comma-separated list sharing the minutes) replays a run.
SOAK_MINUTES ?= 60
SOAK_SEED ?=
soak: deps install
	SOAK_MINUTES=$(SOAK_MINUTES) SOAK_SEED=$(SOAK_SEED) $(PY) lab/soak/run.py

# The lab's 3-node cluster (lab/pyralab.py) running the demo story (lab/demo.py); demo-down returns once nothing
# of the lab is left (no process, zombies included, no namespace, loop device or mount), or says what is.
demo:
	@sh tools/demo.sh up

demo-down:
	@sh tools/demo.sh down

clean:
	rm -rf build .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
