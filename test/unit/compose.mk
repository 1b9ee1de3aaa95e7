# The sender's message composer (src/compose.c with the template engine, the
# MIME builder and tokens; json-c only; included by Makefile).
.DEFAULT_GOAL := all

# each HTTP provider's pure half (provider_json.h): its body and its answer
PROVIDER_JSON_SRCS := $(sort $(wildcard $(SRCDIR)/provider_*_json.c))
COMPOSE_SRCS := $(SRCDIR)/compose.c $(wildcard $(SRCDIR)/tmpl/*.c) $(SRCDIR)/mime.c $(SRCDIR)/mime_encode.c \
	$(SRCDIR)/tracking.c $(SRCDIR)/unsub_token.c $(SRCDIR)/sha256.c $(SRCDIR)/esp_json.c $(PROVIDER_JSON_SRCS)

UNIT_BINS += $(OUT)/test_compose

$(OUT)/test_compose: $(UNITDIR)/test_compose.c $(UNITDIR)/unit.h $(COMPOSE_SRCS) $(INCDIR)/compose.h $(INCDIR)/provider_json.h | $(OUT)
	$(CC) $(CFLAGS) -o $@ $(UNITDIR)/test_compose.c $(COMPOSE_SRCS) $(LDLIBS)
