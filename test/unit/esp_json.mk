# Provider answer readers (src/esp_json.c, json-c only; included by Makefile).
.DEFAULT_GOAL := all

UNIT_BINS += $(OUT)/test_esp_json

# the answer readers live in each provider's pure half, with its composer (compose.mk)
$(OUT)/test_esp_json: $(UNITDIR)/test_esp_json.c $(UNITDIR)/unit.h $(COMPOSE_SRCS) $(INCDIR)/esp_json.h $(INCDIR)/provider_json.h | $(OUT)
	$(CC) $(CFLAGS) -o $@ $(UNITDIR)/test_esp_json.c $(COMPOSE_SRCS) $(LDLIBS)
