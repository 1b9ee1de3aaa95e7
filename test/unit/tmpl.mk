# Template engine unit tests (src/tmpl.c).
UNIT_BINS += $(OUT)/test_tmpl

$(OUT)/test_tmpl: $(UNITDIR)/test_tmpl.c $(SRCDIR)/tmpl.c $(INCDIR)/tmpl.h $(INCDIR)/be_buf.h $(UNITDIR)/unit.h | $(OUT)
	$(CC) $(CFLAGS) -o $@ $(UNITDIR)/test_tmpl.c $(SRCDIR)/tmpl.c $(LDLIBS)
