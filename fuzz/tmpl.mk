# Template engine fuzz target (src/tmpl.c).
FUZZ_BINS += $(OUT)/tmpl_fuzz

tmpl: $(OUT)/tmpl_fuzz

$(OUT)/tmpl_fuzz: $(FUZZDIR)/tmpl_fuzz.c $(SRCDIR)/tmpl.c $(INCDIR)/tmpl.h $(INCDIR)/be_buf.h | $(OUT)
	$(CC) $(CFLAGS) -o $@ $(FUZZDIR)/tmpl_fuzz.c $(SRCDIR)/tmpl.c $(LDLIBS)

.PHONY: tmpl
