# Makefile - build bpfwrap: bpf/*.bpf.c -> .bpf.o -> bpftool skeleton -> user binary.
#
#   make            build build/bpfwrap
#   make test       install missing Debian packages, build, run every test level
#                   (also under ASan/UBSan), end with "N passed, N failed"
#   make bench      benchmarks -> bench/REPORT.md (FULL=1 for the long run)
#   make demo       check + match on the example policy in examples/
#   make install    binary, man page under $(DESTDIR)$(PREFIX), the unit (its
#                   ExecStart follows PREFIX) in $(UNITDIR), /etc/default/bpfwrap
#                   unless there is one
#   make deb        the Debian package, lintian-checked, in build/deb/
#   make SAN=1      the same build with ASan/UBSan, in build/san
#   V=1             show the commands
.DELETE_ON_ERROR:
.SUFFIXES:
# Keep the .bpf.o objects between the skeleton and the next build.
.SECONDARY:

ifeq ($(SAN),1)
BUILD ?= build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD ?= build
SANFLAGS :=
endif

CC      ?= cc
CLANG   ?= clang
BPFTOOL ?= bpftool
# The BPF target's __TARGET_ARCH_ and the vmlinux/ folder: x86 for x86_64.
ARCH    := $(patsubst x86_64,x86,$(patsubst aarch64,arm64,$(shell uname -m)))
PREFIX  ?= /usr/local
UNITDIR ?= /etc/systemd/system

ifeq ($(V),1)
Q :=
msg =
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

PKG_LIBS := libbpf libcares libsystemd
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE -MMD -MP \
           $(SANFLAGS) $(shell pkg-config --cflags $(PKG_LIBS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKG_LIBS) 2>/dev/null || echo -lbpf -lcares -lsystemd) -lelf -lz
LDFLAGS += $(SANFLAGS)

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Wextra -Werror \
              -Wno-unused-parameter -Iinclude -Ivmlinux/$(ARCH)

BPF_SRCS  := $(wildcard bpf/*.bpf.c)
BPF_OBJS  := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS     := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))

# user/ is built as four layers, each seeing only its own headers and those
# of the layers below it, so an include the wrong way fails the build:
#   policy/  pure: parse, evaluate, compile (no libbpf, no skeletons)
#   kernel/  libbpf: loader, kernel_match, guard          (+ policy)
#   agent/   the agent loop: log, spawn, DNS, ident, watch (+ kernel, policy)
#   cli/     the commands: run, status, check, match       (+ everything)
LAYERS    := policy kernel agent cli
INC_policy := -Iinclude -Iuser/policy
INC_kernel := $(INC_policy) -Iuser/kernel -I$(BUILD)
INC_agent  := $(INC_kernel) -Iuser/agent
INC_cli    := $(INC_agent) -Iuser/cli
USER_INC   := $(INC_cli)
LIB_SRCS  := $(filter-out user/cli/main.c,$(foreach l,$(LAYERS),$(wildcard user/$(l)/*.c)))
LIB_OBJS  := $(patsubst user/%.c,$(BUILD)/user/%.o,$(LIB_SRCS))
LIB       := $(BUILD)/libbpfwrap.a
BIN       := $(BUILD)/bpfwrap

# Test programs: every tests/<level>/test_*.c is one cmocka binary.
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(wildcard tests/unit/test_*.c))
BPF_TESTS  := $(patsubst tests/bpf/%.c,$(BUILD)/tests/bpf/%,$(wildcard tests/bpf/test_*.c))
INTEG_TESTS:= $(patsubst tests/integration/%.c,$(BUILD)/tests/integration/%,$(wildcard tests/integration/test_*.c))
SYSD_TESTS := $(patsubst tests/systemd/%.c,$(BUILD)/tests/systemd/%,$(wildcard tests/systemd/test_*.c))
# Helpers the tests run (oracle, generators, servers): tests/*/tool_*.c, one binary each.
TEST_TOOLS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/*/tool_*.c))
ALL_TESTS  := $(UNIT_TESTS) $(BPF_TESTS) $(INTEG_TESTS) $(SYSD_TESTS)

.PHONY: all test test-build deps bench demo install deb clean fuzz
all: $(BIN)

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.bpf.h) $(wildcard include/*.h)
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

# user/LAYER/x.c -> build/user/LAYER/x.o with that layer's include paths;
# the skeletons are generated first (kernel/ and up include them).
define layer_rule
$$(BUILD)/user/$(1)/%.o: user/$(1)/%.c | $$(SKELS)
	$$(call msg,CC,$$@)
	$$(Q)mkdir -p $$(@D)
	$$(Q)$$(CC) $$(CFLAGS) $$(INC_$(1)) -c $$< -o $$@
endef
$(foreach l,$(LAYERS),$(eval $(call layer_rule,$(l))))

$(LIB): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN): $(BUILD)/user/cli/main.o $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/%.c $(LIB) | $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(USER_INC) -Itests $(TEST_CFLAGS) $< $(LIB) $(LDFLAGS) $(LDLIBS) -lcmocka $(TEST_LDLIBS_$(notdir $@)) -o $@

# The libwrap oracle links the real libwrap (Debian libwrap0-dev).
TEST_LDLIBS_tool_oracle := -lwrap -lnsl

# The parser fuzzer (tests/fuzz/run.sh, make fuzz): clang's libFuzzer with
# ASan/UBSan, the library sources compiled in (not the gcc-built archive).
FUZZ_CFLAGS := -g -O1 -std=gnu11 -Wall -Wno-unused-parameter -D_GNU_SOURCE $(USER_INC) \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
               $(shell pkg-config --cflags $(PKG_LIBS) 2>/dev/null)
$(BUILD)/tests/fuzz/fuzz_parse: tests/fuzz/fuzz_parse.c $(LIB_SRCS) $(wildcard user/*/*.h) $(wildcard include/*.h) $(SKELS)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $< $(LIB_SRCS) $(LDLIBS) -o $@
TEST_LDLIBS_test_expand := -lwrap -lnsl

test-build: $(BIN) $(ALL_TESTS) $(TEST_TOOLS)

deps:
	$(Q)scripts/install-deps.sh

# make test: dependencies, the normal build, the sanitizer build, the package
# (the systemd level installs it; a failed package build fails that level),
# every level.
test: deps
	$(Q)$(MAKE) --no-print-directory test-build
	$(Q)$(MAKE) --no-print-directory SAN=1 test-build
	$(Q)$(MAKE) --no-print-directory deb || echo "make deb failed: the systemd level will fail"
	$(Q)tests/run.sh $(BUILD) build/san

fuzz: deps
	$(Q)tests/fuzz/run.sh $(BUILD) $(or $(FUZZ_SECONDS),60)

bench:
	$(Q)scripts/install-deps.sh bench
	$(Q)$(MAKE) --no-print-directory all
	$(Q)bench/run.sh $(if $(filter-out 0 no,$(FULL)),--full)

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo.sh $(BIN)

install: $(BIN)
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/sbin/bpfwrap
	install -D -m 0644 docs/bpfwrap.8 $(DESTDIR)$(PREFIX)/share/man/man8/bpfwrap.8
	install -d $(DESTDIR)$(UNITDIR)
	sed '/^ExecStart=/s|/usr/local/sbin/bpfwrap|$(PREFIX)/sbin/bpfwrap|' docs/bpfwrap.service > $(DESTDIR)$(UNITDIR)/bpfwrap.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/bpfwrap.service
	test -e $(DESTDIR)/etc/default/bpfwrap || install -D -m 0644 docs/bpfwrap.default $(DESTDIR)/etc/default/bpfwrap

# make deb: build deps, a copy of the tree, dpkg-buildpackage, lintian (scripts/build-deb.sh).
deb:
	$(Q)scripts/build-deb.sh

clean:
	rm -rf build

# Header dependencies written by the compiler (-MMD).
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
