# Template engine unit tests (src/tmpl/).
UNIT_BINS += $(OUT)/test_tmpl

TMPL_SRCS := $(sort $(wildcard $(SRCDIR)/tmpl/*.c))

$(OUT)/test_tmpl: $(UNITDIR)/test_tmpl.c $(TMPL_SRCS) $(SRCDIR)/tmpl/tmpl_int.h $(INCDIR)/tmpl.h $(INCDIR)/be_buf.h $(UNITDIR)/unit.h | $(OUT)
	$(CC) $(CFLAGS) -o $@ $(UNITDIR)/test_tmpl.c $(TMPL_SRCS) $(LDLIBS)
