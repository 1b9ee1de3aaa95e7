# broadcast_engine: PGXS build
#
#   make && make install            build and install the extension
#   scripts/test.sh                 build, install and run every test suite
#
EXTENSION = broadcast_engine
MODULE_big = broadcast_engine
# the version is stated once, in the control file
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(EXTENSION).control)

OBJS = \
	src/bounce.o \
	src/bounce_sql.o \
	src/caller.o \
	src/compose.o \
	src/endpoint.o \
	src/events_sql.o \
	src/esp_json.o \
	src/exec.o \
	src/isolation.o \
	src/provider_common.o \
	src/provider_mailgun.o \
	src/provider_mailgun_json.o \
	src/provider_mailjet.o \
	src/provider_mailjet_json.o \
	src/provider_postmark.o \
	src/provider_postmark_json.o \
	src/provider_resend.o \
	src/provider_resend_json.o \
	src/provider_sendgrid.o \
	src/provider_sendgrid_json.o \
	src/provider_ses.o \
	src/provider_smtp.o \
	src/provider_sparkpost.o \
	src/provider_sparkpost_json.o \
	src/ratelimit.o \
	src/sender.o \
	src/sender_record.o \
	src/sender_sql.o \
	src/status.o \
	src/transport.o \
	src/mime.o \
	src/mime_encode.o \
	src/mime_sql.o \
	src/sha256.o \
	src/tmpl/tmpl_date.o \
	src/tmpl/tmpl_filter.o \
	src/tmpl/tmpl_filter_arr.o \
	src/tmpl/tmpl_filter_num.o \
	src/tmpl/tmpl_filter_str.o \
	src/tmpl/tmpl_lex.o \
	src/tmpl/tmpl_parse.o \
	src/tmpl/tmpl_render.o \
	src/tmpl/tmpl_snippet.o \
	src/tmpl/tmpl_spec.o \
	src/tmpl/tmpl_state.o \
	src/tmpl/tmpl_tags.o \
	src/tmpl/tmpl_util.o \
	src/tmpl/tmpl_value.o \
	src/tmpl_sql.o \
	src/tmpl_tz.o \
	src/tracking.o \
	src/tracking_sql.o \
	src/unsub_token.o \
	src/uuid7.o \
	src/launcher.o \
	src/orchestrator.o \
	src/scheduler.o \
	src/shmem.o \
	src/tasks.o \
	src/broadcast_engine.o \
	src/guc.o \
	src/edge/edge.o \
	src/edge/routes.o

# The scripts of the version under work are built by scripts/build_sql.py:
# the complete install script from sql/objects/ (one SQL object per file),
# and the upgrade from the previous version from the parts in
# sql/broadcast_engine--1.2--1.3/ plus every function of sql/objects/functions/.
# Released scripts are plain files, frozen (sql/released.sha256).
UPGRADE_FROM = 1.2
INSTALL_NEXT = sql/$(EXTENSION)--$(EXTVERSION).sql
UPGRADE_NEXT = sql/$(EXTENSION)--$(UPGRADE_FROM)--$(EXTVERSION).sql
DATA = $(sort $(wildcard sql/broadcast_engine--*.sql) $(INSTALL_NEXT) $(UPGRADE_NEXT))
EXTRA_CLEAN = $(INSTALL_NEXT) $(UPGRADE_NEXT)

PG_CONFIG ?= pg_config

PG_CPPFLAGS = -I$(srcdir)/include $(shell pkg-config --cflags libcurl json-c libcrypto libmicrohttpd) \
	-DBE_EXTVERSION=\"$(EXTVERSION)\"
PG_CFLAGS = -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wno-sign-compare
# libcrypto: RSA verification of Amazon SNS webhook signatures (src/events_sql.c)
# libmicrohttpd: the HTTP edge's parser (src/edge/)
SHLIB_LINK = $(shell pkg-config --libs libcurl json-c libcrypto libmicrohttpd) -lm

# `make installcheck` runs the pg_regress suites, in the order of
# test/regress_schedule, against the installed extension in a temporary
# instance preloaded as test/regress.conf says (the workers need
# shared_preload_libraries, so a running server cannot be used as it is).
# It must run as a user that may run initdb (not root): scripts/run_regress.sh
# runs it as postgres in a copy of the tree.
REGRESS = $(shell grep -v '^\#' $(srcdir)/test/regress_schedule)
REGRESS_OPTS = --temp-instance=./tmp_check --temp-config=$(srcdir)/test/regress.conf

# objects depend on the headers they include (.deps/): a changed struct in
# include/ must rebuild every file that uses it
override autodepend = yes

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

all: $(INSTALL_NEXT) $(UPGRADE_NEXT)

# rebuilt on every make: an object or part renamed or removed must not leave a stale script
$(INSTALL_NEXT): FORCE
	python3 $(srcdir)/scripts/build_sql.py check
	python3 $(srcdir)/scripts/build_sql.py install > $@.tmp && mv $@.tmp $@

$(UPGRADE_NEXT): FORCE
	python3 $(srcdir)/scripts/build_sql.py upgrade $(UPGRADE_FROM)--$(EXTVERSION) > $@.tmp && mv $@.tmp $@

FORCE:
.PHONY: FORCE
