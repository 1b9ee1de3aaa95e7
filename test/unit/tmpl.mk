# Template engine unit tests (src/tmpl/).
UNIT_BINS += $(OUT)/test_tmpl

TMPL_SRCS := $(sort $(wildcard $(SRCDIR)/tmpl/*.c))

$(OUT)/test_tmpl: $(UNITDIR)/test_tmpl.c $(TMPL_SRCS) $(SRCDIR)/tmpl/tmpl_int.h $(INCDIR)/tmpl.h $(INCDIR)/be_buf.h $(UNITDIR)/unit.h | $(OUT)
	$(CC) $(CFLAGS) -o $@ $(UNITDIR)/test_tmpl.c $(TMPL_SRCS) $(LDLIBS)

# The conformance runner's renderer (test/unit/liquid/run_golden.py drives
# it); not a test_* binary, run_unit.sh runs it through the runner.
UNIT_BINS += $(OUT)/liquid_cli

$(OUT)/liquid_cli: $(UNITDIR)/liquid/liquid_cli.c $(TMPL_SRCS) $(SRCDIR)/tmpl/tmpl_int.h $(INCDIR)/tmpl.h $(INCDIR)/be_buf.h | $(OUT)
	$(CC) $(CFLAGS) -o $@ $(UNITDIR)/liquid/liquid_cli.c $(TMPL_SRCS) $(LDLIBS)
