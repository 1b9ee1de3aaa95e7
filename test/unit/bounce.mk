# Bounce parser and VERP tokens (src/bounce.c); the corpus in bounces/.
UNIT_BINS += $(OUT)/test_bounce

BOUNCE_SRCS := $(SRCDIR)/bounce.c $(SRCDIR)/sha256.c

$(OUT)/test_bounce: $(UNITDIR)/test_bounce.c $(UNITDIR)/unit.h $(BOUNCE_SRCS) $(INCDIR)/bounce.h $(INCDIR)/sha256.h | $(OUT)
	$(CC) $(CFLAGS) -DBOUNCE_CORPUS='"$(UNITDIR)/bounces"' -o $@ $(UNITDIR)/test_bounce.c $(BOUNCE_SRCS) $(LDLIBS)
