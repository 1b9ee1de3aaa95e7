# Provider answer readers (src/esp_json.c, json-c only; included by Makefile).
.DEFAULT_GOAL := all

UNIT_BINS += $(OUT)/test_esp_json

$(OUT)/test_esp_json: $(UNITDIR)/test_esp_json.c $(UNITDIR)/unit.h $(SRCDIR)/esp_json.c $(INCDIR)/esp_json.h | $(OUT)
	$(CC) $(CFLAGS) -o $@ $(UNITDIR)/test_esp_json.c $(SRCDIR)/esp_json.c $(LDLIBS)
