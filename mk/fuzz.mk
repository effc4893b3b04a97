# libFuzzer targets (clang). Each fuzzer is built from the library's sources
# with -fsanitize=fuzzer,address,undefined, outside automake's programs so
# that `make check` never needs clang.
#   make fuzz              build every fuzzer under fuzz/
#   make fuzz-smoke        run each for FUZZ_SECONDS (default 20) — CI's slice
#   make fuzz-long         run each for FUZZ_LONG_SECONDS (default 600)
FUZZ_CC = clang
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer
FUZZ_LIB_SRCS = $(addprefix $(top_srcdir)/,$(filter %.c,$(lib_libxcp_libxcp_core_la_SOURCES)))
FUZZ_LIBS = $(LIBXML2_LIBS) $(LIBCURL_LIBS) $(YAML_LIBS) $(OPENSSL_LIBS) $(XEN_LIBS) $(ZLIB_LIBS) $(ZSTD_LIBS) $(JANSSON_LIBS) $(HTTP_PARSER_LIBS) $(PAM_LIBS) $(VNCSERVER_LIBS) $(LIBS) -lpthread
FUZZ_EXTRA = fuzz/fuzz_xe_args $(RPC_FUZZERS) fuzz/fuzz_http fuzz/fuzz_uhttp_reply \
	fuzz/fuzz_xva fuzz/fuzz_nbd_neg fuzz/fuzz_cli fuzz/fuzz_rrd \
	fuzz/fuzz_host_restore fuzz/fuzz_rrd_xml
FUZZERS = fuzz/fuzz_journal fuzz/fuzz_qcow2_header fuzz/fuzz_vhd_header \
	$(FUZZ_EXTRA)
FUZZ_SECONDS ?= 20
FUZZ_LONG_SECONDS ?= 600

# The library, instrumented once for every fuzzer that needs it (make's
# VPATH finds the sources, so out-of-tree builds work too).
FUZZ_OBJ_CFLAGS = -g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
FUZZ_OBJS = $(patsubst %.c,fuzz/obj/%.o,$(filter %.c,$(lib_libxcp_libxcp_core_la_SOURCES)))
fuzz/obj/%.o: %.c
	@mkdir -p $(@D)
	@echo "  FUZZCC   $<"
	@$(FUZZ_CC) $(FUZZ_OBJ_CFLAGS) $(INTERNAL_CPPFLAGS) $(JANSSON_CFLAGS) -c $< -o $@
fuzz/libcore.a: $(FUZZ_OBJS)
	@rm -f $@
	$(AR) rcs $@ $(FUZZ_OBJS)

fuzz/fuzz_journal: $(top_srcdir)/tests/fuzz/fuzz_journal.c fuzz/libcore.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(INTERNAL_CPPFLAGS) -o $@ $< fuzz/libcore.a $(FUZZ_LIBS)

# The XVA reader and its ova.xml parser (sr/xva_stream.c, engine/xva.c).
fuzz/fuzz_xva: $(top_srcdir)/tests/fuzz/fuzz_xva.c fuzz/libcore.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(INTERNAL_CPPFLAGS) -o $@ $< fuzz/libcore.a $(FUZZ_LIBS)

# The RRD image reader (lib/libxcp/metrics/rrd.c), the state dir's rrd/.
fuzz/fuzz_rrd: $(top_srcdir)/tests/fuzz/fuzz_rrd.c fuzz/libcore.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(INTERNAL_CPPFLAGS) -o $@ $< fuzz/libcore.a $(FUZZ_LIBS)

# The RRD XML another host PUTs to /rrd (api/metrics_xml.c).
fuzz/fuzz_rrd_xml: $(top_srcdir)/tests/fuzz/fuzz_rrd_xml.c fuzz/libcore.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(INTERNAL_CPPFLAGS) -o $@ $< fuzz/libcore.a $(FUZZ_LIBS)

# A host backup's tar as /host_restore takes it (api/host_backup.c).
fuzz/fuzz_host_restore: $(top_srcdir)/tests/fuzz/fuzz_host_restore.c fuzz/libcore.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(INTERNAL_CPPFLAGS) -o $@ $< fuzz/libcore.a $(FUZZ_LIBS)

# The unix-socket HTTP client's reply reader (lib/libxcp/client/http_unix.c).
fuzz/fuzz_uhttp_reply: $(top_srcdir)/tests/fuzz/fuzz_uhttp_reply.c fuzz/libcore.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(INTERNAL_CPPFLAGS) -o $@ $< fuzz/libcore.a $(FUZZ_LIBS)

QCOW2_SRCS = $(top_srcdir)/lib/libxcp/sr/qcow2.c \
	$(top_srcdir)/lib/libxcp/sr/qcow2_header.c \
	$(top_srcdir)/lib/libxcp/sr/qcow2_alloc.c \
	$(top_srcdir)/lib/libxcp/sr/qcow2_chain.c \
	$(top_srcdir)/lib/libxcp/sr/qcow2_bitmap.c
fuzz/fuzz_qcow2_header: $(top_srcdir)/tests/fuzz/fuzz_qcow2_header.c $(QCOW2_SRCS) \
	$(top_srcdir)/lib/libxcp/sr/qcow2_int.h \
	$(top_srcdir)/lib/libxcp/core/crash_point.h \
	$(top_srcdir)/tests/fuzz/fuzz_image_files.h
	@mkdir -p fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(INTERNAL_CPPFLAGS) -o $@ $< $(QCOW2_SRCS)

VHD_SRCS = $(top_srcdir)/lib/libxcp/sr/vhd.c \
	$(top_srcdir)/lib/libxcp/sr/vhd_meta.c \
	$(top_srcdir)/lib/libxcp/sr/vhd_chain.c
fuzz/fuzz_vhd_header: $(top_srcdir)/tests/fuzz/fuzz_vhd_header.c $(VHD_SRCS) \
	$(top_srcdir)/lib/libxcp/sr/vhd_int.h $(top_srcdir)/lib/libxcp/sr/image_io.h \
	$(top_srcdir)/tests/fuzz/fuzz_image_files.h
	@mkdir -p fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(INTERNAL_CPPFLAGS) -o $@ $< $(VHD_SRCS)

# xcpd's HTTP handler (cmd/xcpd/http.c, the daemon's own code) over the
# instrumented library, behind a real libmicrohttpd daemon.
fuzz/fuzz_http: $(top_srcdir)/tests/fuzz/fuzz_http.c \
		$(addprefix $(top_srcdir)/,$(XCPD_HTTP_SRCS)) \
		$(top_srcdir)/cmd/xcpd/xcpd.h fuzz/libcore.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I$(top_srcdir)/include -I$(top_srcdir)/cmd/xcpd \
	    $(MHD_CFLAGS) $(GNUTLS_CFLAGS) $(JANSSON_CFLAGS) -o $@ $(top_srcdir)/tests/fuzz/fuzz_http.c \
	    $(addprefix $(top_srcdir)/,$(XCPD_HTTP_SRCS)) \
	    $(addprefix $(top_srcdir)/,$(XE_CMD_FUZZ_SRCS)) fuzz/libcore.a \
	    $(MHD_LIBS) $(GNUTLS_LIBS) $(FUZZ_LIBS)

# xcpd's /cli wire code (cmd/xcpd/cli_proto.c): libc only.
fuzz/fuzz_cli: $(top_srcdir)/tests/fuzz/fuzz_cli.c \
		$(top_srcdir)/cmd/xcpd/cli_proto.c $(top_srcdir)/cmd/xcpd/cli_proto.h
	@mkdir -p fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I$(top_srcdir)/cmd/xcpd -o $@ \
	    $(top_srcdir)/tests/fuzz/fuzz_cli.c $(top_srcdir)/cmd/xcpd/cli_proto.c

# xcpd's NBD negotiation (cmd/xcpd/nbd_neg.c): libc only.
fuzz/fuzz_nbd_neg: $(top_srcdir)/tests/fuzz/fuzz_nbd_neg.c \
		$(top_srcdir)/cmd/xcpd/nbd_neg.c $(top_srcdir)/cmd/xcpd/nbd_neg.h
	@mkdir -p fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I$(top_srcdir)/cmd/xcpd -o $@ \
	    $(top_srcdir)/tests/fuzz/fuzz_nbd_neg.c $(top_srcdir)/cmd/xcpd/nbd_neg.c

fuzz: $(FUZZERS)

fuzz-run-%: fuzz/%
	@mkdir -p fuzz/corpus-$*
	@seed=$(top_srcdir)/tests/fuzz/corpus/$(subst fuzz_,,$*); [ -d $$seed ] || seed=; \
	ASAN_OPTIONS=detect_leaks=1 ./fuzz/$* -max_total_time=$(SECS) -rss_limit_mb=2048 \
	    -timeout=10 -print_final_stats=1 fuzz/corpus-$* $$seed 2>&1 | tail -12

fuzz-smoke: fuzz
	@for f in $(FUZZERS); do n=$$(basename $$f); \
	  $(MAKE) --no-print-directory fuzz-run-$$n SECS=$(FUZZ_SECONDS) || exit 1; done
	@echo "fuzz-smoke: $(words $(FUZZERS)) passed, 0 failed"

fuzz-long: fuzz
	@for f in $(FUZZERS); do n=$$(basename $$f); \
	  $(MAKE) --no-print-directory fuzz-run-$$n SECS=$(FUZZ_LONG_SECONDS) || exit 1; done

CLEANFILES += $(FUZZERS) fuzz/libcore.a
.PHONY: fuzz fuzz-smoke fuzz-long
