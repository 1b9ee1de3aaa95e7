# Template engine fuzz target (src/tmpl/).
FUZZ_BINS += $(OUT)/tmpl_fuzz

# Small specialisation budgets: faster inputs, and the paths taken when a
# budget runs out are exercised too.
TMPL_PE_BUDGETS := -DPE_MAX_OUTPUT=262144 -DPE_MAX_ITERATIONS=5000L -DPE_MAX_UNROLL=300L

tmpl: $(OUT)/tmpl_fuzz

TMPL_SRCS := $(sort $(wildcard $(SRCDIR)/tmpl/*.c))

$(OUT)/tmpl_fuzz: $(FUZZDIR)/tmpl_fuzz.c $(TMPL_SRCS) $(SRCDIR)/tmpl/tmpl_int.h $(INCDIR)/tmpl.h $(INCDIR)/be_buf.h $(FUZZDIR)/tmpl.mk | $(OUT)
	$(CC) $(CFLAGS) $(TMPL_PE_BUDGETS) -o $@ $(FUZZDIR)/tmpl_fuzz.c $(TMPL_SRCS) $(LDLIBS)

.PHONY: tmpl
