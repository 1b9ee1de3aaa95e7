# MIME builder / unsubscribe token fuzz target (src/mime.c, src/mime_encode.c,
# src/unsub_token.c, src/sha256.c).  Included by fuzz/Makefile:
#
#   make -C fuzz mime
#   ./fuzz/build/mime_fuzz -max_total_time=600 -jobs=1 fuzz/build/corpus-mime fuzz/corpus/mime
#
# Fragments are included before the Makefile's "all" rule; keep "all" the
# default goal.
.DEFAULT_GOAL := all

FUZZ_BINS += $(OUT)/mime_fuzz

MIME_FUZZ_SRCS := $(SRCDIR)/mime.c $(SRCDIR)/mime_encode.c \
	$(SRCDIR)/unsub_token.c $(SRCDIR)/sha256.c
MIME_FUZZ_HDRS := $(INCDIR)/mime.h $(INCDIR)/unsub_token.h $(INCDIR)/sha256.h \
	$(INCDIR)/be_buf.h

mime: $(OUT)/mime_fuzz

$(OUT)/mime_fuzz: $(FUZZDIR)/mime_fuzz.c $(MIME_FUZZ_SRCS) $(MIME_FUZZ_HDRS) | $(OUT)
	$(CC) $(CFLAGS) -o $@ $(FUZZDIR)/mime_fuzz.c $(MIME_FUZZ_SRCS) $(LDLIBS)

.PHONY: mime
