# mk/sanitize.mk - `make check-sanitize`: the whole test suite again,
# built with AddressSanitizer (+ LeakSanitizer) and UndefinedBehaviorSanitizer
# in a separate build under build-san/ (included by the top Makefile.am).
#
#   make check-sanitize       build (incrementally) and run `make check` there
#                             (in parallel: the -j given, else nproc jobs)
#   make clean-sanitize       remove build-san/
#   SANITIZE_CONFIGURE_FLAGS=...  extra ./configure arguments
#
# It fails when any test fails or any sanitizer reports anything: reports go
# to build-san/reports/ (ASan's and UBSan's log_path), so one from a child
# process or a script that ignores exit codes still counts; they are printed
# at the end. abort_on_error/halt_on_error make the reporting process fail.
#
# The build is out of tree (VPATH). Autoconf refuses to configure a VPATH
# build from a source dir that is itself configured in place (as after
# `./configure` in a fresh clone), so then the sources are first exported
# to build-san/src: the files git knows (tracked, and untracked but not
# ignored: the work tree as it is) plus the autotools outputs, or
# `make distdir` outside git. Either way, build-san/obj is the build dir.
#
# The tests run without address-space randomisation (setarch -R, where the
# kernel allows it): with vm.mmap_rnd_bits=32, as some kernels set it, the
# ASan runtime of gcc 12 spins at start-up in about 1 run in 3 (measured
# here: 31 of 100 `xe help` runs hung at 32 bits, 0 of 100 under setarch -R,
# 0 of 100 at 28-31 bits). Shadow-memory checks do not depend on it.
#
# (Not SAN_CFLAGS/SAN_LDFLAGS: Makefile.am adds those to every build.)

SANITIZE_DIR = $(abs_top_builddir)/build-san
SANITIZE_COMPILER_FLAGS = -O1 -g -fsanitize=address,undefined \
	-fno-omit-frame-pointer -fno-sanitize-recover=all
SANITIZE_LINKER_FLAGS = -fsanitize=address,undefined
SANITIZE_CONFIGURE_FLAGS =
SANITIZE_AUTOTOOLS_OUTPUTS = configure aclocal.m4 config.h.in Makefile.in \
	build-aux m4

check-sanitize:
	@set -eu; \
	src='$(abs_top_srcdir)'; top='$(SANITIZE_DIR)'; obj="$$top/obj"; \
	mkdir -p "$$top" "$$obj"; \
	if test -f "$$src/config.status"; then \
	    echo "check-sanitize: $$src is configured in place;" \
	         "building from a copy in $$top/src"; \
	    mkdir -p "$$top/src"; \
	    if git -C "$$src" rev-parse --git-dir >/dev/null 2>&1; then \
	        ( cd "$$src" && \
	          { git ls-files -z --cached --others --exclude-standard; \
	            for f in $(SANITIZE_AUTOTOOLS_OUTPUTS); do \
	                printf '%s\0' "$$f"; done; } | \
	          tar --null --ignore-failed-read -cf - -T - 2>/dev/null ) | \
	        tar -C "$$top/src" -xf -; \
	    else \
	        rm -rf "$$top/src"; \
	        $(MAKE) $(AM_MAKEFLAGS) distdir distdir="$$top/src"; \
	    fi; \
	    src="$$top/src"; \
	fi; \
	if test ! -f "$$obj/Makefile"; then \
	    echo "check-sanitize: configuring in $$obj"; \
	    ( cd "$$obj" && "$$src/configure" --quiet \
	        $(SANITIZE_CONFIGURE_FLAGS) \
	        CFLAGS='$(SANITIZE_COMPILER_FLAGS)' \
	        LDFLAGS='$(SANITIZE_LINKER_FLAGS)' ); \
	fi; \
	jobs=; \
	case ' $(MAKEFLAGS) ' in \
	    *' -j'*|*jobserver*) ;; \
	    *) jobs=-j$$(nproc 2>/dev/null || echo 2) ;; \
	esac; \
	$(MAKE) $(AM_MAKEFLAGS) $$jobs -C "$$obj" all; \
	rm -rf "$$top/reports"; mkdir -p "$$top/reports"; \
	rc=0; \
	asan="detect_leaks=1:abort_on_error=1:log_path=$$top/reports/asan"; \
	ubsan="halt_on_error=1:print_stacktrace=1"; \
	ubsan="$$ubsan:log_path=$$top/reports/ubsan"; \
	norand=; \
	if setarch "$$(uname -m)" -R true >/dev/null 2>&1; then \
	    norand="setarch $$(uname -m) -R"; \
	fi; \
	ASAN_OPTIONS=$$asan UBSAN_OPTIONS=$$ubsan \
	    $$norand $(MAKE) $(AM_MAKEFLAGS) $$jobs -C "$$obj" check || rc=$$?; \
	for f in "$$top"/reports/*; do \
	    test -e "$$f" || continue; \
	    echo "==== sanitizer report $$f"; cat "$$f"; rc=1; \
	done; \
	if test $$rc -ne 0; then \
	    echo "check-sanitize: FAILED (see above and $$obj/test-suite.log)"; \
	else \
	    echo "check-sanitize: no test failures, no sanitizer reports"; \
	fi; \
	exit $$rc

clean-sanitize:
	rm -rf '$(SANITIZE_DIR)'

.PHONY: check-sanitize clean-sanitize
