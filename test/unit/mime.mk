# MIME builder, SHA-256/HMAC and unsubscribe tokens (included by Makefile).
#
# The fragment is included before the Makefile's "all" rule, so make sure
# our first rule does not become the default goal.
.DEFAULT_GOAL := all

MIME_SRCS := $(SRCDIR)/mime.c $(SRCDIR)/mime_encode.c
MIME_DEPS := $(MIME_SRCS) $(INCDIR)/mime.h $(INCDIR)/be_buf.h
TOKEN_SRCS := $(SRCDIR)/unsub_token.c $(SRCDIR)/sha256.c
TOKEN_DEPS := $(TOKEN_SRCS) $(INCDIR)/unsub_token.h $(INCDIR)/sha256.h $(INCDIR)/be_buf.h

UNIT_BINS += $(OUT)/test_mime $(OUT)/test_token $(OUT)/mime_dump

$(OUT)/test_mime: $(UNITDIR)/test_mime.c $(UNITDIR)/unit.h $(MIME_DEPS) | $(OUT)
	$(CC) $(CFLAGS) -o $@ $(UNITDIR)/test_mime.c $(MIME_SRCS) $(LDLIBS)

$(OUT)/test_token: $(UNITDIR)/test_token.c $(UNITDIR)/unit.h $(TOKEN_DEPS) | $(OUT)
	$(CC) $(CFLAGS) -o $@ $(UNITDIR)/test_token.c $(TOKEN_SRCS) $(LDLIBS)

# message dumper for check_mime.py (python3 test/unit/check_mime.py $(OUT))
$(OUT)/mime_dump: $(UNITDIR)/mime_dump.c $(MIME_DEPS) | $(OUT)
	$(CC) $(CFLAGS) -o $@ $(UNITDIR)/mime_dump.c $(MIME_SRCS) $(LDLIBS)
