# Bounce parser fuzz target (src/bounce.c); seeds: test/unit/bounces/*.eml.
FUZZ_BINS += $(OUT)/bounce_fuzz

bounce: $(OUT)/bounce_fuzz

$(OUT)/bounce_fuzz: $(FUZZDIR)/bounce_fuzz.c $(SRCDIR)/bounce.c $(SRCDIR)/sha256.c $(INCDIR)/bounce.h $(FUZZDIR)/bounce.mk | $(OUT)
	$(CC) $(CFLAGS) -o $@ $(FUZZDIR)/bounce_fuzz.c $(SRCDIR)/bounce.c $(SRCDIR)/sha256.c $(LDLIBS)

.PHONY: bounce
