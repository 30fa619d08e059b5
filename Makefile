# Builds the three programs, the AI stand-in, aimsg-token and the test tools.
#   make            release build in build/release
#   make asan       AddressSanitizer + UBSan build in build/asan
#   make run        install what is missing, build, start the whole system
#   make stop       stop what `make run` started
#   make test       install what is missing, build, run every test
#   make bench      the benchmark (see README)
#   make fuzz       libFuzzer harnesses (clang) in build/fuzz, each run for
#                   FUZZ_SECONDS (default 60); FUZZ="sse config" runs only those

BUILD ?= build/release
SAN ?=
OPT ?= -O2

PKGS := libwebsockets hiredis libcurl jansson yaml-0.1 libjwt libcrypto
CFLAGS := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wpointer-arith \
          -Wformat=2 -g $(OPT) -MMD -MP -Icommon $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS :=
ifeq ($(SAN),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(SAN),fuzz)
CC := clang
CFLAGS += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
          -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=fuzzer,address,undefined
endif

LIB_REDIS := $(shell pkg-config --libs hiredis 2>/dev/null)
LIB_YAML := $(shell pkg-config --libs yaml-0.1 2>/dev/null)
LIB_JSON := $(shell pkg-config --libs jansson 2>/dev/null)
LIB_CURL := $(shell pkg-config --libs libcurl 2>/dev/null)
LIB_LWS := $(shell pkg-config --libs libwebsockets 2>/dev/null)
LIB_UV := $(shell pkg-config --libs libuv 2>/dev/null)
LIB_JWT := $(shell pkg-config --libs libjwt libcrypto 2>/dev/null)
LIB_COMMON := $(BUILD)/libcommon.a $(LIB_REDIS) $(LIB_YAML) $(LIB_JWT)

COMMON_SRC := $(wildcard common/*.c)
FCGI_SRC := $(wildcard fcgi-api/*.c)
WORKER_SRC := $(filter-out worker/main.c,$(wildcard worker/*.c))
WSPUSH_SRC := $(wildcard ws-push/*.c)
STANDIN_SRC := $(wildcard ai-standin/*.c)
TOKEN_SRC := $(wildcard token/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

PROGRAMS := $(BUILD)/fcgi-api $(BUILD)/worker $(BUILD)/ws-push $(BUILD)/ai-standin $(BUILD)/aimsg-token
TOOLS := $(BUILD)/wsclient $(BUILD)/slowloris $(BUILD)/wsload $(BUILD)/sendcost
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/%,$(wildcard tests/unit/test_*.c))

all: $(PROGRAMS) $(TOOLS) $(UNIT_TESTS)

asan:
	$(MAKE) BUILD=build/asan SAN=1 OPT=-O1

ifneq ($(V),1)
Q := @
endif

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC $(BUILD)/$<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libcommon.a: $(call obj,$(COMMON_SRC))
	$(AR) rcs $@ $^

$(BUILD)/fcgi-api: $(call obj,$(FCGI_SRC)) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $(call obj,$(FCGI_SRC)) $(LIB_COMMON) $(LIB_JSON) -lfcgi

$(BUILD)/worker: $(call obj,$(WORKER_SRC) worker/main.c) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $(call obj,$(WORKER_SRC) worker/main.c) $(LIB_COMMON) $(LIB_JSON) $(LIB_CURL)

$(BUILD)/ws-push: $(call obj,$(WSPUSH_SRC)) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $(call obj,$(WSPUSH_SRC)) $(LIB_COMMON) $(LIB_JSON) $(LIB_LWS)

$(BUILD)/ai-standin: $(call obj,$(STANDIN_SRC)) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $(call obj,$(STANDIN_SRC)) $(LIB_COMMON) $(LIB_JSON) $(LIB_LWS) $(LIB_UV)

$(BUILD)/aimsg-token: $(call obj,$(TOKEN_SRC)) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $(call obj,$(TOKEN_SRC)) $(LIB_COMMON) $(LIB_JSON)

$(BUILD)/wsclient: $(call obj,tests/tools/wsclient.c) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $(call obj,tests/tools/wsclient.c) $(LIB_COMMON) $(LIB_LWS)

$(BUILD)/slowloris: $(call obj,tests/tools/slowloris.c)
	$(CC) $(LDFLAGS) -o $@ $(call obj,tests/tools/slowloris.c)

$(BUILD)/wsload: $(call obj,bench/wsload.c) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $(call obj,bench/wsload.c) $(LIB_COMMON) $(LIB_LWS) -lpthread

$(BUILD)/sendcost: $(call obj,bench/sendcost.c)
	$(CC) $(LDFLAGS) -o $@ $(call obj,bench/sendcost.c)

# Fuzz harnesses (tests/fuzz/fuzz_NAME.c) link common/ and the parser they fuzz.
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
fuzz_src_multipart := fcgi-api/multipart.c
fuzz_src_query := fcgi-api/query.c
fuzz_src_sse := worker/sse.c
fuzz_src_standin_body := ai-standin/script.c
define fuzz_rule
$(BUILD)/fuzz_$(1): $(call obj,tests/fuzz/fuzz_$(1).c $(fuzz_src_$(1))) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $$@ $(call obj,tests/fuzz/fuzz_$(1).c $(fuzz_src_$(1))) $(LIB_COMMON) $(LIB_JSON)
endef
$(foreach n,$(FUZZ_NAMES),$(eval $(call fuzz_rule,$(n))))
fuzz-harnesses: $(patsubst %,$(BUILD)/fuzz_%,$(FUZZ_NAMES))

# Unit tests link the module under test; they may use any library.
$(BUILD)/test_%: $(call obj,tests/unit/test_%.c) $(call obj,$(WORKER_SRC) $(FCGI_SRC)) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $(call obj,tests/unit/test_$*.c) \
	    $(filter-out %/main.o,$(call obj,$(WORKER_SRC) $(FCGI_SRC))) \
	    $(LIB_COMMON) $(LIB_JSON) $(LIB_CURL) -lfcgi

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

deps:
	sh scripts/install-deps.sh

run: deps
	$(MAKE) all
	bash scripts/run.sh

stop:
	sh scripts/stop.sh

test: deps
	$(MAKE) all
	$(MAKE) asan
	if command -v clang >/dev/null; then $(MAKE) fuzz-build; fi
	sh tests/run.sh

# Without clang the harnesses are not built; tests/run.sh then reports a FAIL.
fuzz-build:
	$(MAKE) BUILD=build/fuzz SAN=fuzz OPT=-O1 fuzz-harnesses

FUZZ_SECONDS ?= 60
fuzz: deps fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run.sh $(FUZZ)

BENCH_OPT := -O2 -DNDEBUG
bench: deps
	$(MAKE) BUILD=build/bench OPT="$(BENCH_OPT)" all
	BIN=build/bench BUILD_FLAGS="$(BENCH_OPT)" sh bench/run.sh

clean:
	rm -rf build

.PHONY: all asan deps run stop test bench clean fuzz fuzz-build fuzz-harnesses
.SECONDARY:
